/**
 * Kernel Inception Distance (Bińkowski et al., "Demystifying MMD GANs", 2018) in any feature
 * space: the unbiased estimate of the squared MMD with the cubic polynomial kernel
 *
 *     k(x, y) = (x·y / d + 1)³
 *
 * averaged over random subsets (as their code and torch-fidelity do). Per subset, m vectors are
 * drawn without replacement from each set and
 *
 *     MMD²_u = Σ_{i≠j} k(x_i, x_j) / (m(m−1)) + Σ_{i≠j} k(y_i, y_j) / (m(m−1)) − 2 Σ_{i,j} k(x_i, y_j) / m²
 *
 * The result is the mean and the standard deviation (population, ddof 0) over subsets. KID is
 * unbiased, so it is meaningful at small n and may be slightly negative for equal distributions.
 * (A set against itself gives 2·(mean of K − mean of diag K)/(m − 1) ≤ 0, not exactly 0: use two
 * independent draws to see the estimator's noise floor.)
 * Subsets are drawn with mulberry32 seeded by `seed`, so a run is reproducible.
 *
 * @module
 */

/** Options of {@link kernelInceptionDistance}. */
export interface KidOptions {
  /** Number of random subsets (default 100). */
  subsets?: number;
  /** Vectors drawn from each set per subset; capped at the smaller set's size (default 1000). */
  subsetSize?: number;
  /** PRNG seed of the subset draws (default 0). */
  seed?: number;
}

/** KID estimate. */
export interface KidResult {
  mean: number;
  std: number;
  subsets: number;
  subsetSize: number;
}

/** mulberry32: a small 32-bit PRNG, uniform floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** m distinct indices of [0, n), by a partial Fisher–Yates shuffle. */
function drawIndices(n: number, m: number, rand: () => number): Int32Array {
  const idx = new Int32Array(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  for (let i = 0; i < m; i++) {
    const j = i + Math.floor(rand() * (n - i));
    const t = idx[i];
    idx[i] = idx[j];
    idx[j] = t;
  }
  return idx.subarray(0, m);
}

function toRows(set: readonly ArrayLike<number>[], name: string, d: number): Float64Array[] {
  return set.map((f, i) => {
    if (f.length !== d) throw new Error(`${name}[${i}] has length ${f.length}, expected ${d}`);
    const r = Float64Array.from(f);
    if (!r.every(Number.isFinite)) throw new Error(`${name}[${i}] has non-finite values`);
    return r;
  });
}

/** The cubic polynomial kernel `(x·y / d + 1)³`. */
export function polynomialKernel(x: ArrayLike<number>, y: ArrayLike<number>): number {
  const d = x.length;
  let dot = 0;
  for (let k = 0; k < d; k++) dot += x[k] * y[k];
  const v = dot / d + 1;
  return v * v * v;
}

/** Kernel matrix between two lists of vectors (row-major |a|×|b|). */
function gram(a: Float64Array[], b: Float64Array[]): Float64Array {
  const out = new Float64Array(a.length * b.length);
  for (let i = 0; i < a.length; i++) {
    for (let j = 0; j < b.length; j++) out[i * b.length + j] = polynomialKernel(a[i], b[j]);
  }
  return out;
}

/** Largest set size for which the full kernel matrices are computed once and reused. */
const GRAM_LIMIT = 2048;

/** KID between feature sets `a` and `b` (vectors of equal length, each set >= 2 vectors). */
export function kernelInceptionDistance(
  a: readonly ArrayLike<number>[],
  b: readonly ArrayLike<number>[],
  options: KidOptions = {},
): KidResult {
  const subsets = options.subsets ?? 100;
  const seed = options.seed ?? 0;
  if (!Number.isInteger(subsets) || subsets < 1) {
    throw new Error(`kid: subsets must be a positive integer, got ${subsets}`);
  }
  if (a.length < 2 || b.length < 2) {
    throw new Error(`kid: each set needs at least 2 vectors (got ${a.length} and ${b.length})`);
  }
  const d = a[0].length;
  if (d < 1) throw new Error("kid: vectors are empty");
  const x = toRows(a, "a", d);
  const y = toRows(b, "b", d);
  const m = Math.min(options.subsetSize ?? 1000, x.length, y.length);
  if (!Number.isInteger(m) || m < 2) throw new Error(`kid: subsetSize must be >= 2, got ${m}`);
  const full = x.length <= GRAM_LIMIT && y.length <= GRAM_LIMIT;
  const kxx = full ? gram(x, x) : null;
  const kyy = full ? gram(y, y) : null;
  const kxy = full ? gram(x, y) : null;
  const kx = (i: number, j: number) => kxx ? kxx[i * x.length + j] : polynomialKernel(x[i], x[j]);
  const ky = (i: number, j: number) => kyy ? kyy[i * y.length + j] : polynomialKernel(y[i], y[j]);
  const kc = (i: number, j: number) => kxy ? kxy[i * y.length + j] : polynomialKernel(x[i], y[j]);
  const rand = mulberry32(seed);
  const values: number[] = [];
  for (let s = 0; s < subsets; s++) {
    const ix = drawIndices(x.length, m, rand);
    const iy = drawIndices(y.length, m, rand);
    let sxx = 0;
    let syy = 0;
    let sxy = 0;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < m; j++) {
        if (i !== j) {
          sxx += kx(ix[i], ix[j]);
          syy += ky(iy[i], iy[j]);
        }
        sxy += kc(ix[i], iy[j]);
      }
    }
    values.push((sxx + syy) / (m * (m - 1)) - (2 * sxy) / (m * m));
  }
  const mean = values.reduce((p, v) => p + v, 0) / subsets;
  const variance = values.reduce((p, v) => p + (v - mean) * (v - mean), 0) / subsets;
  return { mean, std: Math.sqrt(variance), subsets, subsetSize: m };
}

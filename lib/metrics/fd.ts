/**
 * Fréchet distance between two feature sets, each summarised as a Gaussian (the FID formula,
 * computed in whatever feature space the caller supplies):
 *
 *     FD = |μ1 − μ2|² + tr(S1) + tr(S2) − 2·tr((S1^½ S2 S1^½)^½)
 *
 * Matrix square roots come from a float64 Jacobi eigen-decomposition (`linalg.ts`), which is
 * exact to rounding for symmetric PSD matrices (unlike the iterative `sqrtm` FID code uses).
 * Covariances are unbiased (divide by n − 1), as `numpy.cov`. FD is biased at small n: compare
 * runs with equal set sizes, or use KID.
 *
 * @module
 */

import { matMul, psdSqrt, symmetricEigen } from "./linalg.ts";

/** Mean and covariance of a feature set (row-major d×d covariance). */
export interface GaussianStats {
  dim: number;
  count: number;
  mean: Float64Array;
  cov: Float64Array;
}

/** Mean and unbiased covariance of `features` (one vector of length d per sample, n >= 2). */
export function gaussianStats(features: readonly ArrayLike<number>[]): GaussianStats {
  const n = features.length;
  if (n < 2) throw new Error(`features: need at least 2 vectors for a covariance, got ${n}`);
  const d = features[0].length;
  if (d < 1) throw new Error("features: vectors are empty");
  const mean = new Float64Array(d);
  for (const [i, f] of features.entries()) {
    if (f.length !== d) throw new Error(`features[${i}] has length ${f.length}, features[0] ${d}`);
    for (let k = 0; k < d; k++) {
      if (!Number.isFinite(f[k])) throw new Error(`features[${i}][${k}] is not finite`);
      mean[k] += f[k];
    }
  }
  for (let k = 0; k < d; k++) mean[k] /= n;
  const cov = new Float64Array(d * d);
  const c = new Float64Array(d);
  for (const f of features) {
    for (let k = 0; k < d; k++) c[k] = f[k] - mean[k];
    for (let i = 0; i < d; i++) {
      const ci = c[i];
      for (let j = i; j < d; j++) cov[i * d + j] += ci * c[j];
    }
  }
  for (let i = 0; i < d; i++) {
    for (let j = i; j < d; j++) {
      cov[i * d + j] /= n - 1;
      cov[j * d + i] = cov[i * d + j];
    }
  }
  return { dim: d, count: n, mean, cov };
}

/** FD between two Gaussians given as stats (clamped at 0 against rounding). */
export function frechetDistanceFromStats(a: GaussianStats, b: GaussianStats): number {
  const d = a.dim;
  if (b.dim !== d) throw new Error(`feature sets differ in dimension: ${a.dim} vs ${b.dim}`);
  if (
    a.mean.length !== d || b.mean.length !== d || a.cov.length !== d * d || b.cov.length !== d * d
  ) {
    throw new Error("GaussianStats: mean/cov sizes do not match dim");
  }
  let dm = 0;
  let tr = 0;
  for (let k = 0; k < d; k++) {
    const x = a.mean[k] - b.mean[k];
    dm += x * x;
    tr += a.cov[k * d + k] + b.cov[k * d + k];
  }
  const r = psdSqrt(a.cov, d);
  const m = matMul(matMul(r, b.cov, d), r, d);
  const { values } = symmetricEigen(m, d);
  let trSqrt = 0;
  for (const v of values) trSqrt += Math.sqrt(Math.max(0, v));
  return Math.max(0, dm + tr - 2 * trSqrt);
}

/** FD between two feature sets (vectors of equal length; each set n >= 2). */
export function frechetDistance(
  a: readonly ArrayLike<number>[],
  b: readonly ArrayLike<number>[],
): number {
  return frechetDistanceFromStats(gaussianStats(a), gaussianStats(b));
}

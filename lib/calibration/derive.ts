/**
 * Static caching schedules from change curves: the paper's automatic rule (Eq. 7), the uniform
 * every-N-steps family (DeepCache-like), and a search for the threshold that reaches a wanted
 * fraction of skipped block evaluations (to aim at a speedup).
 *
 * Eq. 7: block i, computed at step `t_a`, is reused at steps t > t_a while
 * `sum_{s=t_a+1..t} L1_rel(i, s) <= delta`; at the first step where the sum exceeds delta it is
 * recomputed and the sum restarts from that step. Step 0 is always computed.
 *
 * Curves are `[block][step]`; schedules are `[step][block]` (the schedule file's layout).
 *
 * @module
 */

/** Checks a `[block][step]` curve table: non-empty, rectangular, finite and >= 0 from step 1. */
export function validateCurves(curves: readonly (readonly number[])[]): void {
  if (curves.length === 0) throw new Error("curves: no blocks");
  const steps = curves[0].length;
  if (steps === 0) throw new Error("curves: no steps");
  for (const [i, c] of curves.entries()) {
    if (c.length !== steps) {
      throw new Error(`curves[${i}] has ${c.length} steps, curves[0] has ${steps}`);
    }
    for (let t = 1; t < steps; t++) {
      if (!Number.isFinite(c[t]) || c[t] < 0) {
        throw new Error(`curves[${i}][${t}] must be a finite number >= 0, got ${c[t]}`);
      }
    }
  }
}

/**
 * The Eq. 7 schedule for threshold `delta`: `recompute[step][block]`. A step whose accumulated
 * change equals delta exactly is still reused; only a sum strictly above delta recomputes.
 * `curves[block][0]` is ignored.
 */
export function deriveSchedule(curves: readonly (readonly number[])[], delta: number): boolean[][] {
  validateCurves(curves);
  if (!Number.isFinite(delta) || delta < 0) {
    throw new Error(`delta must be a finite number >= 0, got ${delta}`);
  }
  const steps = curves[0].length;
  const out: boolean[][] = Array.from({ length: steps }, () => new Array(curves.length).fill(true));
  for (const [i, c] of curves.entries()) {
    let acc = 0;
    for (let t = 1; t < steps; t++) {
      acc += c[t];
      if (acc > delta) {
        acc = 0;
      } else {
        out[t][i] = false;
      }
    }
  }
  return out;
}

/** Recompute every block at steps where `step % every == 0`, reuse otherwise (DeepCache-like). */
export function uniformSchedule(steps: number, blocks: number, every: number): boolean[][] {
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`steps must be >= 1, got ${steps}`);
  if (!Number.isInteger(blocks) || blocks < 1) {
    throw new Error(`blocks must be >= 1, got ${blocks}`);
  }
  if (!Number.isInteger(every) || every < 1) throw new Error(`every must be >= 1, got ${every}`);
  return Array.from({ length: steps }, (_, t) => new Array(blocks).fill(t % every === 0));
}

/**
 * Fraction of block evaluations reused, each block weighted by its cost `weights[block]`
 * (e.g. its measured time per evaluation); equal weights give the plain skipped fraction.
 * With weights = block times, `1 / (1 − share · result)` estimates the UNet speedup, `share`
 * being the cacheable blocks' share of the UNet time.
 */
export function weightedSkippedFraction(
  recompute: readonly (readonly boolean[])[],
  weights?: readonly number[],
): number {
  let total = 0;
  let skipped = 0;
  for (const row of recompute) {
    if (weights && weights.length !== row.length) {
      throw new Error(
        `weights has ${weights.length} entries, the schedule has ${row.length} blocks`,
      );
    }
    for (let j = 0; j < row.length; j++) {
      const w = weights ? weights[j] : 1;
      total += w;
      if (!row[j]) skipped += w;
    }
  }
  return total === 0 ? 0 : skipped / total;
}

/** The (cost-weighted) skipped fraction needed for a UNet speedup, given the cacheable share. */
export function skippedFractionForSpeedup(speedup: number, cacheableShare: number): number {
  if (!(speedup >= 1)) throw new Error(`speedup must be >= 1, got ${speedup}`);
  if (!(cacheableShare > 0 && cacheableShare <= 1)) {
    throw new Error(`cacheableShare must be in (0, 1], got ${cacheableShare}`);
  }
  return (1 - 1 / speedup) / cacheableShare;
}

/** Result of {@link deltaForSkippedFraction}. */
export interface DeltaChoice {
  delta: number;
  recompute: boolean[][];
  /** The (weighted) skipped fraction this delta gives. */
  skippedFraction: number;
}

function sameTable(a: boolean[][], b: boolean[][]): boolean {
  return a.every((row, t) => row.every((x, j) => x === b[t][j]));
}

/**
 * The delta whose Eq. 7 schedule skips the fraction of evaluations closest to `target` (weighted
 * by `weights` if given). The skipped fraction is a non-decreasing step function of delta (for
 * curves >= 0), so bisection finds the smallest delta reaching the target; it is compared with
 * the largest delta below it and the closer wins (a tie goes to the smaller delta: fewer skips).
 * The returned delta is the shortest decimal that yields the same table.
 */
export function deltaForSkippedFraction(
  curves: readonly (readonly number[])[],
  target: number,
  options: { weights?: readonly number[]; iterations?: number } = {},
): DeltaChoice {
  validateCurves(curves);
  if (!(target >= 0 && target <= 1)) throw new Error(`target must be in [0, 1], got ${target}`);
  const weights = options.weights;
  const iterations = options.iterations ?? 100;
  const evalAt = (delta: number): DeltaChoice => {
    const recompute = deriveSchedule(curves, delta);
    return { delta, recompute, skippedFraction: weightedSkippedFraction(recompute, weights) };
  };
  // Above the largest per-block total, every step after 0 is reused.
  let hiDelta = 0;
  for (const c of curves) hiDelta = Math.max(hiDelta, c.slice(1).reduce((a, b) => a + b, 0));
  const lowest = evalAt(0);
  if (lowest.skippedFraction >= target) return nice(lowest, null);
  let hi = evalAt(hiDelta);
  if (hi.skippedFraction < target) return nice(hi, null); // the most it can skip
  let lo = lowest;
  for (let k = 0; k < iterations && hi.delta - lo.delta > 1e-12 * Math.max(1, hi.delta); k++) {
    const mid = evalAt((lo.delta + hi.delta) / 2);
    if (mid.skippedFraction >= target) hi = mid;
    else lo = mid;
  }
  const dHi = Math.abs(hi.skippedFraction - target);
  const dLo = Math.abs(lo.skippedFraction - target);
  return dLo <= dHi ? nice(lo, hi.delta) : nice(hi, null);

  /** Shortest-decimal delta with the same table: round up from `c.delta`, staying below `limit`. */
  function nice(c: DeltaChoice, limit: number | null): DeltaChoice {
    for (let digits = 1; digits <= 12; digits++) {
      const f = 10 ** digits;
      for (const d of [Math.ceil(c.delta * f) / f, Math.floor(c.delta * f) / f]) {
        if (d < 0 || (limit !== null && d >= limit)) continue;
        const r = deriveSchedule(curves, d);
        if (sameTable(r, c.recompute)) return { ...c, delta: d };
      }
    }
    return c;
  }
}

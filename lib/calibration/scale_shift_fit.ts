/**
 * Scale-shift correction of reused block values (the paper's §3.4), fit in closed form.
 *
 * The paper trains, per block, a timestep-dependent per-channel `scale`, `shift` so that the
 * cached model (student) matches the uncached one (teacher) along the student's own trajectory.
 * With a static schedule and fixed steps this is a separate linear problem per (block, reuse
 * step, channel): given pairs (r = the reused cached value, f = the value the block would compute
 * now) over all spatial positions and samples, fit `f ≈ a·r + b`.
 *
 * The fit is least squares with a ridge toward identity (scale 1, shift 0). Writing the shift as
 * `b = (1 − a)·r̄ + β` (β = how far the corrected mean moves from the cached mean; β = b when
 * a = 1), the objective is
 *
 *     J(a, β) = Σ (a·r + b − f)² + λa·(a − 1)² + λb·β²,   λa = ρ·n·s²,   λb = ρ·n
 *
 * where n is the number of pairs, s² the mean over the block's channels of E[r²] at that step (so
 * the ridge is unit-free) and ρ the relative ridge (default 1e-3). With means r̄, f̄ and centred
 * sums Srr = Σ(r−r̄)², Srf = Σ(r−r̄)(f−f̄), J separates, and its minimum is
 *
 *     a = (Srf + λa) / (Srr + λa)
 *     b = f̄ − a·r̄ − (f̄ − r̄)·λb / (n + λb)
 *
 * ρ = 0 is plain least squares (a = Srf/Srr, b = f̄ − a·r̄; a = 1 when Srr = 0). A channel whose
 * variance is small next to ρ·s² keeps a ≈ 1 and only corrects its mean (shrunk by 1/(1+ρ)); a
 * channel with no variance at all gets exactly a = 1. All channels of a (block, step) see the
 * same n, so "little data" is a property of the calibration set, and the ridge is relative to n.
 *
 * **History form** (our extension): a block's value drifts smoothly over steps, so the value
 * from the computation before the cached one, p, tells which way it is moving. The fit
 * `f ≈ a·r + g·p + b` (a linear forecast when g = −(a − 1)) has the same ridge, with g pulled
 * toward 0 by λa, and the 2×2 normal equations
 *
 *     [Srr + λa   Srp     ] [a]   [Srf + λa]
 *     [Srp        Spp + λa] [g] = [Spf     ],   b = f̄ − a·r̄ − g·p̄ − (f̄ − r̄)·λb / (n + λb)
 *
 * It needs the block computed twice before the reuse step (earlier reuse steps keep the paper's
 * form) and one more stored value per block at run time.
 *
 * The statistics (means and centred co-moments) are merged batch by batch (Chan et al.'s
 * pairwise update) in float64.
 *
 * @module
 */

import type { ScaleShift, ScaleShiftTable } from "../cache/schedule.ts";
import { type FloatArray, splitDims } from "../cache/scale_shift.ts";

export type { ScaleShift, ScaleShiftTable };

/** Default relative ridge ρ of {@link ScaleShiftAccumulator.fit}. */
export const DEFAULT_RIDGE = 1e-3;

/**
 * Sufficient statistics of one (block, step): per channel, over n samples of the variables
 * r (cached), f (fresh) and, in the history form, p (previous). `co[x][y]` is the centred sum
 * Σ(x−x̄)(y−ȳ) of variables x, y (indices R, F, P).
 */
interface Stats {
  n: number;
  mean: Float64Array[];
  co: Float64Array[][];
}

const R = 0;
const F = 1;
const P = 2;

/** A `vars` × `vars` table of per-channel sums where `[x][y]` and `[y][x]` are one array. */
function symmetricMoments(vars: number, channels: number): Float64Array[][] {
  const co: Float64Array[][] = Array.from({ length: vars }, () => []);
  for (let x = 0; x < vars; x++) {
    for (let y = x; y < vars; y++) co[x][y] = co[y][x] = new Float64Array(channels);
  }
  return co;
}

/** Quality of a fit on the accumulated data, per (block, step). */
export interface ScaleShiftReport {
  block: string;
  step: number;
  /** Pairs per channel. */
  count: number;
  /** Mean of (r − f)²: the error of reusing without correction. */
  mseIdentity: number;
  /** Mean of (a·r + b − f)²: the error after correction. */
  mseFit: number;
}

/**
 * Accumulates (cached, fresh[, previous]) values per (block, reuse step, channel) and fits the
 * per-channel scale and shift (and previous weight) in closed form (formulas in the module doc).
 */
export class ScaleShiftAccumulator {
  #stats = new Map<string, Map<number, Stats>>();

  /**
   * Adds one batch: `cached` is the value the schedule would reuse at `step`, `fresh` the value
   * the block computes at `step` from the same input, `previous` (history form) the block's value
   * from the computation before the cached one. All are laid out as `dims` = [N, C, ...spatial]
   * (channel c of item n is a contiguous slice of the spatial size); a (block, step) takes either
   * form, not both.
   */
  add(
    block: string,
    step: number,
    cached: FloatArray,
    fresh: FloatArray,
    dims: readonly number[],
    previous?: FloatArray,
  ): void {
    if (!Number.isInteger(step) || step < 0) {
      throw new Error(`scale-shift: step must be an integer >= 0, got ${step}`);
    }
    const values = previous ? [cached, fresh, previous] : [cached, fresh];
    for (const [k, v] of [["fresh", fresh], ["previous", previous]] as const) {
      if (v && v.length !== cached.length) {
        throw new Error(
          `scale-shift: ${block} step ${step}: cached has ${cached.length} values, ${k} ${v.length}`,
        );
      }
    }
    const [items, channels, hw] = splitDims(
      dims,
      cached.length,
      `scale-shift ${block} step ${step}`,
    );
    let perStep = this.#stats.get(block);
    if (!perStep) this.#stats.set(block, perStep = new Map());
    let s = perStep.get(step);
    if (!s) {
      const vars = values.length;
      s = {
        n: 0,
        mean: values.map(() => new Float64Array(channels)),
        co: symmetricMoments(vars, channels),
      };
      perStep.set(step, s);
    }
    if (s.mean[R].length !== channels) {
      throw new Error(
        `scale-shift: ${block} step ${step} has ${channels} channels, earlier batches had ` +
          s.mean[R].length,
      );
    }
    if (s.mean.length !== values.length) {
      throw new Error(
        `scale-shift: ${block} step ${step}: ${previous ? "a" : "no"} previous value, ` +
          `earlier batches had ${previous ? "none" : "one"}`,
      );
    }
    const m = items * hw;
    const n = s.n;
    const total = n + m;
    const vars = values.length;
    const batchMean = new Float64Array(vars);
    const batchCo = new Float64Array(vars * vars);
    for (let c = 0; c < channels; c++) {
      batchMean.fill(0);
      batchCo.fill(0);
      for (let k = 0; k < items; k++) {
        const o = (k * channels + c) * hw;
        for (let v = 0; v < vars; v++) {
          const a = values[v];
          for (let q = o; q < o + hw; q++) batchMean[v] += a[q];
        }
      }
      for (let v = 0; v < vars; v++) batchMean[v] /= m;
      for (let k = 0; k < items; k++) {
        const o = (k * channels + c) * hw;
        for (let q = o; q < o + hw; q++) {
          for (let x = 0; x < vars; x++) {
            const dx = values[x][q] - batchMean[x];
            for (let y = x; y < vars; y++) {
              batchCo[x * vars + y] += dx * (values[y][q] - batchMean[y]);
            }
          }
        }
      }
      const w = (n * m) / total;
      for (let x = 0; x < vars; x++) {
        const dx = batchMean[x] - s.mean[x][c];
        for (let y = x; y < vars; y++) {
          const v = batchCo[x * vars + y] + dx * (batchMean[y] - s.mean[y][c]) * w;
          if (!Number.isFinite(v)) {
            throw new Error(`scale-shift: ${block} step ${step} channel ${c}: non-finite values`);
          }
          s.co[x][y][c] += v;
        }
      }
      for (let x = 0; x < vars; x++) s.mean[x][c] += (batchMean[x] - s.mean[x][c]) * m / total;
    }
    s.n = total;
  }

  /** Blocks and steps seen so far, in insertion order of blocks and ascending steps. */
  entries(): { block: string; step: number; channels: number; count: number }[] {
    const out: { block: string; step: number; channels: number; count: number }[] = [];
    for (const [block, perStep] of this.#stats) {
      for (const step of [...perStep.keys()].sort((a, b) => a - b)) {
        const s = perStep.get(step)!;
        out.push({ block, step, channels: s.mean[R].length, count: s.n });
      }
    }
    return out;
  }

  /** Fits every (block, step) seen; `ridge` is the relative ridge ρ (>= 0). */
  fit(ridge = DEFAULT_RIDGE): ScaleShiftTable {
    if (!(ridge >= 0) || !Number.isFinite(ridge)) {
      throw new Error(`scale-shift: ridge must be a finite number >= 0, got ${ridge}`);
    }
    const table: ScaleShiftTable = {};
    for (const [block, perStep] of this.#stats) {
      const out: Record<string, ScaleShift> = {};
      for (const step of [...perStep.keys()].sort((a, b) => a - b)) {
        out[String(step)] = fitStats(perStep.get(step)!, ridge);
      }
      table[block] = out;
    }
    return table;
  }

  /**
   * Errors before and after applying `table` on the accumulated pairs (mean over pairs and
   * channels), per (block, step); entries without parameters in `table` count as identity.
   */
  report(table: ScaleShiftTable): ScaleShiftReport[] {
    const out: ScaleShiftReport[] = [];
    for (const { block, step } of this.entries()) {
      const s = this.#stats.get(block)!.get(step)!;
      const p = table[block]?.[String(step)];
      const channels = s.mean[R].length;
      let e0 = 0;
      let e1 = 0;
      for (let c = 0; c < channels; c++) {
        e0 += squaredError(s, c, 1, 0, 0);
        e1 += p ? squaredError(s, c, p.scale[c], p.shift[c], p.previous?.[c] ?? 0) : 0;
      }
      const denom = s.n * channels;
      out.push({
        block,
        step,
        count: s.n,
        mseIdentity: e0 / denom,
        mseFit: (p ? e1 : e0) / denom,
      });
    }
    return out;
  }
}

/** Σ(a·r + g·p + b − f)² over the pairs of channel `c` (g must be 0 without history). */
function squaredError(s: Stats, c: number, a: number, b: number, g: number): number {
  const co = s.co;
  const hasP = s.mean.length > P;
  let e = a * a * co[R][R][c] - 2 * a * co[R][F][c] + co[F][F][c];
  let d = a * s.mean[R][c] + b - s.mean[F][c];
  if (hasP) {
    e += g * g * co[P][P][c] + 2 * a * g * co[R][P][c] - 2 * g * co[P][F][c];
    d += g * s.mean[P][c];
  }
  return Math.max(0, e + s.n * d * d);
}

/** The closed-form ridge fit of one (block, step) (formula in the module doc). */
function fitStats(s: Stats, ridge: number): ScaleShift {
  const channels = s.mean[R].length;
  const n = s.n;
  const hasP = s.mean.length > P;
  let s2 = 0;
  for (let c = 0; c < channels; c++) s2 += s.co[R][R][c] / n + s.mean[R][c] ** 2;
  s2 /= channels;
  if (!(s2 > 0)) s2 = 1;
  const la = ridge * n * s2;
  const lb = ridge * n;
  const scale: number[] = [];
  const shift: number[] = [];
  const previous: number[] = [];
  for (let c = 0; c < channels; c++) {
    const rr = s.co[R][R][c] + la;
    const rf = s.co[R][F][c] + la;
    let a = rr > 0 ? rf / rr : 1;
    let g = 0;
    if (hasP) {
      // [rr rp; rp pp] [a g]ᵀ = [rf pf]ᵀ
      const rp = s.co[R][P][c];
      const pp = s.co[P][P][c] + la;
      const pf = s.co[P][F][c];
      const det = rr * pp - rp * rp;
      if (det > 0) {
        a = (rf * pp - pf * rp) / det;
        g = (pf * rr - rf * rp) / det;
      }
    }
    const r = s.mean[R][c];
    const f = s.mean[F][c];
    // the corrected mean, shrunk from the fresh mean toward the cached one by the shift ridge
    const corrected = f - ((f - r) * lb) / (n + lb);
    scale.push(a);
    shift.push(corrected - a * r - (hasP ? g * s.mean[P][c] : 0));
    previous.push(g);
  }
  return hasP ? { scale, shift, previous } : { scale, shift };
}

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
 * The statistics are merged batch by batch (Chan et al.'s pairwise update) in float64, so only
 * five numbers per (block, step, channel) are kept.
 *
 * @module
 */

import type { ScaleShift, ScaleShiftTable } from "./schedule.ts";

export type { ScaleShift, ScaleShiftTable };

/** Default relative ridge ρ of {@link ScaleShiftAccumulator.fit}. */
export const DEFAULT_RIDGE = 1e-3;

/** Float arrays a block's value may arrive in. */
export type FloatArray = Float32Array | Float16Array | Float64Array;

/** Sufficient statistics of one (block, step): per channel, over n pairs. */
interface Stats {
  n: number;
  meanR: Float64Array;
  meanF: Float64Array;
  srr: Float64Array;
  srf: Float64Array;
  sff: Float64Array;
}

/** Checks NCHW-like `dims` ([N, C, ...spatial]) against an array length; returns [N, C, HW]. */
export function splitDims(dims: readonly number[], length: number, what = "value"): [
  number,
  number,
  number,
] {
  if (dims.length < 2 || dims.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new Error(`${what}: dims must be [N, C, ...spatial] of positive integers, got [${dims}]`);
  }
  const hw = dims.slice(2).reduce((a, b) => a * b, 1);
  if (dims[0] * dims[1] * hw !== length) {
    throw new Error(`${what}: dims [${dims}] do not match ${length} values`);
  }
  return [dims[0], dims[1], hw];
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
 * Accumulates (cached, fresh) pairs per (block, reuse step, channel) and fits the per-channel
 * scale and shift in closed form (see the module doc for the formula).
 */
export class ScaleShiftAccumulator {
  #stats = new Map<string, Map<number, Stats>>();

  /**
   * Adds one batch: `cached` is the value the schedule would reuse at `step`, `fresh` the value
   * the block computes at `step` from the same input. Both are laid out as `dims` =
   * [N, C, ...spatial] (channel c of item n is a contiguous slice of the spatial size).
   */
  add(
    block: string,
    step: number,
    cached: FloatArray,
    fresh: FloatArray,
    dims: readonly number[],
  ): void {
    if (!Number.isInteger(step) || step < 0) {
      throw new Error(`scale-shift: step must be an integer >= 0, got ${step}`);
    }
    if (cached.length !== fresh.length) {
      throw new Error(
        `scale-shift: ${block} step ${step}: cached has ${cached.length} values, fresh ${fresh.length}`,
      );
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
      s = {
        n: 0,
        meanR: new Float64Array(channels),
        meanF: new Float64Array(channels),
        srr: new Float64Array(channels),
        srf: new Float64Array(channels),
        sff: new Float64Array(channels),
      };
      perStep.set(step, s);
    }
    if (s.meanR.length !== channels) {
      throw new Error(
        `scale-shift: ${block} step ${step} has ${channels} channels, earlier batches had ` +
          s.meanR.length,
      );
    }
    const m = items * hw;
    const n = s.n;
    const total = n + m;
    for (let c = 0; c < channels; c++) {
      let sr = 0;
      let sf = 0;
      for (let k = 0; k < items; k++) {
        const o = (k * channels + c) * hw;
        for (let p = o; p < o + hw; p++) {
          sr += cached[p];
          sf += fresh[p];
        }
      }
      const br = sr / m;
      const bf = sf / m;
      let brr = 0;
      let brf = 0;
      let bff = 0;
      for (let k = 0; k < items; k++) {
        const o = (k * channels + c) * hw;
        for (let p = o; p < o + hw; p++) {
          const dr = cached[p] - br;
          const df = fresh[p] - bf;
          brr += dr * dr;
          brf += dr * df;
          bff += df * df;
        }
      }
      if (!Number.isFinite(brr + brf + bff)) {
        throw new Error(`scale-shift: ${block} step ${step} channel ${c}: non-finite values`);
      }
      const dR = br - s.meanR[c];
      const dF = bf - s.meanF[c];
      const w = (n * m) / total;
      s.srr[c] += brr + dR * dR * w;
      s.srf[c] += brf + dR * dF * w;
      s.sff[c] += bff + dF * dF * w;
      s.meanR[c] += dR * m / total;
      s.meanF[c] += dF * m / total;
    }
    s.n = total;
  }

  /** Blocks and steps seen so far, in insertion order of blocks and ascending steps. */
  entries(): { block: string; step: number; channels: number; count: number }[] {
    const out: { block: string; step: number; channels: number; count: number }[] = [];
    for (const [block, perStep] of this.#stats) {
      for (const step of [...perStep.keys()].sort((a, b) => a - b)) {
        const s = perStep.get(step)!;
        out.push({ block, step, channels: s.meanR.length, count: s.n });
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
      const channels = s.meanR.length;
      let e0 = 0;
      let e1 = 0;
      for (let c = 0; c < channels; c++) {
        const a = p ? p.scale[c] : 1;
        const b = p ? p.shift[c] : 0;
        const d0 = s.meanR[c] - s.meanF[c];
        e0 += s.srr[c] - 2 * s.srf[c] + s.sff[c] + s.n * d0 * d0;
        const d1 = a * s.meanR[c] + b - s.meanF[c];
        e1 += a * a * s.srr[c] - 2 * a * s.srf[c] + s.sff[c] + s.n * d1 * d1;
      }
      const denom = s.n * channels;
      out.push({
        block,
        step,
        count: s.n,
        mseIdentity: Math.max(0, e0) / denom,
        mseFit: Math.max(0, e1) / denom,
      });
    }
    return out;
  }
}

/** The closed-form ridge fit of one (block, step) (formula in the module doc). */
function fitStats(s: Stats, ridge: number): ScaleShift {
  const channels = s.meanR.length;
  const n = s.n;
  let s2 = 0;
  for (let c = 0; c < channels; c++) s2 += s.srr[c] / n + s.meanR[c] * s.meanR[c];
  s2 /= channels;
  if (!(s2 > 0)) s2 = 1;
  const la = ridge * n * s2;
  const lb = ridge * n;
  const scale: number[] = [];
  const shift: number[] = [];
  for (let c = 0; c < channels; c++) {
    const r = s.meanR[c];
    const f = s.meanF[c];
    const den = s.srr[c] + la;
    const a = den > 0 ? (s.srf[c] + la) / den : 1;
    scale.push(a);
    shift.push(f - a * r - ((f - r) * lb) / (n + lb));
  }
  return { scale, shift };
}

/**
 * `out[n, c, …] = cached[n, c, …] · scale[c] + shift[c]` for a value laid out as `dims` =
 * [N, C, ...spatial]. Writes into `out` when given (may be `cached` itself), else a new array
 * of the same type.
 */
export function applyScaleShift<T extends FloatArray>(
  cached: T,
  dims: readonly number[],
  scale: ArrayLike<number>,
  shift: ArrayLike<number>,
  out?: T,
): T {
  const [items, channels, hw] = splitDims(dims, cached.length, "applyScaleShift");
  if (scale.length !== channels || shift.length !== channels) {
    throw new Error(
      `applyScaleShift: ${channels} channels, but scale has ${scale.length} and shift ${shift.length}`,
    );
  }
  const dst = out ??
    new (cached.constructor as new (n: number) => T)(cached.length);
  if (dst.length !== cached.length) {
    throw new Error(`applyScaleShift: out has ${dst.length} values, cached ${cached.length}`);
  }
  for (let k = 0; k < items; k++) {
    for (let c = 0; c < channels; c++) {
      const a = scale[c];
      const b = shift[c];
      const o = (k * channels + c) * hw;
      for (let p = o; p < o + hw; p++) dst[p] = cached[p] * a + b;
    }
  }
  return dst;
}

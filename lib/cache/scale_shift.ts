/**
 * Applying a scale-shift correction to a reused block value at run time (the paper's §3.4; the
 * fit that produces the per-channel tables is offline, in `lib/calibration/scale_shift_fit.ts`).
 *
 * @module
 */

import type { ScaleShift } from "./schedule.ts";

/** Float arrays a block's value may arrive in. */
export type FloatArray = Float32Array | Float16Array | Float64Array;

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

/**
 * `out[n, c, …] = cached[n, c, …] · scale[c] + shift[c]` (`+ previous[n, c, …] · weights[c]`
 * in the history form) for values laid out as `dims` = [N, C, ...spatial]. Writes into `out`
 * when given (may be `cached` itself), else a new array of the same type.
 */
export function applyScaleShift<T extends FloatArray>(
  cached: T,
  dims: readonly number[],
  ss: ScaleShift,
  out?: T,
  previous?: FloatArray,
): T {
  const [items, channels, hw] = splitDims(dims, cached.length, "applyScaleShift");
  const { scale, shift } = ss;
  const weights = ss.previous;
  if (
    scale.length !== channels || shift.length !== channels ||
    (weights !== undefined && weights.length !== channels)
  ) {
    throw new Error(
      `applyScaleShift: ${channels} channels, but scale has ${scale.length}, shift ${shift.length}` +
        (weights ? ` and previous ${weights.length}` : ""),
    );
  }
  if (weights && previous?.length !== cached.length) {
    throw new Error(
      `applyScaleShift: the history form needs the previous value (${cached.length} values), got ${
        previous?.length ?? "none"
      }`,
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
      if (weights && previous) {
        const g = weights[c];
        for (let q = o; q < o + hw; q++) dst[q] = cached[q] * a + previous[q] * g + b;
      } else {
        for (let q = o; q < o + hw; q++) dst[q] = cached[q] * a + b;
      }
    }
  }
  return dst;
}

/**
 * The paper's change metric (Eq. 6), measured while the uncached sampler runs:
 *
 *     L1_rel(i, t) = ||C_i(t) − C_i(t−1)||_1 / ||C_i(t)||_1
 *
 * where `C_i(t)` is block i's residual (or output) at step t for one sample. The accumulator
 * below is fed each block's value at each step and averages the per-sample values into one curve
 * per block, `curves[block][step]` — the input of the Eq. 7 schedule rule (`derive.ts`).
 *
 * Conventions (documented because the paper leaves them open):
 * - Step 0 has no previous value. Treating it as zero gives `||C||/||C|| = 1`, so step 0 is
 *   defined as {@link STEP0_CHANGE} = 1. The schedule rule ignores it (step 0 is always computed).
 * - If `||C_i(t)||_1 = 0`: the value is 0 when `C_i(t−1)` was zero too, else 1 (a full change).
 *
 * @module
 */

/** The value of `L1_rel` at step 0, where there is no previous value (see the module doc). */
export const STEP0_CHANGE = 1;

import type { FloatArray } from "../cache/scale_shift.ts";

export type { FloatArray };

/**
 * `||cur − prev||_1 / ||cur||_1` over `cur[offset .. offset+length)` and the same slice of
 * `prev`, accumulated in float64. Throws when the slice holds a NaN.
 */
export function l1Rel(
  current: ArrayLike<number>,
  previous: ArrayLike<number>,
  offset = 0,
  length = current.length - offset,
): number {
  if (previous.length !== current.length) {
    throw new Error(`l1Rel: arrays differ in length (${current.length} vs ${previous.length})`);
  }
  if (offset < 0 || length < 0 || offset + length > current.length) {
    throw new Error(`l1Rel: slice [${offset}, ${offset + length}) is outside ${current.length}`);
  }
  let diff = 0;
  let norm = 0;
  for (let k = offset; k < offset + length; k++) {
    const c = current[k];
    diff += Math.abs(c - previous[k]);
    norm += Math.abs(c);
  }
  if (Number.isNaN(diff) || Number.isNaN(norm)) throw new Error("l1Rel: value contains NaN");
  if (norm === 0) return diff === 0 ? 0 : 1;
  return diff / norm;
}

interface BlockState {
  prev: Float32Array | null;
  lastStep: number;
  items: number;
  sum: Float64Array;
  sumSq: Float64Array;
  count: Uint32Array;
}

/** Mean, standard deviation (over samples) and sample count of `L1_rel`, `[block][step]`. */
export interface ChangeSummary {
  blocks: string[];
  steps: number;
  mean: number[][];
  std: number[][];
  count: number[][];
}

/**
 * Streaming accumulator of `L1_rel` curves. Memory: one copy of the previous step's value per
 * block (the whole batch), never the history.
 *
 * Feed, for every sample run (a batch of `items` independent samples), each block's value at
 * steps 0, 1, 2, … in order: `add(block, step, value, items)`. Item k occupies the k-th of
 * `items` equal contiguous slices of `value` (NCHW with N = items). Step 0 starts a new run for
 * that block; an interrupted run may simply be followed by a new step 0.
 */
export class ChangeAccumulator {
  /** Block names, the row order of {@link curves}. */
  readonly blocks: readonly string[];
  /** Steps per run, the column count of {@link curves}. */
  readonly steps: number;
  #state = new Map<string, BlockState>();

  constructor(blocks: readonly string[], steps: number) {
    if (!Number.isInteger(steps) || steps < 1) {
      throw new Error(`ChangeAccumulator: steps must be a positive integer, got ${steps}`);
    }
    if (blocks.length === 0) throw new Error("ChangeAccumulator: no blocks");
    if (new Set(blocks).size !== blocks.length) {
      throw new Error("ChangeAccumulator: block names repeat");
    }
    this.blocks = [...blocks];
    this.steps = steps;
    for (const b of blocks) {
      this.#state.set(b, {
        prev: null,
        lastStep: -1,
        items: 0,
        sum: new Float64Array(steps),
        sumSq: new Float64Array(steps),
        count: new Uint32Array(steps),
      });
    }
  }

  /** Records block `block`'s value at `step` for a batch of `items` samples. */
  add(block: string, step: number, value: FloatArray, items = 1): void {
    const st = this.#state.get(block);
    if (!st) throw new Error(`ChangeAccumulator: unknown block ${JSON.stringify(block)}`);
    if (!Number.isInteger(step) || step < 0 || step >= this.steps) {
      throw new Error(`ChangeAccumulator: step ${step} is outside [0, ${this.steps - 1}]`);
    }
    if (!Number.isInteger(items) || items < 1 || value.length % items !== 0) {
      throw new Error(
        `ChangeAccumulator: ${value.length} values do not split into ${items} equal items`,
      );
    }
    if (value.length === 0) throw new Error(`ChangeAccumulator: empty value for ${block}`);
    if (step === 0) {
      st.prev = st.prev?.length === value.length ? st.prev : new Float32Array(value.length);
      st.prev.set(value);
      st.lastStep = 0;
      st.items = items;
      st.sum[0] += STEP0_CHANGE * items;
      st.sumSq[0] += STEP0_CHANGE * STEP0_CHANGE * items;
      st.count[0] += items;
      return;
    }
    if (st.lastStep !== step - 1 || st.prev === null) {
      throw new Error(
        `ChangeAccumulator: ${block} got step ${step} after ` +
          (st.lastStep < 0 ? "no step" : `step ${st.lastStep}`) +
          "; feed steps 0, 1, 2, … in order",
      );
    }
    if (st.prev.length !== value.length || st.items !== items) {
      throw new Error(
        `ChangeAccumulator: ${block} step ${step} has ${value.length} values in ${items} items, ` +
          `step ${step - 1} had ${st.prev.length} in ${st.items}`,
      );
    }
    const size = value.length / items;
    for (let k = 0; k < items; k++) {
      let r: number;
      try {
        r = l1Rel(value, st.prev, k * size, size);
      } catch (e) {
        throw new Error(
          `ChangeAccumulator: ${block} step ${step} item ${k}: ${(e as Error).message}`,
        );
      }
      st.sum[step] += r;
      st.sumSq[step] += r * r;
      st.count[step]++;
    }
    st.prev.set(value);
    st.lastStep = step;
  }

  /** Mean, std and count per block and step. Throws if a (block, step) has no sample yet. */
  summary(): ChangeSummary {
    const mean: number[][] = [];
    const std: number[][] = [];
    const count: number[][] = [];
    for (const b of this.blocks) {
      const st = this.#state.get(b)!;
      const m: number[] = [];
      const s: number[] = [];
      for (let t = 0; t < this.steps; t++) {
        const n = st.count[t];
        if (n === 0) throw new Error(`no change recorded for block ${b} at step ${t}`);
        const mu = st.sum[t] / n;
        m.push(mu);
        s.push(Math.sqrt(Math.max(0, st.sumSq[t] / n - mu * mu)));
      }
      mean.push(m);
      std.push(s);
      count.push(Array.from(st.count));
    }
    return { blocks: [...this.blocks], steps: this.steps, mean, std, count };
  }

  /** Mean `L1_rel` over samples, `curves[block][step]` (block order of {@link blocks}). */
  curves(): number[][] {
    return this.summary().mean;
  }
}

/**
 * The per-request block cache: applies a static schedule to the engine's per-block decisions.
 * One instance per generation (never shared), so nothing leaks between requests or image sizes.
 * The batch holds both guidance halves, and each half's residual lives in its own slice of the
 * stored tensor, so the unconditional and conditional branches never borrow each other's cache.
 *
 * @module
 */
import type { Tensor } from "../runtime/ort.ts";
import { float32Tensor, toFloat32 } from "../runtime/tensors.ts";
import type { BlockPolicy } from "../unet/engine.ts";
import { applyScaleShift } from "./scale_shift.ts";
import type { ScaleShift, Schedule } from "./schedule.ts";

/**
 * Computes the scale-shifted value of a stored block value (`previous`: the block's value before
 * it, for the history form). The default reads GPU values back and computes on the CPU;
 * `GpuScaleShift.apply` (`scale_shift_gpu.ts`) keeps them on the GPU.
 */
export type ScaleShiftApply = (
  stored: Tensor,
  ss: ScaleShift,
  previous: Tensor | undefined,
) => Tensor | Promise<Tensor>;

/** {@link ScaleShiftApply} on the CPU (`applyScaleShift`); the result is a CPU float32 tensor. */
export async function scaleShiftOnCpu(
  stored: Tensor,
  ss: ScaleShift,
  previous: Tensor | undefined,
): Promise<Tensor> {
  const data = await toFloat32(stored);
  const out = applyScaleShift(
    data,
    stored.dims,
    ss,
    new Float32Array(data.length),
    previous ? await toFloat32(previous) : undefined,
  );
  return float32Tensor(out, stored.dims);
}

function tensorBytes(t: Tensor): number {
  const n = t.dims.reduce((a, b) => a * b, 1);
  return n * (t.type === "float16" ? 2 : 4);
}

/** Counters a generation reports. */
export interface CacheStats {
  /** Cacheable block evaluations asked for (steps × blocks). */
  evaluations: number;
  /** Of those, how many reused a cached value. */
  reused: number;
  /** Peak bytes held by cached values. */
  peakBytes: number;
}

/**
 * Applies `schedule` (or none: every block computed) with optional per-channel scale-shift at
 * reuse steps. Call {@link beginStep} before each UNet evaluation and {@link dispose} at the end.
 */
export class BlockCache implements BlockPolicy {
  private stored: (Tensor | undefined)[];
  /** The value each block computed before its stored one (kept only for the history form). */
  private previous: (Tensor | undefined)[];
  private prepared: (Tensor | undefined)[];
  private keepsPrevious: boolean;
  private step = 0;
  private bytes = 0;
  readonly stats: CacheStats = { evaluations: 0, reused: 0, peakBytes: 0 };

  constructor(
    readonly schedule: Schedule | null,
    readonly blocks: readonly string[],
    readonly useScaleShift = true,
    private readonly applyCorrection: ScaleShiftApply = scaleShiftOnCpu,
  ) {
    this.stored = blocks.map(() => undefined);
    this.previous = blocks.map(() => undefined);
    this.prepared = blocks.map(() => undefined);
    this.keepsPrevious = useScaleShift &&
      Object.values(schedule?.scaleShift ?? {}).some((perStep) =>
        Object.values(perStep).some((ss) => ss.previous !== undefined)
      );
  }

  /** Whether block `index` is reused at step `step` by the schedule. */
  reusesAt(step: number, index: number): boolean {
    return !!this.schedule && !this.schedule.recompute[step][index] && !!this.stored[index];
  }

  /**
   * Sets the step and prepares the scale-shifted values for the blocks reused at it (with the
   * constructor's {@link ScaleShiftApply}: by default on the CPU, reading GPU values back).
   */
  async beginStep(step: number): Promise<void> {
    this.endStep();
    this.step = step;
    const table = this.useScaleShift ? this.schedule?.scaleShift : undefined;
    if (!table) return;
    for (const [i, block] of this.blocks.entries()) {
      const ss = table[block]?.[String(step)];
      const stored = this.stored[i];
      if (!ss || !stored || !this.reusesAt(step, i)) continue;
      const before = this.previous[i];
      this.prepared[i] = await this.applyCorrection(
        stored,
        ss,
        ss.previous && before ? before : undefined,
      );
    }
  }

  /** {@link BlockPolicy.reuse}: the cached (possibly scale-shifted) value, or undefined to compute. */
  reuse(_block: string, index: number): Tensor | undefined {
    this.stats.evaluations++;
    if (!this.reusesAt(this.step, index)) return undefined;
    this.stats.reused++;
    return this.prepared[index] ?? this.stored[index];
  }

  /** {@link BlockPolicy.store}: keeps the fresh value, releasing the one it replaces. */
  store(_block: string, index: number, value: Tensor): void {
    const old = this.stored[index];
    const dropped = this.keepsPrevious ? this.previous[index] : old;
    if (dropped) {
      this.bytes -= tensorBytes(dropped);
      dropped.dispose();
    }
    if (this.keepsPrevious) this.previous[index] = old;
    this.stored[index] = value;
    this.bytes += tensorBytes(value);
    this.stats.peakBytes = Math.max(this.stats.peakBytes, this.bytes);
  }

  /** The stored value of block `index` (for calibration); the cache still owns it. */
  storedValue(index: number): Tensor | undefined {
    return this.stored[index];
  }

  /**
   * The value block `index` computed before its stored one, when this cache keeps it (history
   * form, or `keepPrevious` for calibration); the cache still owns it.
   */
  previousValue(index: number): Tensor | undefined {
    return this.previous[index];
  }

  /** Also keeps each block's previous computed value (calibration of the history form). */
  keepPrevious(): void {
    this.keepsPrevious = true;
  }

  /** Fraction of block evaluations that reused a cached value so far. */
  get skippedFraction(): number {
    return this.stats.evaluations ? this.stats.reused / this.stats.evaluations : 0;
  }

  private endStep(): void {
    for (const [i, t] of this.prepared.entries()) {
      t?.dispose();
      this.prepared[i] = undefined;
    }
  }

  /** Releases every cached tensor. */
  dispose(): void {
    this.endStep();
    for (const list of [this.stored, this.previous]) {
      for (const [i, t] of list.entries()) {
        t?.dispose();
        list[i] = undefined;
      }
    }
    this.bytes = 0;
  }
}

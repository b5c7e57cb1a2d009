/**
 * Wall-time prediction of a generation plan on this host, from what generations measured here.
 *
 * Every finished generation reports its {@link UNetProfile}: per segment of the split UNet, how
 * often it ran and for how long, at one UNet batch size (2 per image with classifier-free
 * guidance, 1 without) and one image size. The model keeps, per (model, batch, size), a moving
 * average of each segment's time per run, of the work between segments per step (solver,
 * guidance, copies, scale-shift), and of the text encoder and the VAE decoder. A plan's
 * prediction is then
 *
 *     n · (text encoder + decoder + Σ_steps (Σ_{segments run at that step} t_seg + overhead))
 *
 * where the segments run at a step are every glue segment plus the blocks the plan's cache
 * schedule recomputes there. It is pure bookkeeping (no runtime), so the HTTP process can predict
 * from figures its workers send back, and tests can feed it numbers.
 *
 * @module
 */
import type { GenerateResult, PlanSpec } from "./types.ts";

/** A running mean whose first sample (a cold run: compilation, allocation) is dropped once a second arrives; from then on an exponential moving average with weight `alpha` for the newest sample, which follows a shared host's changing load. */
export class WarmMean {
  private n = 0;
  private mean = 0;

  constructor(readonly alpha = 0.3) {}

  /** Adds one sample. */
  add(x: number): void {
    this.n++;
    if (this.n <= 2) this.mean = x; // the first alone, then restart without it
    else this.mean += this.alpha * (x - this.mean);
  }

  /** The mean; undefined before any sample. */
  get value(): number | undefined {
    return this.n === 0 ? undefined : this.mean;
  }
}

/** What a model looks like to the predictor: its segments, native size and cache schedules. */
export interface ModelLayout {
  /** The size a plan without one is made at (pixels). */
  native: { width: number; height: number };
  /** Per segment in run order: -1 for glue, else the cacheable block's index. */
  segments: number[];
  /**
   * The model's cache schedules: full id (`dpm-20-delta-0.16`), short name, solver, steps and
   * the recompute table (`recompute[step][block]`).
   */
  schedules: { id: string; name: string; solver: string; steps: number; recompute: boolean[][] }[];
}

/** Measured figures of one (model, UNet batch). */
interface BatchStats {
  segments: WarmMean[];
  overheadPerStep: WarmMean;
  textEncoder: WarmMean;
  decoder: WarmMean;
}

function statsKey(batch: number, width: number, height: number): string {
  return `${batch}@${width}x${height}`;
}

/** UNet batch of one image of a plan. */
export function unetBatch(guided: boolean): number {
  return guided ? 2 : 1;
}

/** Predicts plan wall times per model from measured generations. */
export class LatencyModel {
  #layouts = new Map<string, ModelLayout>();
  /** Per model: figures by `${batch}@${width}x${height}`. */
  #stats = new Map<string, Map<string, BatchStats>>();

  /** `layouts`: the models by name. `alpha`: weight of the newest sample in the moving averages. */
  constructor(layouts: Record<string, ModelLayout>, readonly alpha = 0.3) {
    for (const [name, layout] of Object.entries(layouts)) this.#layouts.set(name, layout);
  }

  #layout(model: string): ModelLayout {
    const l = this.#layouts.get(model);
    if (!l) throw new Error(`no latency layout for model ${JSON.stringify(model)}`);
    return l;
  }

  #statsFor(model: string, key: string, create: boolean): BatchStats | undefined {
    let byKey = this.#stats.get(model);
    if (!byKey) this.#stats.set(model, byKey = new Map());
    let s = byKey.get(key);
    if (!s && create) {
      s = {
        segments: this.#layout(model).segments.map(() => new WarmMean(this.alpha)),
        overheadPerStep: new WarmMean(this.alpha),
        textEncoder: new WarmMean(this.alpha),
        decoder: new WarmMean(this.alpha),
      };
      byKey.set(key, s);
    }
    return s;
  }

  /**
   * The figures to predict a plan of `batch` at `width`×`height` from, and the factor to scale
   * them by: the plan's own when measured; else the other batch at that size (a batch of 2 costs
   * at most twice a batch of 1); else the same batch at another measured size, scaled by the ratio
   * of pixels (a rough first guess until that size has run once).
   */
  #figures(
    model: string,
    batch: number,
    width: number,
    height: number,
  ): { s: BatchStats; scale: number } | undefined {
    const byKey = this.#stats.get(model);
    if (!byKey) return undefined;
    const own = byKey.get(statsKey(batch, width, height));
    if (own) return { s: own, scale: 1 };
    const other = byKey.get(statsKey(batch === 2 ? 1 : 2, width, height));
    if (other) return { s: other, scale: batch === 2 ? 2 : 1 };
    for (const [key, s] of byKey) {
      const m = /^(\d+)@(\d+)x(\d+)$/.exec(key)!;
      if (Number(m[1]) !== batch) continue;
      return { s, scale: (width * height) / (Number(m[2]) * Number(m[3])) };
    }
    return undefined;
  }

  /** Records one finished generation of `model` (its profile, stage timings and step count). */
  observe(model: string, r: Pick<GenerateResult, "profile" | "timings" | "steps">): void {
    const { profile, timings } = r;
    const layout = this.#layout(model);
    if (profile.runs.length !== layout.segments.length) {
      throw new Error(
        `profile of ${model} has ${profile.runs.length} segments, the model ${layout.segments.length}`,
      );
    }
    const s = this.#statsFor(model, statsKey(profile.batch, profile.width, profile.height), true)!;
    let segmentMs = 0;
    profile.runs.forEach((runs, k) => {
      segmentMs += profile.ms[k];
      if (runs > 0) s.segments[k].add(profile.ms[k] / runs);
    });
    if (r.steps > 0) s.overheadPerStep.add(Math.max(0, timings.unetMs - segmentMs) / r.steps);
    s.textEncoder.add(timings.textEncoderMs);
    s.decoder.add(timings.decoderMs);
  }

  /** The recompute table of `spec`'s schedule; null for none; undefined when unknown. */
  #recompute(layout: ModelLayout, spec: PlanSpec): boolean[][] | null | undefined {
    if (spec.schedule === null) return null;
    return layout.schedules.find((s) =>
      s.id === spec.schedule ||
      (s.name === spec.schedule && s.solver === spec.solver && s.steps === spec.steps)
    )?.recompute;
  }

  /**
   * Predicted wall time of `spec` on `model` in ms (see the module doc). Figures of the plan's
   * batch are used when measured, else the other batch's (a doubled batch costs at most twice);
   * `Infinity` while nothing was measured, and an unknown schedule is predicted uncached (an
   * upper bound).
   */
  predict(model: string, spec: PlanSpec): number {
    const layout = this.#layout(model);
    const width = spec.width ?? layout.native.width, height = spec.height ?? layout.native.height;
    const found = this.#figures(model, unetBatch(spec.guided), width, height);
    if (!found) return Infinity;
    const { s, scale } = found;
    const table = this.#recompute(layout, spec) ?? null;
    let unet = 0;
    for (let step = 0; step < spec.steps; step++) {
      const row = table?.[step];
      for (const [k, block] of layout.segments.entries()) {
        if (block >= 0 && row && !row[block]) continue;
        const ms = s.segments[k].value;
        if (ms === undefined) return Infinity;
        unet += ms;
      }
      unet += s.overheadPerStep.value ?? 0;
    }
    const te = s.textEncoder.value, dec = s.decoder.value;
    if (te === undefined || dec === undefined) return Infinity;
    return (spec.n ?? 1) * scale * (te + dec + unet);
  }

  /** The longest mean segment time of `model` at the batch of guided (or unguided) plans, in ms: how long a cancel may take to be noticed. Undefined before a measurement. */
  longestSegmentMs(model: string, guided: boolean): number | undefined {
    const { width, height } = this.#layout(model).native;
    const s = this.#statsFor(model, statsKey(unetBatch(guided), width, height), false);
    const means = s?.segments.map((m) => m.value ?? 0) ?? [];
    return means.length ? Math.max(...means) : undefined;
  }

  /** Whether `model` has figures for the batch of guided (or unguided) plans. */
  measured(model: string, guided: boolean): boolean {
    const { width, height } = this.#layout(model).native;
    return this.#statsFor(model, statsKey(unetBatch(guided), width, height), false) !== undefined;
  }
}

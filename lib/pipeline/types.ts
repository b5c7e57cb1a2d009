/**
 * The contract between the pipeline (prompt → image) and its callers: the CLI, the HTTP service,
 * the cron jobs and the benchmarks. Callers never touch sessions or tensors: the service asks for
 * models, predictions and images through {@link ImageGenerator}, so it can be tested against any
 * implementation.
 *
 * @module
 */
import type { RgbaImage } from "../image/png.ts";
import type { PromptReport } from "../model/prompt.ts";

import type { SolverName } from "../solvers/solver.ts";

export type { SolverName };

import type { Backend } from "../runtime/backend.ts";
import type { AbortLike } from "../unet/engine.ts";
import type { Tokenizer } from "../model/tokenizer.ts";
import type { SizeSupport } from "../model/sizes.ts";

export type { AbortLike, Backend };

import type { PlanSpec, ScheduleInfo } from "../planning/planner.ts";
import type { Frontier } from "../planning/frontier.ts";

export type { PlanSpec, ScheduleInfo };

/** One image request, fully resolved (defaults applied, validated). */
export interface GenerateRequest {
  prompt: string;
  negativePrompt: string;
  /** Seed of the documented PRNG that draws the initial noise (see `lib/solvers/noise.ts`). */
  seed: number;
  steps: number;
  guidanceScale: number;
  solver: SolverName;
  /**
   * `none`, `auto` (the planner's choice at these steps without a deadline: the plan with the
   * lowest FD measured on the model's frontier, no cache or a shipped schedule, and no cache where
   * none is measured; lib/planning/planner.ts `resolveAutoCache`), or a schedule name or file path.
   */
  cache: string;
  /**
   * Output size in pixels (default: the model's native size). Must be one the model serves
   * (`ModelInfo.sizes`); otherwise generation throws UnsupportedSizeError (`field: "size"`).
   */
  width?: number;
  height?: number;
}

/** What a step reports while the image is being made. */
export interface Progress {
  /** 1-based step just finished. */
  step: number;
  steps: number;
  elapsedMs: number;
  /** A cheap PNG preview of the predicted clean image, when asked for. */
  preview?: Uint8Array;
}

/** Per-call options. */
export interface GenerateOptions {
  /** Checked between segments: an aborted generation rejects with the signal's reason. */
  signal?: AbortLike;
  onProgress?: (p: Progress) => void;
  /**
   * Make a preview PNG at every `previewEvery`-th step before the last (0 = never); the last
   * step's image is the result itself.
   */
  previewEvery?: number;
}

/**
 * Per-call options of {@link ImageGenerator.generate}: as {@link GenerateOptions}, with a real
 * `AbortSignal` (an implementation may listen for its `abort` event, e.g. to cancel a worker).
 */
export interface ImageJobOptions extends Omit<GenerateOptions, "signal"> {
  signal?: AbortSignal;
}

/** Stage timings of one generation in milliseconds. */
export interface Timings {
  textEncoderMs: number;
  unetMs: number;
  decoderMs: number;
  totalMs: number;
}

/** A finished image and the facts of how it was made. */
export interface GenerateResult {
  png: Uint8Array;
  /** The same image as 8-bit RGBA (for metrics and grids). */
  image: RgbaImage;
  width: number;
  height: number;
  seed: number;
  steps: number;
  solver: SolverName;
  /** Name of the cache schedule applied, or null for none. */
  schedule: string | null;
  backend: Backend;
  timings: Timings;
  /** Fraction of cacheable block evaluations that reused a cached residual. */
  skippedFraction: number;
  /** Peak bytes held by cached residuals during this generation. */
  cacheBytes: number;
  /** What the text encoder read of the prompt: token count, limit, truncation, known tokens. */
  prompt: PromptReport;
  /** The same for the negative prompt. */
  negativePrompt: PromptReport;
  /** Where the UNet time went (for latency prediction). */
  profile: UNetProfile;
}

/** One generation's UNet work per segment, for latency prediction. */
export interface UNetProfile {
  /** UNet batch of every evaluation: images × 2 with classifier-free guidance, × 1 without. */
  batch: number;
  /** Output size in pixels the evaluations were made at. */
  width: number;
  height: number;
  /** Per segment in run order: runs in this generation and their total wall time in ms. */
  runs: number[];
  ms: number[];
}

/** The image sizes a model serves (pixels). */
export type SizeInfo = Omit<SizeSupport, "vaeScaleFactor">;

/** A loaded model and what it can be asked for. */
export interface ModelInfo {
  name: string;
  /** Native output size (the default size). */
  width: number;
  height: number;
  backend: Backend;
  defaults: { steps: number; solver: SolverName; guidanceScale: number };
  schedules: ModelScheduleInfo[];
  /** Every size the model serves (set by the real generator; absent: native only). */
  sizes?: SizeInfo;
  /**
   * Fewest steps at which block caching can reuse anything: the first step computes every
   * block, so a 1-step generation (SD-Turbo style) has nothing to cache and no schedule applies.
   */
  minCacheSteps?: number;
  /** The folder's scheduler class and the solver that serves it (`exact`: the same algorithm). */
  scheduler?: { className: string | null; solver: SolverName; exact: boolean };
  /** Measured speed–quality frontiers, one per solver at most (`schedules/<model>/<solver>.frontier.json`). */
  frontiers?: Frontier[];
}

/**
 * A shipped schedule as a model lists it: what the planner knows of it, plus the number of
 * prompts its measured FD was computed over (FD depends on it: the schedule files' 256-prompt FD
 * sits well below a frontier's FD over 128 prompts).
 */
export interface ModelScheduleInfo extends ScheduleInfo {
  quality?: { fd?: number; prompts?: number };
}

/** What the service needs from the pipeline. */
export interface ImageGenerator {
  /** The loaded models; the first is the default. */
  models(): ModelInfo[];
  /**
   * Predicted wall time in ms of a plan on this host, from measured per-segment latencies (updated
   * as requests run): `n` × one image at batch 2 when `plan.guided` (the default), batch 1 without.
   */
  predictMs(model: string, plan: PlanSpec): number;
  /** The model's tokenizer (pure TypeScript: prompts are checked before any job is queued). */
  tokenizer(model: string): Tokenizer;
  /** Makes one image; rejects with the signal's reason once `opts.signal` aborts (checked between segments). */
  generate(model: string, req: GenerateRequest, opts: ImageJobOptions): Promise<GenerateResult>;
}

/**
 * The contract between the pipeline (prompt → image) and its callers: the CLI, the HTTP service,
 * the cron jobs and the benchmarks. Callers never touch sessions or tensors: the service asks for
 * models, predictions and images through {@link ImageGenerator}, so it can be tested against any
 * implementation.
 *
 * @module
 */
import type { RgbaImage } from "../image/png.ts";

import type { SolverName } from "../solvers/solver.ts";

export type { SolverName };

import type { Backend } from "../runtime/backend.ts";

export type { Backend };

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
   * `none`, `auto` (the planner's choice at these steps without a deadline: the best measured
   * quality, lib/planning/planner.ts `resolveAutoCache`), or a schedule name or file path.
   */
  cache: string;
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
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
  /** Make a preview PNG for every `previewEvery`-th step (0 = never). */
  previewEvery?: number;
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
}

/** A loaded model and what it can be asked for. */
export interface ModelInfo {
  name: string;
  /** Native output size; the only size the service accepts. */
  width: number;
  height: number;
  backend: Backend;
  defaults: { steps: number; solver: SolverName; guidanceScale: number };
  schedules: ScheduleInfo[];
  /** Measured speed–quality frontiers, one per solver at most (`schedules/<model>/<solver>.frontier.json`). */
  frontiers?: Frontier[];
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
  /** Makes one image; rejects with the signal's reason once `opts.signal` aborts (checked between segments). */
  generate(model: string, req: GenerateRequest, opts: GenerateOptions): Promise<GenerateResult>;
}

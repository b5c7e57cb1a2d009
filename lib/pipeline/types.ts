/**
 * The contract between the pipeline (prompt → image) and its callers: the CLI, the HTTP service,
 * the cron jobs and the benchmarks. Callers never touch sessions or tensors.
 *
 * @module
 */
import type { RgbaImage } from "../image/png.ts";

/** Solvers the pipeline offers (`dpm` is DPM-Solver++ 2M, the paper's "DPM"). */
export type SolverName = "ddim" | "dpm" | "euler";

/** Backends an engine can run on; `auto` picks WebGPU when an adapter exists, else wasm. */
export type BackendName = "webgpu" | "wasm";

/** One image request, fully resolved (defaults applied, validated). */
export interface GenerateRequest {
  prompt: string;
  negativePrompt: string;
  /** Seed of the documented PRNG that draws the initial noise (see `lib/solvers/noise.ts`). */
  seed: number;
  steps: number;
  guidanceScale: number;
  solver: SolverName;
  /** `none`, `auto` (the shipped schedule for this solver and step count), or a schedule name or file path. */
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
  backend: BackendName;
  timings: Timings;
  /** Fraction of cacheable block evaluations that reused a cached residual. */
  skippedFraction: number;
  /** Peak bytes held by cached residuals during this generation. */
  cacheBytes: number;
}

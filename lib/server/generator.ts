/**
 * The one interface the HTTP service, the cron jobs and the load benchmark need from the image
 * pipeline. The service never touches sessions or tensors: it asks for models, predictions and
 * images through this, so it can be tested against any implementation.
 *
 * @module
 */
import type {
  BackendName,
  GenerateOptions,
  GenerateRequest,
  GenerateResult,
  Progress,
  SolverName,
} from "../pipeline/types.ts";

export type { BackendName, GenerateOptions, GenerateRequest, GenerateResult, Progress, SolverName };

/** A shipped static cache schedule, as far as planning needs to know it. */
export interface ScheduleInfo {
  /** The name a request passes as `cache`. */
  name: string;
  /** The solver and step count the schedule was derived for; it applies to no other. */
  solver: SolverName;
  steps: number;
  /** Fraction of cacheable block evaluations the schedule reuses (0 = none, 1 = all). */
  skippedFraction: number;
  /** Measured quality; `fd` is a distance to the uncached images (lower is better). */
  quality?: { fd?: number };
}

/** A loaded model and what it can be asked for. */
export interface ModelInfo {
  name: string;
  /** Native output size; the only size the service accepts. */
  width: number;
  height: number;
  backend: BackendName;
  defaults: { steps: number; solver: SolverName; guidanceScale: number };
  schedules: ScheduleInfo[];
}

/** A candidate plan: what a prediction is asked about. */
export interface PlanSpec {
  steps: number;
  solver: SolverName;
  /** A schedule name, or null for no cache. */
  schedule: string | null;
  /** Images made one after another (default 1). */
  n?: number;
}

/** What the service needs from the pipeline. */
export interface ImageGenerator {
  /** The loaded models; the first is the default. */
  models(): ModelInfo[];
  /** Predicted wall time in ms of a plan on this host, from measured per-segment latencies (updated as requests run). */
  predictMs(model: string, plan: PlanSpec): number;
  /** Makes one image; rejects with the signal's reason once `opts.signal` aborts (checked between segments). */
  generate(model: string, req: GenerateRequest, opts: GenerateOptions): Promise<GenerateResult>;
}

/**
 * The messages between the HTTP process ({@link WorkerPool}) and a generation worker
 * (`worker.ts`). Buffers travel as transferables (moved, not copied): PNG bytes, preview PNGs and
 * the RGBA image. Cancellation does not travel as a message — a worker busy in wasm reads no
 * messages until its generation ends — but through a flag in a `SharedArrayBuffer` the worker
 * reads with `Atomics.load` between UNet segments (see {@link CANCEL_SLOT}).
 *
 * @module
 */
import type { BackendChoice } from "../runtime/backend.ts";
import type { ModelLayout } from "../pipeline/latency.ts";
import type { FailedModel } from "../pipeline/service.ts";
import type { GenerateRequest, GenerateResult, ModelInfo, Progress } from "../pipeline/types.ts";

/** Index in the cancel `Int32Array`: holds the id of the job to stop (0 = none). */
export const CANCEL_SLOT = 0;

/** How much a worker warms up before it is ready (see `load`). */
export type WarmUp = "calibrate" | "compile";

/** Main → worker. */
export type ToWorker =
  | {
    type: "load";
    /** The model folders to load (the first is the default model). */
    modelDirs: string[];
    backend: BackendChoice;
    /** Root of the schedules folders (`<root>/<model>/`); default the repository's. */
    schedulesRoot?: string;
    /** One `Int32Array` slot ({@link CANCEL_SLOT}) shared with the pool. */
    cancel: SharedArrayBuffer;
    /**
     * Before answering `ready`: `calibrate` warms the request path until predictions are
     * calibrated; `compile` runs one short generation (compilation, allocation) only, for workers
     * whose figures the pool already has.
     */
    warmUp: WarmUp;
  }
  | {
    type: "generate";
    /** Positive, unique per worker; the cancel flag names it. */
    job: number;
    model: string;
    req: GenerateRequest;
    /** Send `progress` messages (with a preview PNG every `previewEvery` steps; 0 = none). */
    progress: boolean;
    previewEvery: number;
  };

/** A loaded model as the pool needs it: its description and its layout for latency prediction. */
export interface LoadedModel {
  info: ModelInfo;
  layout: ModelLayout;
}

/** A finished generation's result and what it measured. */
export type WorkerResult = GenerateResult;

/** Worker → main. */
export type FromWorker =
  | {
    type: "ready";
    models: LoadedModel[];
    /** Generations run while warming up (the pool's predictor learns from them). */
    warmUp: { model: string; result: Pick<GenerateResult, "profile" | "timings" | "steps"> }[];
    /** Model folders that failed to load (the others are served). */
    failed: FailedModel[];
  }
  | { type: "load-failed"; message: string }
  | { type: "progress"; job: number; progress: Progress }
  | { type: "result"; job: number; result: WorkerResult }
  | {
    type: "failed";
    job: number;
    message: string;
    /** True when the job stopped because its cancel flag was set. */
    cancelled: boolean;
    /** The worker's runtime may be broken (a wasm trap): the pool replaces it. */
    fatal: boolean;
    /**
     * The request asked for what the model cannot make (a size it does not serve, or a plan
     * that does not fit the backend's memory): the message is fit for the client.
     */
    refused?: boolean;
  };

/**
 * Creating onnxruntime-web sessions on a resolved backend. All session runs of a process (or a
 * worker) go through one queue ({@link serialized}): two sessions running at once on one WebGPU
 * device can crash (onnxruntime#32561), and on wasm they would only compete for the same core.
 *
 * @module
 */

import type { Backend } from "./backend.ts";
import { ort, ortWasm, type Session } from "./ort.ts";

/** Options for {@link createSession} beyond the backend. */
export interface CreateSessionOptions {
  /** WebGPU only: where each output should stay (`gpu-buffer` keeps it on the GPU). */
  preferredOutputLocation?: ort.InferenceSession.SessionOptions["preferredOutputLocation"];
  /** Weights files the model refers to by `location`. */
  externalData?: { path: string; data: Uint8Array }[];
  /**
   * Fixes symbolic dimensions (e.g. `{ batch: 2 }`): shapes become static, so onnxruntime folds the
   * shape arithmetic at load. The session then accepts only inputs of exactly those sizes.
   */
  freeDimensionOverrides?: Record<string, number>;
  /**
   * WebGPU only: record the GPU commands on an early run and replay them afterwards
   * (onnxruntime-web `enableGraphCapture`). Needs static shapes, every input and output in a GPU
   * buffer, every node on the WebGPU EP; inputs are bound on the first run and stay bound.
   */
  enableGraphCapture?: boolean;
}

/**
 * Creates a session from model bytes on exactly the given backend (no silent fallback), after
 * every earlier {@link serialized} call (session creation touches the same device as runs).
 */
export function createSession(
  model: Uint8Array,
  backend: Backend,
  opts: CreateSessionOptions = {},
): Promise<Session> {
  return serialized(() => openSession(model, backend, opts));
}

/** {@link createSession} without the queue: for code already running inside {@link serialized}. */
export async function openSession(
  model: Uint8Array,
  backend: Backend,
  opts: CreateSessionOptions = {},
): Promise<Session> {
  const options: ort.InferenceSession.SessionOptions = {
    // the EP as an object: onnxruntime-web passes enableGraphCapture to the WebGPU EP only then
    executionProviders: [{ name: backend }],
    graphOptimizationLevel: "all",
    logSeverityLevel: 3,
  };
  if (opts.externalData?.length) options.externalData = opts.externalData;
  if (opts.freeDimensionOverrides) options.freeDimensionOverrides = opts.freeDimensionOverrides;
  if (backend === "webgpu") {
    if (opts.preferredOutputLocation) {
      options.preferredOutputLocation = opts.preferredOutputLocation;
    }
    if (opts.enableGraphCapture) options.enableGraphCapture = true;
  }
  const build = backend === "wasm" ? await ortWasm() : ort;
  return await build.InferenceSession.create(model, options);
}

let queue: Promise<unknown> = Promise.resolve();

/**
 * Runs `fn` after every earlier serialized call has settled: one model evaluation at a time per
 * process. Do not call `serialized` again from inside `fn` (it would wait for itself).
 */
export function serialized<T>(fn: () => Promise<T>): Promise<T> {
  const run = queue.then(fn, fn);
  queue = run.catch(() => {});
  return run;
}

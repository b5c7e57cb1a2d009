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
}

/** Creates a session from model bytes on exactly the given backend (no silent fallback). */
export async function createSession(
  model: Uint8Array,
  backend: Backend,
  opts: CreateSessionOptions = {},
): Promise<Session> {
  const options: ort.InferenceSession.SessionOptions = {
    executionProviders: [backend],
    graphOptimizationLevel: "all",
    logSeverityLevel: 3,
  };
  if (opts.externalData?.length) options.externalData = opts.externalData;
  if (backend === "webgpu" && opts.preferredOutputLocation) {
    options.preferredOutputLocation = opts.preferredOutputLocation;
  }
  const build = backend === "wasm" ? await ortWasm() : ort;
  return await serialized(() => build.InferenceSession.create(model, options));
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

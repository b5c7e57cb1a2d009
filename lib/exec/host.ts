/**
 * The body of a generation worker: loads the models (its own onnxruntime-web instance), warms the
 * request path, then runs one generation at a time as the pool asks, sending progress, previews
 * and results back as messages with their buffers transferred. A generation stops at the next
 * UNet segment once the pool writes its job id into the shared cancel flag.
 *
 * @module
 */
import {
  describeModel,
  loadPipelines,
  modelLayout,
  PipelineGenerator,
} from "../pipeline/service.ts";
import { UnsupportedSizeError } from "../model/sizes.ts";
import { PlanMemoryError } from "../model/memory.ts";
import type { AbortLike } from "../unet/engine.ts";
import { CANCEL_SLOT, type FromWorker, type ToWorker } from "./protocol.ts";

/** Thrown into a generation whose job was cancelled by the pool. */
export class JobCancelled extends Error {
  override name = "JobCancelled";
}

/** A {@link AbortLike} that is aborted once `flag[CANCEL_SLOT]` holds `job`. */
export function cancelSignal(flag: Int32Array, job: number): AbortLike {
  const reason = new JobCancelled(`job ${job} was cancelled`);
  return {
    get aborted() {
      return Atomics.load(flag, CANCEL_SLOT) === job;
    },
    reason,
    throwIfAborted() {
      if (Atomics.load(flag, CANCEL_SLOT) === job) throw reason;
    },
  };
}

/** The buffers behind `views` that can be moved to another thread (not shared memory). */
export function transferable(...views: (ArrayBufferView | undefined)[]): Transferable[] {
  const out = new Set<ArrayBuffer>();
  for (const v of views) if (v && v.buffer instanceof ArrayBuffer) out.add(v.buffer);
  return [...out];
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** What a worker's global scope offers the host. */
export interface WorkerScope {
  postMessage(m: FromWorker, transfer?: Transferable[]): void;
  onmessage: ((e: MessageEvent) => void) | null;
}

/**
 * Serves pool messages on `scope` (a worker's global scope), first the `early` ones that arrived
 * while the worker's modules loaded. Messages are handled one after another.
 */
export function serveWorker(scope: WorkerScope, early: MessageEvent[]): void {
  let generator: PipelineGenerator | undefined;
  let flag: Int32Array | undefined;
  const post = (m: FromWorker, transfer: Transferable[] = []) => scope.postMessage(m, transfer);

  async function handle(msg: ToWorker): Promise<void> {
    if (msg.type === "load") {
      try {
        flag = new Int32Array(msg.cancel);
        const { loaded, failed } = await loadPipelines(
          msg.modelDirs,
          msg.backend,
          () => {},
          msg.schedulesRoot,
        );
        if (loaded.length === 0) {
          throw new Error(failed.map((f) => `model ${f.name}: ${f.reason}`).join("; "));
        }
        generator = new PipelineGenerator(loaded);
        const warmUp = await generator.warmUp({
          maxRuns: msg.warmUp === "compile" ? 0 : undefined,
        });
        post({
          type: "ready",
          models: generator.pipelines.map((p) => ({
            info: describeModel(p),
            layout: modelLayout(p),
          })),
          // the first run of each model was cold (compilation, allocation): not a latency sample
          warmUp: warmUp.filter((w, i) => warmUp.findIndex((x) => x.model === w.model) !== i).map((
            { model, result },
          ) => ({
            model,
            result: { profile: result.profile, timings: result.timings, steps: result.steps },
          })),
          failed,
        });
      } catch (e) {
        post({ type: "load-failed", message: errorMessage(e) });
      }
      return;
    }
    const { job } = msg;
    if (!generator || !flag) {
      post({
        type: "failed",
        job,
        message: "the worker has no model loaded",
        cancelled: false,
        fatal: true,
      });
      return;
    }
    const signal = cancelSignal(flag, job);
    try {
      const r = await generator.generate(msg.model, msg.req, {
        signal,
        previewEvery: msg.previewEvery,
        onProgress: msg.progress
          ? (progress) =>
            post(
              { type: "progress", job, progress },
              transferable(progress.preview),
            )
          : undefined,
      });
      post({ type: "result", job, result: r }, transferable(r.png, r.image.data));
    } catch (e) {
      post({
        type: "failed",
        job,
        message: errorMessage(e),
        cancelled: signal.aborted,
        fatal: e instanceof WebAssembly.RuntimeError,
        refused: e instanceof UnsupportedSizeError || e instanceof PlanMemoryError,
      });
    }
  }

  let chain = Promise.resolve();
  scope.onmessage = (e: MessageEvent) => {
    chain = chain.then(() => handle(e.data as ToWorker));
  };
  for (const e of early) scope.onmessage(e);
}

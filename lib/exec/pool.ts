/**
 * The execution layer: a pool of generation workers behind the `ImageGenerator` interface, so the
 * HTTP process never runs model code. onnxruntime-web's wasm `session.run()` computes
 * synchronously on its thread; in a worker that blocks only the worker, and the request loop keeps
 * answering health checks, streaming progress, firing deadlines and taking new requests.
 *
 * - Each worker (`worker.ts`) loads every model of the models folder with its own runtime and
 *   warms the request path; the pool learns the models' layouts and predicts plan times from
 *   what every worker measures ({@link LatencyModel}).
 * - A generation goes to an idle worker (callers wait in FIFO order when none is); progress
 *   events, previews and results come back as messages with their buffers transferred.
 * - Cancellation reaches a busy worker through a `SharedArrayBuffer` flag read between UNet
 *   segments; a worker that does not stop within `CANCEL_GRACE_MS` (5 s) is terminated and
 *   replaced.
 * - A worker that crashes, stops sending messages for longer than its watchdog allows, or
 *   reports a broken runtime fails its job with {@link WorkerFailed} and is replaced; the other
 *   workers keep serving.
 *
 * @module
 */
import { errorFields, type Logger, silentLogger } from "../io/log.ts";
import { LatencyModel, type ModelLayout } from "../pipeline/latency.ts";
import type { FailedModel } from "../pipeline/service.ts";
import type {
  GenerateRequest,
  GenerateResult,
  ImageGenerator,
  ImageJobOptions,
  ModelInfo,
  PlanSpec,
} from "../pipeline/types.ts";
import { type BackendChoice, resolveBackend } from "../runtime/backend.ts";
import { isGuided } from "../solvers/guidance.ts";
import { type ModelFolder, readModelFolder } from "../model/folder.ts";
import type { Tokenizer } from "../model/tokenizer.ts";
import { CANCEL_SLOT, type FromWorker, type ToWorker } from "./protocol.ts";

/** A worker failed while running a job (crash, hang, broken runtime); the job did not finish. */
export class WorkerFailed extends Error {
  override name = "WorkerFailed";
}

/**
 * The model cannot make what was asked (a size it does not serve, a plan that does not fit the
 * backend's memory); the message says why and is fit for the client.
 */
export class GenerationRefused extends Error {
  override name = "GenerationRefused";
}

/** The pool is closed (shutting down); no more jobs are taken. */
export class PoolClosed extends Error {
  override name = "PoolClosed";
}

/** Options of {@link WorkerPool.start}. */
export interface PoolOptions {
  /**
   * The model folders to serve, the default first (see `modelFolders`): paths, or folders the
   * start-up check already read (`readModelFolder`), which are not read again.
   */
  modelDirs: (string | ModelFolder)[];
  backend: BackendChoice;
  /** How many workers; `"auto"`: see {@link autoWorkerCount}. */
  workers: number | "auto";
  /** Root of the schedules folders (`<root>/<model>/`); default the repository's `schedules/`. */
  schedulesRoot?: string;
  logger?: Logger;
}

/**
 * Least time without a message from a busy worker before it counts as hung (a job predicted to
 * take longer gets twice its prediction).
 */
const STALL_MS = 30_000;

/** How long a cancelled job may take to stop before its worker is replaced. */
const CANCEL_GRACE_MS = 5_000;

/** The worker module. */
const WORKER_URL = new URL("./worker.ts", import.meta.url);

/** What decides the default worker count. */
export interface HostFacts {
  /** Logical CPU cores (`navigator.hardwareConcurrency`). */
  cores: number;
  /** Memory available to new workers in bytes (after the first one loaded). */
  availableBytes: number;
  /** Resident memory one worker took to load (measured on the first one). */
  perWorkerBytes: number;
  /** The backend the first worker resolved. */
  backend: "wasm" | "webgpu";
}

/** Share of the available memory further workers may take. */
export const MEMORY_SHARE = 0.7;

/**
 * The default worker count: one per GPU device on WebGPU (sessions on one device must not run
 * concurrently: onnxruntime#32561); on wasm one single-threaded worker per core, as far as
 * {@link MEMORY_SHARE} of the available memory holds them; at least 1.
 */
export function autoWorkerCount(h: HostFacts): number {
  if (h.backend === "webgpu") return 1;
  const byMemory = 1 +
    Math.floor((MEMORY_SHARE * h.availableBytes) / Math.max(1, h.perWorkerBytes));
  return Math.max(1, Math.min(h.cores, byMemory));
}

/** The state of one worker, as `/healthz` reports it. */
export interface WorkerStatus {
  id: number;
  state: "loading" | "idle" | "busy" | "failed";
  /**
   * Resident memory the process gained while this worker last loaded, in bytes: an RSS delta
   * measured once per load (start-up, restart), not a live figure; null until it has loaded.
   */
  loadMemoryBytes: number | null;
  jobs: number;
  restarts: number;
}

interface Running {
  id: number;
  model: string;
  resolve(r: GenerateResult): void;
  reject(e: unknown): void;
  onProgress?: ImageJobOptions["onProgress"];
  signal?: AbortSignal;
  onAbort?: () => void;
  stallLimitMs: number;
  watchdog?: ReturnType<typeof setTimeout>;
  cancelTimer?: ReturnType<typeof setTimeout>;
}

interface Slot {
  id: number;
  worker?: Worker;
  state: WorkerStatus["state"];
  cancel: Int32Array;
  job?: Running;
  nextJob: number;
  loadMemoryBytes: number | null;
  jobs: number;
  restarts: number;
  /** Settles the current load (ready or failed). */
  loaded?: { resolve(): void; reject(e: Error): void };
}

interface Waiter {
  grant(slot: Slot): void;
  refuse(e: Error): void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

/**
 * The web `Worker` constructor, taken when this module is evaluated: onnxruntime-web's wasm
 * runtime, once it runs in a process, replaces `globalThis.Worker` with Node's `worker_threads`
 * Worker (emscripten's Node code path, since Deno has `process`), whose workers have no `self`
 * and whose messages never reach a web `onmessage` handler. A process that ran a model on its
 * own thread before starting a pool (a test, a benchmark) would otherwise start workers that
 * never answer.
 */
const WebWorker: typeof Worker = globalThis.Worker;

/** Reload attempts of a worker that failed to load before its slot is given up. */
const MAX_RELOADS = 3;

function rss(): number {
  return Deno.memoryUsage().rss;
}

/** The pool; see the module doc. Start it with {@link WorkerPool.start}. */
export class WorkerPool implements ImageGenerator {
  #slots: Slot[] = [];
  #waiters: Waiter[] = [];
  #models: ModelInfo[] = [];
  #failed: FailedModel[] = [];
  #tokenizers = new Map<string, Tokenizer>();
  #latency!: LatencyModel;
  #closed = false;
  #log: Logger;
  #opts: PoolOptions;
  /** The backend the workers run on (resolved by the first one). */
  backend: "wasm" | "webgpu" = "wasm";

  private constructor(opts: PoolOptions) {
    this.#log = opts.logger ?? silentLogger;
    this.#opts = { ...opts };
  }

  /**
   * Starts the workers: the first alone (it measures what one costs), then the rest. Rejects
   * with the first worker's load error (the models cannot be served); a later worker that fails
   * to load is logged and left out.
   */
  static async start(opts: PoolOptions): Promise<WorkerPool> {
    const pool = new WorkerPool(opts);
    try {
      await pool.#startAll();
    } catch (e) {
      pool.close();
      throw e;
    }
    return pool;
  }

  async #startAll(): Promise<void> {
    for (const m of this.#opts.modelDirs) {
      const folder = typeof m === "string" ? await readModelFolder(m) : m;
      this.#tokenizers.set(folder.name, folder.tokenizer);
    }
    // Resolve the backend once here: workers then load exactly it (no probe, no log line each),
    // except `auto` on a hardware adapter, where each model races WebGPU against wasm.
    const notes: string[] = [];
    const resolved = await resolveBackend(this.#opts.backend, (l) => notes.push(l));
    for (const note of notes) this.#log.info(note);
    if (this.#opts.backend !== "auto" || resolved.backend === "wasm") {
      this.#opts.backend = resolved.backend;
    }
    const first = this.#newSlot();
    await this.#load(first);
    const asked = this.#opts.workers;
    let count: number;
    if (asked === "auto") {
      count = autoWorkerCount({
        cores: navigator.hardwareConcurrency || 1,
        availableBytes: Deno.systemMemoryInfo().available,
        perWorkerBytes: first.loadMemoryBytes ?? 0,
        backend: this.backend,
      });
    } else {
      count = asked;
    }
    this.#log.info("workers", {
      count,
      requested: asked,
      cores: navigator.hardwareConcurrency,
      backend: this.backend,
      firstWorkerMiB: Math.round((first.loadMemoryBytes ?? 0) / 2 ** 20),
    });
    for (let i = 1; i < count; i++) {
      const slot = this.#newSlot();
      try {
        await this.#load(slot);
      } catch (e) {
        this.#log.error("worker failed to start", { worker: slot.id, ...errorFields(e) });
      }
    }
  }

  #newSlot(): Slot {
    const slot: Slot = {
      id: this.#slots.length + 1,
      state: "loading",
      cancel: new Int32Array(new SharedArrayBuffer(4)),
      nextJob: 1,
      loadMemoryBytes: null,
      jobs: 0,
      restarts: 0,
    };
    this.#slots.push(slot);
    return slot;
  }

  /** Spawns the slot's worker and waits for it to be ready (or to fail loading). */
  #load(slot: Slot): Promise<void> {
    const before = rss();
    const t0 = performance.now();
    slot.state = "loading";
    const worker = new WebWorker(WORKER_URL, { type: "module" });
    slot.worker = worker;
    const done = new Promise<void>((resolve, reject) => (slot.loaded = { resolve, reject }));
    worker.onmessage = (e: MessageEvent<FromWorker>) => this.#onMessage(slot, worker, e.data);
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      this.#onCrash(slot, worker, `the worker crashed: ${e.message}`);
    };
    worker.onmessageerror = () => this.#onCrash(slot, worker, "a worker message could not be read");
    const msg: ToWorker = {
      type: "load",
      modelDirs: this.#opts.modelDirs.map((m) => typeof m === "string" ? m : m.dir),
      backend: this.#opts.backend,
      schedulesRoot: this.#opts.schedulesRoot,
      cancel: slot.cancel.buffer as SharedArrayBuffer,
      // the first worker calibrates the predictions; later and replacement ones only compile
      warmUp: this.#models.length === 0 ? "calibrate" : "compile",
    };
    worker.postMessage(msg);
    return done.then(() => {
      slot.loadMemoryBytes = Math.max(0, rss() - before);
      this.#log.info("worker ready", {
        worker: slot.id,
        backend: this.backend,
        loadMs: Math.round(performance.now() - t0),
        loadMemoryMiB: Math.round(slot.loadMemoryBytes / 2 ** 20),
      });
    });
  }

  #onMessage(slot: Slot, worker: Worker, m: FromWorker): void {
    if (slot.worker !== worker) return; // a replaced worker's late message
    switch (m.type) {
      case "ready": {
        if (this.#models.length === 0) {
          this.#models = m.models.map((x) => x.info);
          this.backend = m.models[0]?.info.backend ?? "wasm";
          const layouts: Record<string, ModelLayout> = {};
          for (const x of m.models) layouts[x.info.name] = x.layout;
          this.#latency = new LatencyModel(layouts);
          this.#failed = m.failed;
          for (const f of m.failed) {
            this.#log.error("model unavailable: it failed to load", {
              model: f.name,
              reason: f.reason,
            });
          }
        }
        for (const w of m.warmUp) this.#latency.observe(w.model, w.result);
        slot.state = "idle";
        slot.loaded?.resolve();
        slot.loaded = undefined;
        this.#pump();
        return;
      }
      case "load-failed": {
        this.#loadFailed(slot, worker, m.message);
        return;
      }
      case "progress": {
        const job = slot.job;
        if (job?.id !== m.job) return;
        this.#arm(slot, job);
        if (job.signal?.aborted) return;
        try {
          job.onProgress?.(m.progress);
        } catch (e) {
          this.#log.error("progress handler failed", errorFields(e));
        }
        return;
      }
      case "result": {
        const job = slot.job;
        if (job?.id !== m.job) return;
        this.#latency.observe(job.model, m.result);
        this.#finish(slot, job);
        job.resolve(m.result);
        return;
      }
      case "failed": {
        const job = slot.job;
        if (job?.id !== m.job) return;
        if (m.fatal) {
          this.#replace(slot, `the worker's runtime failed: ${m.message}`);
          return;
        }
        this.#finish(slot, job);
        if (m.cancelled && job.signal?.aborted) job.reject(job.signal.reason);
        else job.reject(m.refused ? new GenerationRefused(m.message) : new Error(m.message));
        return;
      }
    }
  }

  /** A job settled normally: the slot takes the next one. */
  #finish(slot: Slot, job: Running): void {
    this.#disarm(job);
    slot.job = undefined;
    slot.jobs++;
    slot.state = "idle";
    this.#pump();
  }

  #disarm(job: Running): void {
    clearTimeout(job.watchdog);
    clearTimeout(job.cancelTimer);
    if (job.onAbort) job.signal?.removeEventListener("abort", job.onAbort);
  }

  /** (Re)starts the stall watchdog of a running job. */
  #arm(slot: Slot, job: Running): void {
    clearTimeout(job.watchdog);
    job.watchdog = setTimeout(() => {
      this.#replace(
        slot,
        `the worker sent nothing for ${Math.round(job.stallLimitMs)} ms (hung); it was replaced`,
      );
    }, job.stallLimitMs);
  }

  #onCrash(slot: Slot, worker: Worker, why: string): void {
    if (slot.worker !== worker) return;
    if (slot.state === "loading" && slot.loaded) this.#loadFailed(slot, worker, why);
    else this.#replace(slot, why);
  }

  /** The slot's worker failed while loading: it is terminated, the slot failed, the load rejected. */
  #loadFailed(slot: Slot, worker: Worker, why: string): void {
    worker.terminate();
    slot.worker = undefined;
    slot.state = "failed";
    slot.loaded?.reject(new Error(why));
    slot.loaded = undefined;
  }

  /**
   * Terminates the slot's worker, fails its job with {@link WorkerFailed} (or with the job's
   * abort reason when it was being cancelled) and starts a replacement.
   */
  #replace(slot: Slot, why: string): void {
    slot.worker?.terminate();
    slot.worker = undefined;
    const job = slot.job;
    slot.job = undefined;
    if (job) {
      this.#disarm(job);
      job.reject(job.signal?.aborted ? job.signal.reason : new WorkerFailed(why));
    }
    this.#log.error("worker replaced", { worker: slot.id, reason: why });
    if (this.#closed) return;
    slot.restarts++;
    this.#reload(slot, 0);
  }

  #reload(slot: Slot, attempt: number): void {
    this.#load(slot).catch((e) => {
      if (this.#closed) return;
      this.#log.error("worker failed to restart", {
        worker: slot.id,
        attempt: attempt + 1,
        ...errorFields(e),
      });
      if (attempt + 1 >= MAX_RELOADS) {
        slot.state = "failed";
        this.#failWaitersIfNoWorker();
        return;
      }
      setTimeout(() => this.#reload(slot, attempt + 1), 1000 * 2 ** attempt);
    });
  }

  #failWaitersIfNoWorker(): void {
    if (this.#slots.some((s) => s.state !== "failed")) return;
    for (const w of this.#waiters.splice(0)) {
      if (w.onAbort) w.signal?.removeEventListener("abort", w.onAbort);
      w.refuse(new WorkerFailed("no generation worker is running"));
    }
  }

  #pump(): void {
    while (this.#waiters.length > 0) {
      const slot = this.#slots.find((s) => s.state === "idle");
      if (!slot) return;
      const w = this.#waiters.shift()!;
      if (w.onAbort) w.signal?.removeEventListener("abort", w.onAbort);
      slot.state = "busy";
      w.grant(slot);
    }
  }

  /** Resolves with an idle slot (marked busy), in FIFO order. */
  #acquire(signal?: AbortSignal): Promise<Slot> {
    if (this.#closed) return Promise.reject(new PoolClosed("the worker pool is closed"));
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<Slot>((resolve, reject) => {
      const w: Waiter = {
        grant: resolve,
        refuse: reject,
        signal,
      };
      if (signal) {
        w.onAbort = () => {
          const i = this.#waiters.indexOf(w);
          if (i >= 0) this.#waiters.splice(i, 1);
          reject(signal.reason);
        };
        signal.addEventListener("abort", w.onAbort, { once: true });
      }
      this.#waiters.push(w);
      this.#pump();
      this.#failWaitersIfNoWorker();
    });
  }

  /** {@link ImageGenerator.models}. */
  models(): ModelInfo[] {
    return this.#models;
  }

  /** {@link ImageGenerator.tokenizer}: loaded in this thread (pure TypeScript, no runtime). */
  tokenizer(model: string): Tokenizer {
    const t = this.#tokenizers.get(model);
    if (!t) throw new Error(`unknown model ${JSON.stringify(model)}`);
    return t;
  }

  /** {@link ImageGenerator.predictMs}: from what every worker measured. */
  predictMs(model: string, plan: PlanSpec): number {
    return this.#latency.predict(model, plan);
  }

  /**
   * {@link ImageGenerator.generate} on the next idle worker. Rejects with the signal's reason once
   * it aborts (the worker stops at its next segment), with {@link WorkerFailed} when the worker
   * dies or hangs, and with the worker's error message otherwise.
   */
  async generate(
    model: string,
    req: GenerateRequest,
    opts: ImageJobOptions = {},
  ): Promise<GenerateResult> {
    const slot = await this.#acquire(opts.signal);
    const id = slot.nextJob++;
    const predicted = this.predictMs(model, {
      steps: req.steps,
      solver: req.solver,
      schedule: null,
      guided: isGuided(req.guidanceScale),
      width: req.width,
      height: req.height,
    });
    return await new Promise<GenerateResult>((resolve, reject) => {
      const job: Running = {
        id,
        model,
        resolve,
        reject,
        onProgress: opts.onProgress,
        signal: opts.signal,
        stallLimitMs: Math.max(STALL_MS, Number.isFinite(predicted) ? 2 * predicted : 0),
      };
      slot.job = job;
      Atomics.store(slot.cancel, CANCEL_SLOT, 0);
      if (opts.signal) {
        job.onAbort = () => {
          Atomics.store(slot.cancel, CANCEL_SLOT, id);
          job.cancelTimer = setTimeout(() => {
            if (slot.job === job) {
              this.#replace(slot, `job ${id} did not stop within ${CANCEL_GRACE_MS} ms`);
            }
          }, CANCEL_GRACE_MS);
        };
        opts.signal.addEventListener("abort", job.onAbort, { once: true });
      }
      const msg: ToWorker = {
        type: "generate",
        job: id,
        model,
        req,
        progress: opts.onProgress !== undefined,
        previewEvery: opts.previewEvery ?? 0,
      };
      this.#arm(slot, job);
      slot.worker!.postMessage(msg);
    });
  }

  /** The predictor fed by every worker's generations. */
  get latency(): LatencyModel {
    return this.#latency;
  }

  /** Model folders the workers could not load, with the reason (the others are served). */
  unavailable(): FailedModel[] {
    return [...this.#failed];
  }

  /** Workers that can take jobs now or soon (not failed). */
  get size(): number {
    return this.#slots.filter((s) => s.state !== "failed").length;
  }

  /** Every worker's state. */
  status(): WorkerStatus[] {
    return this.#slots.map((s) => ({
      id: s.id,
      state: s.state,
      loadMemoryBytes: s.loadMemoryBytes,
      jobs: s.jobs,
      restarts: s.restarts,
    }));
  }

  /**
   * Terminates worker `id` (1-based) as if it had crashed: its job fails with
   * {@link WorkerFailed} and a replacement starts. For operators and tests.
   */
  terminateWorker(id: number, why = "terminated"): void {
    const slot = this.#slots.find((s) => s.id === id);
    if (!slot?.worker) throw new Error(`no running worker ${id}`);
    this.#replace(slot, why);
  }

  /** Terminates every worker; running and waiting jobs reject with {@link PoolClosed}. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const closed = new PoolClosed("the worker pool is closed");
    for (const w of this.#waiters.splice(0)) {
      if (w.onAbort) w.signal?.removeEventListener("abort", w.onAbort);
      w.refuse(closed);
    }
    for (const s of this.#slots) {
      s.worker?.terminate();
      s.worker = undefined;
      if (s.job) {
        this.#disarm(s.job);
        s.job.reject(closed);
        s.job = undefined;
      }
      s.loaded?.reject(closed);
      s.loaded = undefined;
      s.state = "failed";
    }
  }
}

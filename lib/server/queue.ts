/**
 * A bounded FIFO queue that runs one job at a time per accelerator. A job whose signal aborts while
 * waiting leaves the queue at once; a running job gets the signal and the slot is freed only when
 * it settles, so two generations never share the device.
 *
 * @module
 */
import type { ImageGenerator } from "../pipeline/types.ts";
import { isGuided } from "../solvers/guidance.ts";

/** The queue is full: answer 429, retrying after about `retryAfterMs`. */
export class QueueFullError extends Error {
  override name = "QueueFullError";
  constructor(readonly retryAfterMs: number) {
    super("the generation queue is full");
  }
}

/** The queue is shutting down and takes no more jobs (or dropped this one unstarted). */
export class QueueClosedError extends Error {
  override name = "QueueClosedError";
  constructor() {
    super("the service is shutting down");
  }
}

/** What a job learns when it starts. */
export interface JobStart {
  /** Time it waited in the queue. */
  waitedMs: number;
}

/** A unit of work. */
export interface QueueTask<T> {
  /** Predicted run time; the sum over waiting jobs is the expected queue wait. */
  estimateMs: number;
  /** Aborting removes the job while it waits; a running job must honour it itself. */
  signal?: AbortSignal;
  /** Admit even when the queue is full (background work such as cron jobs). */
  force?: boolean;
  run(start: JobStart): Promise<T>;
}

interface Waiting {
  task: QueueTask<unknown>;
  enqueuedAt: number;
  resolve(v: unknown): void;
  reject(e: unknown): void;
  onAbort?: () => void;
}

interface Active {
  estimateMs: number;
  startedAt: number;
}

/** The job queue. */
export class JobQueue {
  readonly maxQueued: number;
  readonly concurrency: number;
  #clock: () => number;
  #waiting: Waiting[] = [];
  #active = new Set<Active>();
  #closed = false;
  #idle: (() => void)[] = [];

  constructor(opts: { maxQueued: number; concurrency?: number; clock?: () => number }) {
    this.maxQueued = opts.maxQueued;
    this.concurrency = opts.concurrency ?? 1;
    this.#clock = opts.clock ?? (() => performance.now());
  }

  /** Jobs waiting (not running). */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Jobs running. */
  get running(): number {
    return this.#active.size;
  }

  /**
   * Expected wait in ms for a job submitted now: the running jobs' predicted time left and the
   * waiting jobs' predictions laid out first-in first-out over the `concurrency` slots, each job
   * taking the slot that frees first; the new job's wait is when a slot frees after them (0 while
   * a slot is free and nothing waits).
   */
  pendingMs(): number {
    const now = this.#clock();
    const free = Array.from({ length: this.concurrency }, () => 0);
    let i = 0;
    for (const a of this.#active) {
      if (i < free.length) free[i++] = Math.max(0, a.estimateMs - (now - a.startedAt));
    }
    for (const w of this.#waiting) {
      const k = free.indexOf(Math.min(...free));
      free[k] += w.task.estimateMs;
    }
    return Math.min(...free);
  }

  /**
   * Queues a job. Throws `QueueFullError`/`QueueClosedError` synchronously when it cannot be taken;
   * the promise rejects with the signal's reason if the job is aborted while waiting.
   */
  submit<T>(task: QueueTask<T>): Promise<T> {
    if (this.#closed) throw new QueueClosedError();
    const busy = this.#active.size >= this.concurrency;
    if (!task.force && busy && this.#waiting.length >= this.maxQueued) {
      throw new QueueFullError(this.pendingMs());
    }
    if (task.signal?.aborted) return Promise.reject(task.signal.reason);
    return new Promise<T>((resolve, reject) => {
      const w: Waiting = {
        task: task as QueueTask<unknown>,
        enqueuedAt: this.#clock(),
        resolve: resolve as (v: unknown) => void,
        reject,
      };
      if (task.signal) {
        const signal = task.signal;
        w.onAbort = () => {
          const i = this.#waiting.indexOf(w);
          if (i >= 0) {
            this.#waiting.splice(i, 1);
            reject(signal.reason);
            this.#checkIdle();
          }
        };
        signal.addEventListener("abort", w.onAbort, { once: true });
      }
      this.#waiting.push(w);
      this.#pump();
    });
  }

  #pump(): void {
    while (this.#active.size < this.concurrency && this.#waiting.length > 0) {
      const w = this.#waiting.shift()!;
      if (w.onAbort) w.task.signal?.removeEventListener("abort", w.onAbort);
      const now = this.#clock();
      const a: Active = { estimateMs: w.task.estimateMs, startedAt: now };
      this.#active.add(a);
      const waitedMs = now - w.enqueuedAt;
      Promise.resolve()
        .then(() => w.task.run({ waitedMs }))
        .then(w.resolve, w.reject)
        .finally(() => {
          this.#active.delete(a);
          this.#pump();
          this.#checkIdle();
        });
    }
  }

  #checkIdle(): void {
    if (this.#active.size === 0 && this.#waiting.length === 0) {
      for (const f of this.#idle.splice(0)) f();
    }
  }

  /** Resolves once nothing runs or waits. */
  idle(): Promise<void> {
    if (this.#active.size === 0 && this.#waiting.length === 0) return Promise.resolve();
    return new Promise((r) => this.#idle.push(r));
  }

  /** Takes no more jobs and rejects the waiting ones with `QueueClosedError`; running ones go on. */
  close(): void {
    this.#closed = true;
    for (const w of this.#waiting.splice(0)) {
      if (w.onAbort) w.task.signal?.removeEventListener("abort", w.onAbort);
      w.reject(new QueueClosedError());
    }
    this.#checkIdle();
  }

  /** True once `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }
}

/**
 * An `ImageGenerator` whose `generate` goes through `queue` (admitted even when the queue is full,
 * since background work such as the cron thumbnails should wait, not fail), so it never runs
 * beside a request's generation on the same accelerator.
 */
export function queuedGenerator(generator: ImageGenerator, queue: JobQueue): ImageGenerator {
  return {
    models: () => generator.models(),
    tokenizer: (model) => generator.tokenizer(model),
    predictMs: (model, plan) => generator.predictMs(model, plan),
    generate: (model, req, opts) =>
      queue.submit({
        estimateMs: generator.predictMs(model, {
          steps: req.steps,
          solver: req.solver,
          schedule: req.cache === "none" || req.cache === "auto" ? null : req.cache,
          guided: isGuided(req.guidanceScale),
        }),
        signal: opts.signal,
        force: true,
        run: () => generator.generate(model, req, opts),
      }),
  };
}

/** `Retry-After` seconds for a wait of `ms` (at least 1). */
export function retryAfterSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

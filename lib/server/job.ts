/**
 * A generation request's life, independent of how it is answered (JSON, PNG or Server-Sent
 * Events): admission (validate, resolve the deadline, plan against it or refuse at once), the
 * queue, the run, and the mapping of every way it can end to what the client sees.
 *
 * The lifecycle is one signal, `AbortSignal.any([deadline timeout, client disconnect,
 * shutdown])`; which of the three fired first decides the answer: 504 (deadline; the miss is
 * counted), a cancellation (the client is gone; counted, never a 200), or 503 (shutting down). An
 * aborted job is answered at once; the worker running it stops at its next UNet segment and only
 * then frees its queue slot, so the queue always counts what really waits and runs.
 *
 * @module
 */
import type { ServerConfig } from "./config.ts";
import { type DeadlineSource, resolveDeadline } from "./deadline.ts";
import { ApiError, badField, shuttingDown } from "./errors.ts";
import type { Metrics } from "./metrics.ts";
import { type ChosenPlan, type PlanOutcome, planRequest } from "../planning/planner.ts";
import { DeadlineHeadroom } from "../planning/headroom.ts";
import { type JobQueue, QueueClosedError, QueueFullError, retryAfterSeconds } from "./queue.ts";
import { type GenerationParams, previewEvery, type Route, validateGeneration } from "./validate.ts";
import { errorFields, type Logger } from "../io/log.ts";
import { GenerationRefused, WorkerFailed } from "../exec/pool.ts";
import { UnsupportedSizeError } from "../model/sizes.ts";
import { PlanMemoryError } from "../model/memory.ts";
import type {
  GenerateRequest,
  GenerateResult,
  ImageGenerator,
  Progress,
} from "../pipeline/types.ts";
import { isGuided } from "../solvers/guidance.ts";
import { truncationWarning } from "../model/prompt.ts";

/** A request that passed admission. */
export interface Admission {
  p: GenerationParams;
  deadlineMs: number;
  deadlineSource: DeadlineSource;
  /** `Preference-Applied` to send when `Prefer: wait` set the deadline. */
  preferenceApplied?: string;
  /** Monotonic ms when the request arrived. */
  receivedAt: number;
  /** The plan chosen at admission (re-chosen with the time left when the job starts). */
  admitted: ChosenPlan;
}

/** A finished job. */
export interface JobOutcome {
  plan: ChosenPlan;
  results: GenerateResult[];
  waitedMs: number;
  /** Wall time from leaving the queue to the last image (ms): what the plan's prediction is for. */
  runMs: number;
}

/** Hooks a route uses to follow a job. */
export interface JobHooks {
  onStart?(plan: ChosenPlan, waitedMs: number): void;
  onProgress?(imageIndex: number, p: Progress): void;
}

/** A started job: its outcome. */
export interface RunningJob {
  outcome: Promise<JobOutcome>;
}

/** The plan and facts reported with every generated answer (`plan` in JSON, `X-*` headers for PNG). */
export interface PlanReport {
  model: string;
  size: string;
  n: number;
  steps: number;
  solver: string;
  schedule: string | null;
  cache_requested: string;
  reason: string;
  /** One sentence: the plan's measured quality and what it beat or what did not fit. */
  why: string;
  /**
   * The plan's measured quality on the model's frontier (FD and KID to real images in the
   * evaluation network's features, category accuracy 0..1, over the frontier's `prompts`); null
   * where the plan was never measured.
   */
  quality: { fd: number; kid: number; accuracy: number } | null;
  /** The headroom the plan was taken with: `predicted_ms × headroom` fitted the time left. */
  headroom: number;
  seed: number;
  seeds: number[];
  guidance_scale: number;
  backend: string;
  deadline_ms: number;
  deadline_source: DeadlineSource;
  predicted_ms: number;
  queue_wait_ms: number;
  elapsed_ms: number;
  skipped_fraction: number;
  cache_bytes: number;
  timings: { text_encoder_ms: number; unet_ms: number; decoder_ms: number; total_ms: number }[];
  /**
   * What the text encoder read of the prompt: its tokens, the most it reads, and, when the prompt
   * is longer, the text past the window that was ignored (never silently: also logged).
   */
  prompt: { tokens: number; max_tokens: number; truncated: boolean; ignored_text: string };
}

/** What jobs are made of. */
export interface JobDeps {
  generator: ImageGenerator;
  config: ServerConfig;
  queue: JobQueue;
  metrics: Metrics;
  /** Monotonic milliseconds. */
  clock: () => number;
  log: Logger;
  /** Aborts running jobs at shutdown (after the grace period). */
  shutdownSignal: AbortSignal;
  /** Seed source for requests without `seed`. */
  seedSource?: () => number;
}

/** Milliseconds as reported to clients: to a tenth. */
export const roundMs = (x: number): number => Math.round(x * 10) / 10;
/** A plan's headroom factor as reported to clients: to a hundredth. */
export const roundHeadroom = (x: number): number => Math.round(x * 100) / 100;

/** Raised inside a job when, at its start, no plan fits the time left. */
class NoLongerFits extends Error {
  override name = "NoLongerFits";
  constructor(readonly outcome: Extract<PlanOutcome, { ok: false }>) {
    super(outcome.message);
  }
}

/** Admits, runs and answers generation jobs (see the module doc). */
export class GenerationJobs {
  /**
   * How much longer than predicted jobs run here, learned from this replica's finished jobs:
   * plans are taken with this margin.
   */
  readonly headroom = new DeadlineHeadroom();

  constructor(readonly deps: JobDeps) {}

  /** Plans `p` for `budgetMs` of generation time. */
  plan(p: GenerationParams, budgetMs: number): PlanOutcome {
    const { generator, config } = this.deps;
    return planRequest({
      model: p.model,
      solver: p.solver,
      steps: p.steps,
      stepsPinned: p.stepsPinned,
      cache: p.cache,
      n: p.n,
      guided: isGuided(p.guidanceScale),
      width: p.width,
      height: p.height,
      preview: p.preview,
      autoCache: config.autoCache,
      budgetMs,
      headroom: this.headroom.factor(),
      predict: (spec) => generator.predictMs(p.model.name, spec),
    });
  }

  /**
   * Everything before queueing: validate `body`, resolve the deadline from it and `headers`, and
   * plan — or refuse at once with an {@link ApiError} (400/404 for bad input, 503 with
   * `Retry-After` when no plan fits the deadline after the expected queue wait).
   */
  admit(
    body: Record<string, unknown>,
    headers: Headers,
    route: Route,
    receivedAt: number,
  ): Admission {
    const { generator, config, queue, clock, metrics } = this.deps;
    const p = validateGeneration(
      body,
      generator.models(),
      route,
      (m) => generator.tokenizer(m),
      this.deps.seedSource,
    );
    const dl = resolveDeadline({
      bodyMs: p.deadlineMs,
      requestTimeout: headers.get("request-timeout"),
      prefer: headers.get("prefer"),
      defaultMs: config.defaultDeadlineMs,
      maxMs: config.maxDeadlineMs,
    });
    if (!dl.ok) throw badField(dl.param, dl.message);
    const queueWait = queue.pendingMs();
    const left = dl.ms - (clock() - receivedAt);
    const outcome = this.plan(p, left - queueWait);
    if (!outcome.ok) {
      metrics.deadlineRejected();
      const tooShort = outcome.fastest.predictedMs * outcome.headroom > left;
      throw new ApiError(503, {
        message: tooShort
          ? outcome.message
          : `${outcome.message} after the expected queue wait of ${Math.ceil(queueWait)} ms`,
        param: dl.source === "default" ? null : dl.source,
        type: "deadline_error",
        code: tooShort ? "deadline_too_short" : "queue_too_long",
        headers: { "retry-after": String(retryAfterSeconds(queueWait)) },
      });
    }
    return {
      p,
      deadlineMs: dl.ms,
      deadlineSource: dl.source,
      preferenceApplied: dl.preferenceApplied,
      receivedAt,
      admitted: outcome.plan,
    };
  }

  /**
   * Queues and runs an admitted job under its lifecycle signal. The outcome rejects at once when
   * the lifecycle ends (the worker stops at its next segment meanwhile); map the rejection with
   * {@link fail}. Throws an {@link ApiError} synchronously when the queue is full (429) or closed
   * (503).
   */
  start(a: Admission, client: AbortSignal, hooks: JobHooks = {}): RunningJob {
    const { queue, generator, clock, shutdownSignal } = this.deps;
    const deadlineAt = a.receivedAt + a.deadlineMs;
    const deadline = AbortSignal.timeout(Math.max(0, deadlineAt - clock()));
    const signal = AbortSignal.any([deadline, client, shutdownSignal]);
    const { p } = a;
    let started = false;
    let job: Promise<JobOutcome>;
    try {
      job = queue.submit({
        estimateMs: a.admitted.predictedMs,
        signal,
        run: async ({ waitedMs }) => {
          started = true;
          const runStart = clock();
          const outcome = this.plan(p, deadlineAt - runStart);
          if (!outcome.ok) throw new NoLongerFits(outcome);
          hooks.onStart?.(outcome.plan, waitedMs);
          const results: GenerateResult[] = [];
          for (let i = 0; i < p.n; i++) {
            const req: GenerateRequest = {
              prompt: p.prompt,
              negativePrompt: p.negativePrompt,
              seed: (p.seed + i) >>> 0,
              steps: outcome.plan.steps,
              guidanceScale: p.guidanceScale,
              solver: outcome.plan.solver,
              cache: outcome.plan.schedule ?? "none",
              width: p.width,
              height: p.height,
            };
            results.push(
              await generator.generate(p.model.name, req, {
                signal,
                previewEvery: hooks.onProgress ? previewEvery(req.steps, p.partialImages) : 0,
                onProgress: hooks.onProgress ? (pr) => hooks.onProgress!(i, pr) : undefined,
              }),
            );
            signal.throwIfAborted();
          }
          return { plan: outcome.plan, results, waitedMs, runMs: clock() - runStart };
        },
      });
    } catch (e) {
      throw this.fail(e, a, started);
    }
    const aborted = new Promise<never>((_, reject) => {
      if (signal.aborted) reject(signal.reason);
      signal.addEventListener("abort", () => reject(signal.reason), { once: true });
    });
    job.catch(() => {});
    aborted.catch(() => {});
    const outcome = Promise.race([job, aborted]).catch((e) => {
      const why = signal.aborted
        ? signal.reason === deadline.reason
          ? "deadline"
          : signal.reason === shutdownSignal.reason
          ? "shutdown"
          : "client"
        : null;
      throw this.fail(e, a, started, why);
    });
    return { outcome };
  }

  /**
   * Maps a job's failure to the error its client sees, and counts it: `why` is the lifecycle
   * signal that fired first (null when the job failed by itself).
   */
  fail(
    e: unknown,
    a: Admission,
    started: boolean,
    why: "deadline" | "client" | "shutdown" | null = null,
  ): ApiError {
    const { queue, metrics, log } = this.deps;
    if (e instanceof ApiError) return e;
    const param = a.deadlineSource === "default" ? null : a.deadlineSource;
    if (e instanceof QueueFullError) {
      return new ApiError(429, {
        message: `the queue is full (${queue.waiting} waiting); retry later`,
        type: "rate_limit_error",
        code: "queue_full",
        headers: { "retry-after": String(retryAfterSeconds(e.retryAfterMs)) },
      });
    }
    if (why === "deadline") {
      metrics.deadlineMiss(started ? "running" : "queue");
      return new ApiError(504, {
        message: `the deadline of ${a.deadlineMs} ms passed while the request ${
          started ? "ran" : "waited in the queue"
        }`,
        param,
        type: "deadline_error",
        code: "deadline_exceeded",
      });
    }
    if (e instanceof NoLongerFits) {
      metrics.deadlineMiss("queue");
      return new ApiError(503, {
        message: `after waiting in the queue, ${e.outcome.message}`,
        param,
        type: "deadline_error",
        code: "deadline_too_short",
        headers: { "retry-after": String(retryAfterSeconds(queue.pendingMs())) },
      });
    }
    if (why === "shutdown" || e instanceof QueueClosedError) return shuttingDown();
    if (why === "client") {
      metrics.cancelled("client_disconnect");
      return new ApiError(499 as 400, {
        message: "client closed the request",
        code: "client_closed",
      });
    }
    if (
      e instanceof GenerationRefused || e instanceof UnsupportedSizeError ||
      e instanceof PlanMemoryError
    ) {
      return new ApiError(400, { message: e.message, param: "size", code: "unsupported_plan" });
    }
    if (e instanceof WorkerFailed) {
      log.error("generation worker failed", {
        prompt: a.p.prompt.slice(0, 200),
        ...errorFields(e),
      });
      return new ApiError(500, {
        message: "the generation worker failed; it has been replaced, retry the request",
        type: "server_error",
        code: "worker_failed",
      });
    }
    log.error("generation failed", { prompt: a.p.prompt.slice(0, 200), ...errorFields(e) });
    return new ApiError(500, {
      message: "image generation failed",
      type: "server_error",
      code: "generation_failed",
    });
  }

  /** The plan report of a finished job. */
  report(a: Admission, o: JobOutcome): PlanReport {
    const { p } = a;
    const r = o.results;
    return {
      model: p.model.name,
      size: `${r[0]?.width ?? p.width}x${r[0]?.height ?? p.height}`,
      n: p.n,
      steps: o.plan.steps,
      solver: o.plan.solver,
      schedule: r[0]?.schedule ?? o.plan.schedule,
      cache_requested: p.cache,
      reason: o.plan.reason,
      why: o.plan.why,
      quality: o.plan.quality
        ? { fd: o.plan.quality.fd, kid: o.plan.quality.kid, accuracy: o.plan.quality.accuracy }
        : null,
      headroom: roundHeadroom(o.plan.headroom),
      seed: p.seed,
      seeds: r.map((x) => x.seed),
      guidance_scale: p.guidanceScale,
      backend: r[0]?.backend ?? p.model.backend,
      deadline_ms: a.deadlineMs,
      deadline_source: a.deadlineSource,
      predicted_ms: roundMs(o.plan.predictedMs),
      queue_wait_ms: roundMs(o.waitedMs),
      elapsed_ms: roundMs(this.deps.clock() - a.receivedAt),
      skipped_fraction: r.length ? r.reduce((s, x) => s + x.skippedFraction, 0) / r.length : 0,
      cache_bytes: r.reduce((m, x) => Math.max(m, x.cacheBytes), 0),
      timings: r.map((x) => ({
        text_encoder_ms: roundMs(x.timings.textEncoderMs),
        unet_ms: roundMs(x.timings.unetMs),
        decoder_ms: roundMs(x.timings.decoderMs),
        total_ms: roundMs(x.timings.totalMs),
      })),
      prompt: {
        tokens: p.promptReport.tokens,
        max_tokens: p.promptReport.maxTokens,
        truncated: p.promptReport.truncated,
        ignored_text: p.promptReport.droppedText,
      },
    };
  }

  /** Counts a finished job's images and logs it. */
  finished(route: string, a: Admission, o: JobOutcome, extra: Record<string, unknown> = {}) {
    const plan = this.report(a, o);
    const truncated = truncationWarning("prompt", a.p.promptReport);
    this.headroom.observe(o.plan.predictedMs, o.runMs);
    for (const r of o.results) {
      this.deps.metrics.image(
        r.skippedFraction,
        r.steps,
        o.plan.predictedMs / o.results.length,
        r.timings.totalMs,
      );
    }
    this.deps.log.info("generated", {
      route,
      ...extra,
      model: plan.model,
      n: plan.n,
      steps: plan.steps,
      schedule: plan.schedule,
      reason: plan.reason,
      predictedMs: plan.predicted_ms,
      elapsedMs: plan.elapsed_ms,
      queueWaitMs: plan.queue_wait_ms,
      deadlineMs: plan.deadline_ms,
      ...(truncated ? { warning: truncated } : {}),
    });
    return plan;
  }
}

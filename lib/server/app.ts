/**
 * The HTTP service (Hono): OpenAI-compatible image generation (JSON or Server-Sent Events), a
 * PNG endpoint, models, health and Prometheus metrics. Every generation request is validated,
 * planned against its deadline before it queues (503 at once when nothing fits), queued (429 when
 * full), re-planned with the time actually left when it starts, and aborted at its deadline or when
 * the client goes away. Errors are JSON `{error: {message, type, param, code}}`, never internals.
 *
 * @module
 */
import { Hono } from "hono";
import type { Context } from "hono";
import { encodeBase64 } from "@std/encoding/base64";
import type { ServerConfig } from "./config.ts";
import type {
  GenerateRequest,
  GenerateResult,
  ImageGenerator,
  Progress,
} from "../pipeline/types.ts";
import { bearerToken, tokenMatches } from "./auth.ts";
import { errorFields, type Logger, silentLogger } from "../io/log.ts";
import { Metrics, routeLabel } from "./metrics.ts";
import {
  type ChosenPlan,
  type DeadlineSource,
  type PlanOutcome,
  planRequest,
  resolveDeadline,
  retryAfterSeconds,
} from "./planner.ts";
import { JobQueue, QueueClosedError, QueueFullError } from "./queue.ts";
import { isPlaygroundPath, playgroundRoutes } from "./static.ts";
import {
  ApiError,
  badField,
  type GenerationParams,
  previewEvery,
  readJsonBody,
  type Route,
  validateGeneration,
} from "./validate.ts";

/** What the app is built from. Only `generator` and `config` are required. */
export interface AppDeps {
  generator: ImageGenerator;
  config: ServerConfig;
  /** Monotonic milliseconds (default `performance.now`). */
  clock?: () => number;
  logger?: Logger;
  /** Share one queue between the app and background jobs (the cron thumbnails). */
  queue?: JobQueue;
  metrics?: Metrics;
  /** Aborting it aborts running generations (graceful shutdown after the grace period). */
  shutdownSignal?: AbortSignal;
  /** Seed source for requests without `seed` (default: crypto random). */
  seedSource?: () => number;
  /** Folder of the built playground served at `GET /` (default web/dist of this checkout). */
  playgroundDir?: string;
}

/** Abort reason when a request's deadline passes. */
export class DeadlineExceeded extends Error {
  override name = "DeadlineExceeded";
}

/** Abort reason when the client disconnects. */
export class ClientGone extends Error {
  override name = "ClientGone";
}

/** Abort reason when the service shuts down. */
export class ShuttingDown extends Error {
  override name = "ShuttingDown";
}

/** Raised inside a job when, at its start, no plan fits the time left. */
class NoLongerFits extends Error {
  constructor(readonly outcome: Extract<PlanOutcome, { ok: false }>) {
    super(outcome.message);
  }
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
}

/** A job's outcome. */
interface JobOutcome {
  plan: ChosenPlan;
  results: GenerateResult[];
  waitedMs: number;
}

/** Hooks the streaming route uses to follow a job. */
interface JobHooks {
  onStart?(plan: ChosenPlan, waitedMs: number): void;
  onProgress?(imageIndex: number, p: Progress): void;
}

const round = (x: number) => Math.round(x * 10) / 10;

/** Interval of SSE comment lines while a streamed request waits or runs. */
export const SSE_KEEPALIVE_MS = 15_000;

/** Builds the service. */
export function createApp(deps: AppDeps): Hono {
  const { generator, config } = deps;
  const clock = deps.clock ?? (() => performance.now());
  const log = deps.logger ?? silentLogger;
  const metrics = deps.metrics ?? new Metrics();
  const queue = deps.queue ?? new JobQueue({ maxQueued: config.queueMax, clock });
  const app = new Hono();

  const errorResponse = (e: ApiError): Response =>
    new Response(JSON.stringify(e.toJSON()), {
      status: e.status,
      headers: { "content-type": "application/json; charset=utf-8", ...e.headers },
    });

  app.onError((err, c) => {
    if (err instanceof ApiError) return errorResponse(err);
    log.error("unhandled error", { path: c.req.path, ...errorFields(err) });
    return errorResponse(
      new ApiError(500, "internal server error", null, "server_error", "internal_error"),
    );
  });
  app.notFound((c) =>
    errorResponse(
      new ApiError(
        404,
        `no route for ${c.req.method} ${c.req.path.slice(0, 200)}`,
        null,
        "not_found_error",
        "not_found",
      ),
    )
  );

  // Count every answer by route and status.
  app.use("*", async (c, next) => {
    await next();
    metrics.request(routeLabel(c.req.path), c.res.status);
  });

  // Bearer auth on everything but the health check and the playground's static files (the page
  // sends the token its user types with every API call).
  app.use("*", async (c, next) => {
    const open = c.req.path === "/healthz" ||
      (c.req.method === "GET" || c.req.method === "HEAD") && isPlaygroundPath(c.req.path);
    if (config.apiToken === null || open) return await next();
    const given = bearerToken(c.req.header("authorization"));
    if (given === null || !(await tokenMatches(given, config.apiToken))) {
      throw new ApiError(
        401,
        given === null
          ? "missing bearer token (Authorization: Bearer <token>)"
          : "invalid bearer token",
        "authorization",
        "authentication_error",
        "invalid_api_key",
        { "www-authenticate": 'Bearer realm="imagegen"' },
      );
    }
    await next();
  });

  app.get("/healthz", (c) => {
    const ok = !queue.closed;
    return c.json({
      status: ok ? "ok" : "shutting_down",
      models: generator.models().map((m) => m.name),
      queue: { waiting: queue.waiting, running: queue.running },
    }, ok ? 200 : 503);
  });

  app.route("/", playgroundRoutes(deps.playgroundDir));

  app.get("/metrics", (c) => {
    c.header("content-type", "text/plain; version=0.0.4; charset=utf-8");
    return c.body(metrics.render({ queueWaiting: queue.waiting, queueRunning: queue.running }));
  });

  app.get("/v1/models", (c) =>
    c.json({
      object: "list",
      data: generator.models().map((m) => ({
        id: m.name,
        object: "model",
        created: 0,
        owned_by: "local",
        sizes: [`${m.width}x${m.height}`],
        backend: m.backend,
        defaults: {
          steps: m.defaults.steps,
          solver: m.defaults.solver,
          guidance_scale: m.defaults.guidanceScale,
        },
        schedules: m.schedules.map((s) => ({
          name: s.name,
          solver: s.solver,
          steps: s.steps,
          skipped_fraction: s.skippedFraction,
          ...(s.quality?.fd !== undefined ? { fd: s.quality.fd } : {}),
        })),
      })),
    }));

  /** Plans `p` for `budgetMs` of generation time. */
  const plan = (p: GenerationParams, budgetMs: number): PlanOutcome =>
    planRequest({
      model: p.model,
      solver: p.solver,
      steps: p.steps,
      stepsPinned: p.stepsPinned,
      cache: p.cache,
      n: p.n,
      preview: p.preview,
      autoCache: config.autoCache,
      budgetMs,
      predict: (spec) => generator.predictMs(p.model.name, spec),
    });

  /** Everything before queueing: parse, validate, resolve the deadline, plan (or refuse at once). */
  async function admit(c: Context, route: Route) {
    const receivedAt = clock();
    const body = await readJsonBody(c.req.raw, config.maxBodyBytes);
    const p = validateGeneration(body, generator.models(), route, deps.seedSource);
    const dl = resolveDeadline({
      bodyMs: p.deadlineMs,
      requestTimeout: c.req.header("request-timeout") ?? null,
      prefer: c.req.header("prefer") ?? null,
      defaultMs: config.defaultDeadlineMs,
      maxMs: config.maxDeadlineMs,
    });
    if (!dl.ok) throw badField(dl.param, dl.message);
    const queueWait = queue.pendingMs();
    const left = dl.ms - (clock() - receivedAt);
    const outcome = plan(p, left - queueWait);
    if (!outcome.ok) {
      metrics.deadlineRejected();
      const tooShort = outcome.fastest.predictedMs > left;
      throw new ApiError(
        503,
        tooShort
          ? outcome.message
          : `${outcome.message} after the expected queue wait of ${Math.ceil(queueWait)} ms`,
        dl.source === "default" ? null : dl.source,
        "deadline_error",
        tooShort ? "deadline_too_short" : "queue_too_long",
        { "retry-after": String(retryAfterSeconds(queueWait)) },
      );
    }
    return { p, deadlineMs: dl.ms, deadlineSource: dl.source, receivedAt, admitted: outcome.plan };
  }

  type Admission = Awaited<ReturnType<typeof admit>>;

  /**
   * Queues and runs a generation. Resolves with the images, or rejects at once (without waiting for
   * the pipeline to notice) when the deadline passes, the client leaves or the service shuts down.
   * Throws `QueueFullError` synchronously.
   */
  function runJob(
    a: Admission,
    clientSignal: AbortSignal,
    hooks: JobHooks = {},
  ): Promise<JobOutcome> {
    const ctl = new AbortController();
    const deadlineAt = a.receivedAt + a.deadlineMs;
    const timer = setTimeout(
      () => ctl.abort(new DeadlineExceeded("deadline exceeded")),
      Math.max(0, deadlineAt - clock()),
    );
    const onClient = () => ctl.abort(new ClientGone("client disconnected"));
    const onShutdown = () => ctl.abort(new ShuttingDown("service shutting down"));
    clientSignal.addEventListener("abort", onClient, { once: true });
    deps.shutdownSignal?.addEventListener("abort", onShutdown, { once: true });
    const cleanup = () => {
      clearTimeout(timer);
      clientSignal.removeEventListener("abort", onClient);
      deps.shutdownSignal?.removeEventListener("abort", onShutdown);
    };
    if (clientSignal.aborted) onClient();
    if (deps.shutdownSignal?.aborted) onShutdown();
    const { p } = a;
    let job: Promise<JobOutcome>;
    try {
      job = queue.submit({
        estimateMs: a.admitted.predictedMs,
        signal: ctl.signal,
        run: async ({ waitedMs }) => {
          const outcome = plan(p, deadlineAt - clock());
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
            };
            results.push(
              await generator.generate(p.model.name, req, {
                signal: ctl.signal,
                previewEvery: hooks.onProgress ? previewEvery(req.steps, p.partialImages) : 0,
                onProgress: hooks.onProgress ? (pr) => hooks.onProgress!(i, pr) : undefined,
              }),
            );
            ctl.signal.throwIfAborted();
          }
          return { plan: outcome.plan, results, waitedMs };
        },
      });
    } catch (e) {
      cleanup();
      throw e;
    }
    const aborted = new Promise<never>((_, reject) => {
      if (ctl.signal.aborted) reject(ctl.signal.reason);
      ctl.signal.addEventListener("abort", () => reject(ctl.signal.reason), { once: true });
    });
    job.catch(() => {});
    aborted.catch(() => {});
    return Promise.race([job, aborted]).finally(cleanup);
  }

  /** Maps a job failure to the error a client sees (and counts deadline misses). */
  function jobError(e: unknown, started: boolean, a: Admission): ApiError {
    if (e instanceof QueueFullError) {
      return new ApiError(
        429,
        `the queue is full (${queue.waiting} waiting); retry later`,
        null,
        "rate_limit_error",
        "queue_full",
        { "retry-after": String(retryAfterSeconds(e.retryAfterMs)) },
      );
    }
    if (e instanceof DeadlineExceeded) {
      metrics.deadlineMiss(started ? "running" : "queue");
      return new ApiError(
        504,
        `the deadline of ${a.deadlineMs} ms passed while the request ${
          started ? "ran" : "waited in the queue"
        }`,
        a.deadlineSource === "default" ? null : a.deadlineSource,
        "deadline_error",
        "deadline_exceeded",
      );
    }
    if (e instanceof NoLongerFits) {
      metrics.deadlineMiss("queue");
      return new ApiError(
        503,
        `after waiting in the queue, ${e.outcome.message}`,
        a.deadlineSource === "default" ? null : a.deadlineSource,
        "deadline_error",
        "deadline_too_short",
        { "retry-after": String(retryAfterSeconds(queue.pendingMs())) },
      );
    }
    if (e instanceof QueueClosedError || e instanceof ShuttingDown) {
      return new ApiError(
        503,
        "the service is shutting down",
        null,
        "server_error",
        "shutting_down",
        {
          "retry-after": "5",
        },
      );
    }
    if (e instanceof ClientGone) {
      return new ApiError(
        499,
        "client closed the request",
        null,
        "invalid_request_error",
        "client_closed",
      );
    }
    log.error("generation failed", { prompt: a.p.prompt.slice(0, 200), ...errorFields(e) });
    return new ApiError(500, "image generation failed", null, "server_error", "generation_failed");
  }

  /** The plan report of a finished job. */
  function report(a: Admission, o: JobOutcome): PlanReport {
    const { p } = a;
    const r = o.results;
    return {
      model: p.model.name,
      size: `${r[0]?.width ?? p.model.width}x${r[0]?.height ?? p.model.height}`,
      n: p.n,
      steps: o.plan.steps,
      solver: o.plan.solver,
      schedule: r[0]?.schedule ?? o.plan.schedule,
      cache_requested: p.cache,
      reason: o.plan.reason,
      seed: p.seed,
      seeds: r.map((x) => x.seed),
      guidance_scale: p.guidanceScale,
      backend: r[0]?.backend ?? p.model.backend,
      deadline_ms: a.deadlineMs,
      deadline_source: a.deadlineSource,
      predicted_ms: round(o.plan.predictedMs),
      queue_wait_ms: round(o.waitedMs),
      elapsed_ms: round(clock() - a.receivedAt),
      skipped_fraction: r.length ? r.reduce((s, x) => s + x.skippedFraction, 0) / r.length : 0,
      cache_bytes: r.reduce((m, x) => Math.max(m, x.cacheBytes), 0),
      timings: r.map((x) => ({
        text_encoder_ms: round(x.timings.textEncoderMs),
        unet_ms: round(x.timings.unetMs),
        decoder_ms: round(x.timings.decoderMs),
        total_ms: round(x.timings.totalMs),
      })),
    };
  }

  function recordImages(o: JobOutcome): void {
    for (const r of o.results) {
      metrics.image(
        r.skippedFraction,
        r.steps,
        o.plan.predictedMs / o.results.length,
        r.timings.totalMs,
      );
    }
  }

  const b64 = (png: Uint8Array) => encodeBase64(png);

  app.post("/v1/images/generations", async (c) => {
    const a = await admit(c, "openai");
    if (a.p.stream) return streamGeneration(c, a);
    let started = false;
    try {
      const o = await runJob(a, c.req.raw.signal, { onStart: () => (started = true) });
      recordImages(o);
      const plan = report(a, o);
      log.info("generated", { route: "/v1/images/generations", ...summary(plan) });
      return c.json({
        created: Math.floor(Date.now() / 1000),
        data: o.results.map((r) => ({ b64_json: b64(r.png), seed: r.seed })),
        plan,
      });
    } catch (e) {
      throw jobError(e, started, a);
    } finally {
      metrics.latency("/v1/images/generations", (clock() - a.receivedAt) / 1000);
    }
  });

  app.post("/generate", async (c) => {
    const a = await admit(c, "png");
    let started = false;
    try {
      const o = await runJob(a, c.req.raw.signal, { onStart: () => (started = true) });
      recordImages(o);
      const plan = report(a, o);
      const r = o.results[0];
      const t = plan.timings[0];
      log.info("generated", { route: "/generate", ...summary(plan) });
      return new Response(r.png as Uint8Array<ArrayBuffer>, {
        headers: {
          "content-type": "image/png",
          "x-model": plan.model,
          "x-seed": String(r.seed),
          "x-steps": String(plan.steps),
          "x-solver": plan.solver,
          "x-schedule": plan.schedule ?? "none",
          "x-backend": plan.backend,
          "x-plan-reason": plan.reason,
          "x-predicted-ms": String(plan.predicted_ms),
          "x-queue-wait-ms": String(plan.queue_wait_ms),
          "x-deadline-ms": String(plan.deadline_ms),
          "x-skipped-fraction": String(plan.skipped_fraction),
          "x-timings":
            `text_encoder_ms=${t.text_encoder_ms}, unet_ms=${t.unet_ms}, decoder_ms=${t.decoder_ms}, total_ms=${t.total_ms}`,
          "server-timing":
            `queue;dur=${plan.queue_wait_ms}, text;dur=${t.text_encoder_ms}, unet;dur=${t.unet_ms}, decode;dur=${t.decoder_ms}, total;dur=${t.total_ms}`,
        },
      });
    } catch (e) {
      throw jobError(e, started, a);
    } finally {
      metrics.latency("/generate", (clock() - a.receivedAt) / 1000);
    }
  });

  /** The SSE answer: `queued`, `plan`, `progress`…, then `completed` (or `error`). */
  function streamGeneration(c: Context, a: Admission): Response {
    const enc = new TextEncoder();
    const client = new AbortController();
    const reqSignal = c.req.raw.signal;
    const onReqAbort = () => client.abort(new ClientGone("client disconnected"));
    reqSignal.addEventListener("abort", onReqAbort, { once: true });
    let closed = false;
    let started = false;
    const partialIndex: number[] = [];
    let job: Promise<JobOutcome>;
    // Submit before answering, so a full queue is still a plain 429.
    let ctrl: ReadableStreamDefaultController<Uint8Array> | undefined;
    const send = (event: string, data: unknown) => {
      if (closed || !ctrl) return;
      try {
        ctrl.enqueue(enc.encode(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`));
      } catch {
        closed = true;
      }
    };
    const position = queue.waiting + queue.running;
    const expectedWait = queue.pendingMs();
    try {
      job = runJob(a, client.signal, {
        onStart: (plan, waitedMs) => {
          started = true;
          send("plan", {
            type: "plan",
            steps: plan.steps,
            solver: plan.solver,
            schedule: plan.schedule,
            reason: plan.reason,
            predicted_ms: round(plan.predictedMs),
            queue_wait_ms: round(waitedMs),
            deadline_ms: a.deadlineMs,
          });
        },
        onProgress: (i, pr) => {
          const ev: Record<string, unknown> = {
            type: "progress",
            image_index: i,
            step: pr.step,
            steps: pr.steps,
            elapsed_ms: round(pr.elapsedMs),
          };
          if (pr.preview) {
            ev.partial_image_index = partialIndex[i] = (partialIndex[i] ?? -1) + 1;
            ev.b64_json = b64(pr.preview);
          }
          send("progress", ev);
        },
      });
    } catch (e) {
      reqSignal.removeEventListener("abort", onReqAbort);
      throw jobError(e, false, a);
    }
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        ctrl = controller;
        send("queued", {
          type: "queued",
          position,
          expected_wait_ms: round(expectedWait),
          predicted_ms: round(a.admitted.predictedMs),
        });
        // A comment line now and then keeps proxies from closing a stream that waits in the queue.
        const keepAlive = setInterval(() => {
          if (closed) return;
          try {
            controller.enqueue(enc.encode(": keep-alive\n\n"));
          } catch {
            closed = true;
          }
        }, SSE_KEEPALIVE_MS);
        job.then(
          (o) => {
            recordImages(o);
            const plan = report(a, o);
            log.info("generated", {
              route: "/v1/images/generations",
              stream: true,
              ...summary(plan),
            });
            send("completed", {
              type: "completed",
              created: Math.floor(Date.now() / 1000),
              data: o.results.map((r) => ({ b64_json: b64(r.png), seed: r.seed })),
              plan,
            });
          },
          (e) => {
            const err = jobError(e, started, a);
            if (err.status !== 499) {
              send("error", { type: "error", status: err.status, ...err.toJSON() });
            }
          },
        ).finally(() => {
          clearInterval(keepAlive);
          reqSignal.removeEventListener("abort", onReqAbort);
          metrics.latency("/v1/images/generations", (clock() - a.receivedAt) / 1000);
          if (!closed) {
            closed = true;
            try {
              controller.close();
            } catch { /* already closed by the client */ }
          }
        });
      },
      cancel() {
        closed = true;
        client.abort(new ClientGone("client disconnected"));
      },
    });
    return new Response(body, {
      headers: {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache",
        "x-accel-buffering": "no",
      },
    });
  }

  // Known paths with the wrong method: 405 naming the allowed one.
  const allow: [string, string][] = [
    ["/v1/images/generations", "POST"],
    ["/generate", "POST"],
    ["/v1/models", "GET"],
    ["/healthz", "GET"],
    ["/metrics", "GET"],
  ];
  for (const [path, method] of allow) {
    app.all(path, (c) => {
      throw new ApiError(
        405,
        `${c.req.method} is not allowed on ${path}; use ${method}`,
        null,
        "invalid_request_error",
        "method_not_allowed",
        { allow: method },
      );
    });
  }

  return app;
}

function summary(p: PlanReport) {
  return {
    model: p.model,
    n: p.n,
    steps: p.steps,
    schedule: p.schedule,
    reason: p.reason,
    predictedMs: p.predicted_ms,
    elapsedMs: p.elapsed_ms,
    queueWaitMs: p.queue_wait_ms,
    deadlineMs: p.deadline_ms,
  };
}

/**
 * The HTTP service (Hono): OpenAI-compatible image generation (JSON or Server-Sent Events), a PNG
 * endpoint, models, health and Prometheus metrics, and the playground. Requests pass, in order:
 * request counting, CORS (preflights are answered here, before auth), the shutdown gate (503
 * while draining), bearer auth, the body limit, then the routes (`routes/`), whose generation
 * jobs live in `job.ts`. Every error is answered in one place as the OpenAI error body
 * (`errors.ts`), never internals.
 *
 * @module
 */
import { type Context, Hono } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import { bodyLimit } from "hono/body-limit";
import { cors } from "hono/cors";
import { methodNotAllowed } from "hono/method-not-allowed";
import type { ServerConfig } from "./config.ts";
import { ApiError, errorResponse, errorSummary, logFailedRequest, shuttingDown } from "./errors.ts";
import { GenerationJobs } from "./job.ts";
import { Metrics, routeLabel } from "./metrics.ts";
import { JobQueue } from "./queue.ts";
import { opsRoutes } from "./routes/ops.ts";
import { imagesRoutes } from "./routes/images.ts";
import { pngRoutes } from "./routes/png.ts";
import { isPlaygroundPath, playgroundRoutes } from "./static.ts";
import { errorFields, type Logger, silentLogger } from "../io/log.ts";
import type { ImageGenerator } from "../pipeline/types.ts";
import type { WorkerStatus } from "../exec/pool.ts";

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
  /** The generation workers' states, for `/healthz` and `/metrics`. */
  workers?: () => WorkerStatus[];
  /** Model folders that failed their start-up check, for `/healthz` and `/v1/models`. */
  unavailable?: { name: string; reason: string }[];
  /** More Prometheus text appended to `/metrics` (e.g. the cron jobs' counters). */
  moreMetrics?: () => string;
  /** Seed source for requests without `seed` (default: crypto random). */
  seedSource?: () => number;
  /** Folder of the built playground served at `GET /` (default web/dist of this checkout). */
  playgroundDir?: string;
}

/** Paths of the generation routes (the shutdown gate and the body limit apply to them). */
const GENERATION_PATHS = ["/v1/images/generations", "/generate"];

/** Response headers a browser page may read (the plan's `X-*` headers). */
const EXPOSED_HEADERS = [
  "x-model",
  "x-seed",
  "x-steps",
  "x-solver",
  "x-schedule",
  "x-backend",
  "x-plan-reason",
  "x-predicted-ms",
  "x-queue-wait-ms",
  "x-deadline-ms",
  "x-skipped-fraction",
  "x-cache-bytes",
  "x-timings",
  "server-timing",
  "preference-applied",
  "retry-after",
];

/** Builds the service. */
export function createApp(deps: AppDeps): Hono {
  const { config } = deps;
  const clock = deps.clock ?? (() => performance.now());
  const log = deps.logger ?? silentLogger;
  const metrics = deps.metrics ?? new Metrics();
  const queue = deps.queue ?? new JobQueue({ maxQueued: config.queueMax, clock });
  const shutdownSignal = deps.shutdownSignal ?? new AbortController().signal;
  const jobs = new GenerationJobs({
    generator: deps.generator,
    config,
    queue,
    metrics,
    clock,
    log,
    shutdownSignal,
    seedSource: deps.seedSource,
  });
  const app = new Hono();

  app.onError((err, c) =>
    errorResponse(
      err,
      (e) => log.error("unhandled error", { path: c.req.path, ...errorFields(e, { stack: true }) }),
    )
  );
  app.notFound((c) =>
    new ApiError(404, {
      message: `no route for ${c.req.method} ${c.req.path.slice(0, 200)}`,
      type: "not_found_error",
      code: "not_found",
    }).getResponse()
  );

  app.use("*", async (c, next) => {
    const t0 = clock();
    await next();
    const status = c.res.status;
    metrics.request(routeLabel(c.req.path), status);
    // one line per failed, refused or cancelled request (streams log their own: their status is 200)
    if (status >= 400) {
      logFailedRequest(log, {
        method: c.req.method,
        path: c.req.path,
        status,
        ...await errorSummary(c.res),
        elapsedMs: clock() - t0,
      });
    }
  });
  app.use(
    "*",
    cors({
      origin: config.corsOrigins,
      allowMethods: ["GET", "HEAD", "POST", "OPTIONS"],
      allowHeaders: ["authorization", "content-type", "prefer", "request-timeout"],
      exposeHeaders: EXPOSED_HEADERS,
      maxAge: 600,
    }),
  );
  app.use(
    "*",
    methodNotAllowed({
      app,
      onMethodNotAllowed: (c, methods) =>
        new ApiError(405, {
          message: `${c.req.method} is not allowed on ${c.req.path}; use ${methods.join(", ")}`,
          code: "method_not_allowed",
          headers: { allow: methods.join(", ") },
        }).getResponse(),
    }),
  );
  for (const path of GENERATION_PATHS) {
    app.use(path, async (_c, next) => {
      if (queue.closed) throw shuttingDown();
      await next();
    });
  }
  if (config.apiToken !== null) {
    // Every refusal is a 401 with the OpenAI body, a malformed header too (RFC 7235: a request
    // without usable credentials is unauthenticated).
    const refuse = (message: string) => (c: Context) =>
      new ApiError(401, {
        message: c.req.header("authorization")
          ? message
          : "missing bearer token (Authorization: Bearer <token>)",
        param: "authorization",
        type: "authentication_error",
        code: "invalid_api_key",
        headers: { "www-authenticate": 'Bearer realm="imagegen"' },
      }).getResponse();
    const auth = bearerAuth({
      token: config.apiToken,
      realm: "imagegen",
      noAuthenticationHeader: { message: refuse("missing bearer token") },
      invalidAuthenticationHeader: {
        message: refuse("malformed Authorization header; send Bearer <token>"),
      },
      invalidToken: { message: refuse("invalid bearer token") },
    });
    app.use("*", async (c, next) => {
      const open = c.req.path === "/healthz" ||
        (c.req.method === "GET" || c.req.method === "HEAD") && isPlaygroundPath(c.req.path);
      return open ? await next() : await auth(c, next);
    });
  }
  for (const path of GENERATION_PATHS) {
    app.use(
      path,
      bodyLimit({
        maxSize: config.maxBodyBytes,
        onError: () => {
          throw new ApiError(413, {
            message: `request body exceeds ${config.maxBodyBytes} bytes`,
            param: "body",
            code: "body_too_large",
          });
        },
      }),
    );
  }

  app.route(
    "/",
    opsRoutes({
      generator: deps.generator,
      queue,
      metrics,
      workers: deps.workers,
      unavailable: deps.unavailable,
      moreMetrics: deps.moreMetrics,
    }),
  );
  app.route("/", imagesRoutes(jobs));
  app.route("/", pngRoutes(jobs));
  app.route("/", playgroundRoutes(deps.playgroundDir));
  return app;
}

/**
 * Operations routes: `GET /healthz` (liveness and readiness: the queue, the workers, 503 when no
 * worker can serve or the service is draining), `GET /metrics` (Prometheus text) and
 * `GET /v1/models` (the models, their cache schedules with the FD each measured and on how many
 * prompts, the frontiers' summary, and the model folders left out).
 *
 * @module
 */
import { Hono } from "hono";
import type { Metrics } from "../metrics.ts";
import type { JobQueue } from "../queue.ts";
import type { ImageGenerator } from "../../pipeline/types.ts";
import type { WorkerStatus } from "../../exec/pool.ts";

/** What the operations routes read. */
export interface OpsDeps {
  generator: ImageGenerator;
  queue: JobQueue;
  metrics: Metrics;
  workers?: () => WorkerStatus[];
  /** Model folders that failed their start-up check: listed with the reason, not served. */
  unavailable?: { name: string; reason: string }[];
  /** More Prometheus text appended to `/metrics`. */
  moreMetrics?: () => string;
}

/**
 * The health of the replica: `ok` (every worker and every model folder can serve), `degraded`
 * (some worker is restarting or failed, or a model folder failed its start-up check, but the
 * replica serves), `unavailable` (no worker can serve), `shutting_down`.
 */
export function healthStatus(
  closed: boolean,
  workers: WorkerStatus[],
  unavailableModels = 0,
): "ok" | "degraded" | "unavailable" | "shutting_down" {
  if (closed) return "shutting_down";
  const serving = workers.filter((w) => w.state === "idle" || w.state === "busy").length;
  if (workers.length > 0 && !workers.some((w) => w.state !== "failed")) return "unavailable";
  return serving === workers.length && unavailableModels === 0 ? "ok" : "degraded";
}

/** The operations routes. */
export function opsRoutes(deps: OpsDeps): Hono {
  const { generator, queue, metrics } = deps;
  const app = new Hono();
  app.get("/healthz", (c) => {
    const workers = deps.workers?.() ?? [];
    const unavailable = deps.unavailable ?? [];
    const status = healthStatus(queue.closed, workers, unavailable.length);
    return c.json({
      status,
      models: generator.models().map((m) => m.name),
      ...(unavailable.length ? { unavailable_models: unavailable } : {}),
      queue: { waiting: queue.waiting, running: queue.running, capacity: queue.concurrency },
      ...(deps.workers ? { workers } : {}),
    }, status === "ok" || status === "degraded" ? 200 : 503);
  });

  app.get("/metrics", (c) => {
    c.header("content-type", "text/plain; version=0.0.4; charset=utf-8");
    return c.body(
      metrics.render({
        queueWaiting: queue.waiting,
        queueRunning: queue.running,
        workers: deps.workers?.(),
      }) + (deps.moreMetrics?.() ?? ""),
    );
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
        ...(m.sizes?.dynamic
          ? {
            size_range: {
              multiple_of: m.sizes.multipleOf,
              min: m.sizes.min,
              max: m.sizes.max,
            },
          }
          : {}),
        ...(m.minCacheSteps !== undefined ? { min_cache_steps: m.minCacheSteps } : {}),
        // the measured speed-quality frontiers the planner chooses from (summary)
        frontiers: (m.frontiers ?? []).map((f) => ({
          solver: f.solver,
          plans: f.plans.length,
          prompts: f.prompts.count,
          best_fd: Math.min(...f.plans.map((p) => p.quality.fd)),
          measured: f.measured.date,
        })),
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
          // the schedule's own measurement (Table 1's scale: FD over its prompt count, 256 for
          // the shipped ones), not comparable with the frontier's best_fd over its prompts
          ...(s.quality?.fd !== undefined
            ? {
              fd: s.quality.fd,
              ...(s.quality.prompts !== undefined ? { prompts: s.quality.prompts } : {}),
            }
            : {}),
        })),
      })),
      // model folders left out at start-up, with the reason (empty when none failed)
      unavailable: (deps.unavailable ?? []).map((u) => ({ id: u.name, reason: u.reason })),
    }));
  return app;
}

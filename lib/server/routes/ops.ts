/**
 * Operations routes: `GET /healthz` (liveness and readiness: the queue, the workers, 503 when no
 * worker can serve or the service is draining), `GET /metrics` (Prometheus text) and
 * `GET /v1/models` (the models and their cache schedules).
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
}

/**
 * The health of the replica: `ok` (every worker can serve), `degraded` (some worker is
 * restarting or failed, at least one serves), `unavailable` (none serves), `shutting_down`.
 */
export function healthStatus(
  closed: boolean,
  workers: WorkerStatus[],
): "ok" | "degraded" | "unavailable" | "shutting_down" {
  if (closed) return "shutting_down";
  if (workers.length === 0) return "ok";
  const serving = workers.filter((w) => w.state === "idle" || w.state === "busy").length;
  if (serving === workers.length) return "ok";
  return workers.some((w) => w.state !== "failed") ? "degraded" : "unavailable";
}

/** The operations routes. */
export function opsRoutes(deps: OpsDeps): Hono {
  const { generator, queue, metrics } = deps;
  const app = new Hono();
  app.get("/healthz", (c) => {
    const workers = deps.workers?.() ?? [];
    const status = healthStatus(queue.closed, workers);
    return c.json({
      status,
      models: generator.models().map((m) => m.name),
      queue: { waiting: queue.waiting, running: queue.running, capacity: queue.concurrency },
      ...(deps.workers ? { workers } : {}),
    }, status === "ok" || status === "degraded" ? 200 : 503);
  });

  app.get("/metrics", (c) => {
    c.header("content-type", "text/plain; version=0.0.4; charset=utf-8");
    return c.body(metrics.render({
      queueWaiting: queue.waiting,
      queueRunning: queue.running,
      workers: deps.workers?.(),
    }));
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
  return app;
}

/**
 * `POST /generate`: the same fields as the OpenAI route, answered with the PNG bytes and the plan
 * in `X-*` headers (and `Server-Timing`).
 *
 * @module
 */
import { Hono } from "hono";
import type { GenerationJobs } from "../job.ts";
import { parseJsonBody } from "../validate.ts";

const ROUTE = "/generate";

/** The PNG route. */
export function pngRoutes(jobs: GenerationJobs): Hono {
  const { clock } = jobs.deps;
  const app = new Hono();
  app.post(ROUTE, async (c) => {
    const receivedAt = clock();
    const a = jobs.admit(await parseJsonBody(c.req.raw), c.req.raw.headers, "png", receivedAt);
    const job = jobs.start(a, c.req.raw.signal);
    try {
      const o = await job.outcome;
      const plan = jobs.finished(ROUTE, a, o);
      const r = o.results[0];
      const t = plan.timings[0];
      const headers: Record<string, string> = {
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
        "x-cache-bytes": String(plan.cache_bytes),
        "x-timings":
          `text_encoder_ms=${t.text_encoder_ms}, unet_ms=${t.unet_ms}, decoder_ms=${t.decoder_ms}, total_ms=${t.total_ms}`,
        "server-timing":
          `queue;dur=${plan.queue_wait_ms}, text;dur=${t.text_encoder_ms}, unet;dur=${t.unet_ms}, decode;dur=${t.decoder_ms}, total;dur=${t.total_ms}`,
      };
      if (a.preferenceApplied) headers["preference-applied"] = a.preferenceApplied;
      return c.body(r.png as Uint8Array<ArrayBuffer>, 200, headers);
    } finally {
      jobs.deps.metrics.latency(ROUTE, (clock() - a.receivedAt) / 1000);
    }
  });
  return app;
}

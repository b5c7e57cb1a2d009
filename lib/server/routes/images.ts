/**
 * `POST /v1/images/generations`: OpenAI-compatible image generation, answered as JSON
 * (`{created, data: [{b64_json, seed}], plan}`) or, with `stream: true`, as Server-Sent Events
 * through Hono's `streamSSE`, in OpenAI's image streaming format plus this service's own events
 * (types that do not clash with OpenAI's; clients that switch on `type` skip them):
 *
 * - `queued` at once (with the headers), `plan` when the job starts, one `progress` per finished
 *   step (step counts only);
 * - OpenAI's `image_generation.partial_image` for each preview (`b64_json`,
 *   `partial_image_index`, …, plus `image_index` and `step`);
 * - OpenAI's `image_generation.completed` for each finished image (`b64_json`, `usage`, …, plus
 *   `image_index`, `seed` and the `plan` report), the last events of the stream;
 * - or `error` with the OpenAI error body, which the official SDKs raise as an API error.
 *
 * @module
 */
import { Hono } from "hono";
import type { Context } from "hono";
import { type SSEStreamingApi, streamSSE } from "hono/streaming";
import { encodeBase64 } from "@std/encoding/base64";
import {
  type Admission,
  type GenerationJobs,
  type JobOutcome,
  roundHeadroom,
  roundMs,
} from "../job.ts";
import { parseJsonBody } from "../validate.ts";
import { ApiError, logFailedRequest } from "../errors.ts";

/** Interval of SSE comment lines while a streamed request waits or runs. */
export const SSE_KEEPALIVE_MS = 15_000;

const ROUTE = "/v1/images/generations";
/** OpenAI's image streaming event types. */
const PARTIAL = "image_generation.partial_image";
const COMPLETED = "image_generation.completed";

/** The fields OpenAI's image stream events repeat: what was asked for, as this service makes it. */
function imageFields(a: Admission) {
  return {
    created_at: created(),
    size: `${a.p.width}x${a.p.height}`,
    quality: a.p.quality,
    background: "opaque",
    output_format: "png",
  };
}
const created = () => Math.floor(Date.now() / 1000);

/** The images route. */
export function imagesRoutes(jobs: GenerationJobs): Hono {
  const { clock } = jobs.deps;
  const app = new Hono();
  app.post(ROUTE, async (c) => {
    const receivedAt = clock();
    const a = jobs.admit(await parseJsonBody(c.req.raw), c.req.raw.headers, "openai", receivedAt);
    if (a.preferenceApplied) c.header("preference-applied", a.preferenceApplied);
    if (a.p.stream) return stream(c, jobs, a);
    const job = jobs.start(a, c.req.raw.signal);
    try {
      const o = await job.outcome;
      const plan = jobs.finished(ROUTE, a, o);
      return c.json({
        created: created(),
        data: o.results.map((r) => ({ b64_json: encodeBase64(r.png), seed: r.seed })),
        plan,
      });
    } finally {
      jobs.deps.metrics.latency(ROUTE, (clock() - a.receivedAt) / 1000);
    }
  });
  return app;
}

/**
 * The SSE answer. The job is queued before the response starts, so a full queue is still a plain
 * 429; events produced before the stream is writable are kept and written in order.
 */
function stream(c: Context, jobs: GenerationJobs, a: Admission): Response {
  const client = new AbortController();
  const onRequestAbort = () => client.abort();
  c.req.raw.signal.addEventListener("abort", onRequestAbort, { once: true });
  const pending: { event: string; data: unknown }[] = [];
  let sse: SSEStreamingApi | undefined;
  let writing = Promise.resolve();
  const send = (event: string, data: unknown) => {
    if (!sse) return void pending.push({ event, data });
    const s = sse;
    writing = writing.then(() =>
      s.aborted || s.closed ? undefined : s.writeSSE({ event, data: JSON.stringify(data) })
    ).catch(() => client.abort());
  };
  const { queue, clock } = jobs.deps;
  const queued = {
    type: "queued",
    position: queue.waiting + queue.running,
    expected_wait_ms: roundMs(queue.pendingMs()),
    predicted_ms: roundMs(a.admitted.predictedMs),
  };
  const partialIndex: number[] = [];
  let job;
  try {
    job = jobs.start(a, client.signal, {
      onStart: (plan, waitedMs) =>
        send("plan", {
          type: "plan",
          steps: plan.steps,
          solver: plan.solver,
          schedule: plan.schedule,
          reason: plan.reason,
          why: plan.why,
          predicted_ms: roundMs(plan.predictedMs),
          headroom: roundHeadroom(plan.headroom),
          queue_wait_ms: roundMs(waitedMs),
          deadline_ms: a.deadlineMs,
        }),
      onProgress: (i, pr) => {
        send("progress", {
          type: "progress",
          image_index: i,
          step: pr.step,
          steps: pr.steps,
          elapsed_ms: roundMs(pr.elapsedMs),
        });
        if (pr.preview) {
          send(PARTIAL, {
            type: PARTIAL,
            ...imageFields(a),
            b64_json: encodeBase64(pr.preview),
            partial_image_index: partialIndex[i] = (partialIndex[i] ?? -1) + 1,
            image_index: i,
            step: pr.step,
          });
        }
      },
    });
  } catch (e) {
    c.req.raw.signal.removeEventListener("abort", onRequestAbort);
    throw e;
  }
  c.header("x-accel-buffering", "no");
  return streamSSE(c, async (s) => {
    s.onAbort(() => client.abort());
    sse = s;
    await s.writeSSE({ event: "queued", data: JSON.stringify(queued) });
    for (const p of pending.splice(0)) send(p.event, p.data);
    const keepAlive = setInterval(() => {
      writing = writing.then(() => s.closed || s.aborted ? undefined : s.write(": keep-alive\n\n"))
        .then(() => {}, () => client.abort());
    }, SSE_KEEPALIVE_MS);
    let o: JobOutcome | undefined;
    try {
      o = await job.outcome;
      const plan = jobs.finished(ROUTE, a, o, { stream: true });
      const input = Math.min(plan.prompt.tokens, plan.prompt.max_tokens);
      o.results.forEach((r, i) =>
        send(COMPLETED, {
          type: COMPLETED,
          ...imageFields(a),
          b64_json: encodeBase64(r.png),
          usage: {
            input_tokens: input,
            output_tokens: 0,
            total_tokens: input,
            input_tokens_details: { text_tokens: input, image_tokens: 0 },
          },
          image_index: i,
          seed: r.seed,
          plan,
        })
      );
    } catch (e) {
      const err = e as { status?: number; toJSON?: () => object };
      if (err.status !== 499 && err.toJSON) {
        send("error", { type: "error", status: err.status, ...err.toJSON() });
      }
      logFailedRequest(jobs.deps.log, {
        method: c.req.method,
        path: c.req.path,
        status: err.status ?? 500,
        code: e instanceof ApiError ? e.code : null,
        reason: e instanceof Error ? e.message : String(e),
        elapsedMs: clock() - a.receivedAt,
        stream: true,
      });
    } finally {
      clearInterval(keepAlive);
      c.req.raw.signal.removeEventListener("abort", onRequestAbort);
      jobs.deps.metrics.latency(ROUTE, (clock() - a.receivedAt) / 1000);
      await writing;
    }
  });
}

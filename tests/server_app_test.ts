/**
 * The service through `app.request()`: every endpoint, bad inputs, auth, queueing, deadlines,
 * streaming and cancellation. Only the `ImageGenerator` interface's behaviour is relied upon.
 */
import type { Hono } from "hono";
import { assert, assertEquals } from "./_assert.ts";
import { createApp } from "../lib/server/app.ts";
import { defaultConfig, type ServerConfig } from "../lib/server/config.ts";
import type { ImageGenerator } from "../lib/pipeline/types.ts";
import { type Logger, memoryLogger, silentLogger } from "../lib/io/log.ts";
import { LIMITS } from "../lib/pipeline/request.ts";
import { previewEvery } from "../lib/server/validate.ts";
import { testGenerator } from "./support/generator.ts";
import { counting, failingOn, gated, predicting } from "./support/wrap_generator.ts";
import {
  aborted,
  b64PngSize,
  jsonInit,
  parseSse,
  pngSize,
  readFirstEvent,
} from "./support/http.ts";

const TOKEN = "test-token-0123456789abcdef";

async function setup(
  gen?: ImageGenerator,
  config: Partial<ServerConfig> = {},
  logger: Logger = silentLogger,
) {
  const generator = gen ?? await testGenerator();
  const app = createApp({
    generator,
    config: defaultConfig({ queueMax: 4, ...config }),
    logger,
  });
  return { app, generator, model: generator.models()[0] };
}

/** Polls /healthz until `n` requests wait in the queue. */
async function waitingIs(app: Hono, n: number): Promise<void> {
  for (let i = 0; i < 400; i++) {
    const h = await (await app.request("/healthz")).json();
    if (h.queue.waiting === n) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`queue never had ${n} waiting`);
}

interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

async function errorOf(res: Response): Promise<ErrorBody["error"]> {
  assertEquals(res.headers.get("content-type")?.split(";")[0], "application/json");
  const text = await res.text();
  assert(!/\bat .*\.ts:\d+/.test(text) && !text.includes("file://"), `stack trace leaked: ${text}`);
  const body = JSON.parse(text) as ErrorBody;
  assert(typeof body.error.message === "string" && body.error.message.length > 0);
  return body.error;
}

Deno.test("GET /healthz and /v1/models describe the loaded models", async () => {
  const { app, model } = await setup();
  const h = await app.request("/healthz");
  assertEquals(h.status, 200);
  const hb = await h.json();
  assertEquals(hb.status, "ok");
  assert(hb.models.includes(model.name));
  const m = await app.request("/v1/models");
  assertEquals(m.status, 200);
  const mb = await m.json();
  assertEquals(mb.object, "list");
  const entry = mb.data.find((d: { id: string }) => d.id === model.name);
  assertEquals(entry.sizes, [`${model.width}x${model.height}`]);
  assertEquals(
    entry.schedules.map((s: { name: string }) => s.name),
    model.schedules.map((s) => s.name),
  );
  // the shipped model's measured frontiers, summarised
  assertEquals(entry.frontiers.map((f: { solver: string }) => f.solver).sort(), ["ddim", "dpm"]);
  for (const f of entry.frontiers) assert(f.plans > 10 && f.best_fd > 0, JSON.stringify(f));
  // every FD says over how many prompts it was measured: the schedules' (Table 1's 256) and the
  // frontiers' (128) are different scales
  const measured = entry.schedules.filter((s: { fd?: number }) => s.fd !== undefined);
  assert(measured.length > 0, "the shipped model has schedules with a measured FD");
  for (const s of measured) assert(Number.isInteger(s.prompts), JSON.stringify(s));
  assert(measured.some((s: { prompts: number }) => s.prompts === 256), JSON.stringify(measured));
  assert(entry.frontiers.every((f: { prompts: number }) => f.prompts === 128));
  // no model folder failed: the key is there, empty
  assertEquals(mb.unavailable, []);
});

Deno.test("POST /v1/images/generations answers b64 PNGs of the native size and the plan", async () => {
  const { app, model } = await setup();
  const res = await app.request(
    "/v1/images/generations",
    jsonInit({ prompt: "google red apple", n: 2, steps: 2, seed: 42, response_format: "b64_json" }),
  );
  assertEquals(res.status, 200);
  const body = await res.json();
  assert(Number.isInteger(body.created));
  assertEquals(body.data.length, 2);
  for (const d of body.data) {
    assertEquals(b64PngSize(d.b64_json), { width: model.width, height: model.height });
  }
  const plan = body.plan;
  assertEquals([plan.steps, plan.seed, plan.seeds, plan.n], [2, 42, [42, 43], 2]);
  assertEquals(plan.size, `${model.width}x${model.height}`);
  assertEquals(plan.deadline_source, "default");
  assert(plan.schedule === null || typeof plan.schedule === "string");
  assert(["webgpu", "wasm"].includes(plan.backend));
  assert(plan.predicted_ms > 0);
  assertEquals(plan.timings.length, 2);
  assert(typeof plan.timings[0].total_ms === "number");
});

Deno.test("POST /generate answers PNG bytes with the plan in headers", async () => {
  const { app, model } = await setup();
  const res = await app.request(
    "/generate",
    jsonInit({ prompt: "twitter grinning face", steps: 3, seed: 7, cache: "none" }),
  );
  assertEquals(res.status, 200);
  assertEquals(res.headers.get("content-type"), "image/png");
  assertEquals(pngSize(new Uint8Array(await res.arrayBuffer())), {
    width: model.width,
    height: model.height,
  });
  assertEquals(res.headers.get("x-seed"), "7");
  assertEquals(res.headers.get("x-steps"), "3");
  assertEquals(res.headers.get("x-schedule"), "none");
  assertEquals(res.headers.get("x-plan-reason"), "as requested");
  assertEquals(res.headers.get("x-cache-bytes"), "0"); // no cache, nothing kept
  assert(["webgpu", "wasm"].includes(res.headers.get("x-backend")!));
  assert(/total_ms=[\d.]+/.test(res.headers.get("x-timings")!));
  assert(/total;dur=[\d.]+/.test(res.headers.get("server-timing")!));
  assert(Number(res.headers.get("x-predicted-ms")) > 0);
});

Deno.test("a shipped schedule named in `cache` is used with its steps", async () => {
  const { app, model } = await setup();
  const s = model.schedules[0];
  if (!s) return; // a model without shipped schedules has nothing to pin
  const res = await app.request("/generate", jsonInit({ prompt: "apple", cache: s.name }));
  assertEquals(res.status, 200);
  assertEquals(res.headers.get("x-schedule"), s.name);
  assertEquals(res.headers.get("x-steps"), String(s.steps));
  // the cached block values it kept, as the JSON plan's cache_bytes
  assert(Number(res.headers.get("x-cache-bytes")) > 0, res.headers.get("x-cache-bytes")!);
  await res.arrayBuffer();
});

Deno.test("GET /metrics is Prometheus text with requests, latency, queue, misses, skips", async () => {
  const { app } = await setup();
  await (await app.request("/generate", jsonInit({ prompt: "a", steps: 2 }))).arrayBuffer();
  await (await app.request("/generate", jsonInit({ prompt: "" }))).arrayBuffer();
  const res = await app.request("/metrics");
  assertEquals(res.status, 200);
  assert(res.headers.get("content-type")!.startsWith("text/plain"));
  const t = await res.text();
  for (
    const line of [
      'imagegen_http_requests_total{route="/generate",status="200"} 1',
      'imagegen_http_requests_total{route="/generate",status="400"} 1',
      'imagegen_request_duration_seconds_count{route="/generate"} 1',
      'imagegen_request_duration_seconds_bucket{route="/generate",le="+Inf"} 1',
      "imagegen_queue_depth 0",
      'imagegen_deadline_misses_total{stage="running"} 0',
      "imagegen_images_total 1",
      "# TYPE imagegen_block_evaluations_skipped_fraction gauge",
    ]
  ) assert(t.includes(line), `missing: ${line}\n${t}`);
});

Deno.test("unknown routes → 404 JSON, wrong methods → 405 with Allow", async () => {
  const { app } = await setup();
  const r404 = await app.request("/nope");
  assertEquals(r404.status, 404);
  assertEquals((await errorOf(r404)).code, "not_found");
  const r405 = await app.request("/v1/images/generations");
  assertEquals(r405.status, 405);
  assertEquals(r405.headers.get("allow"), "POST");
  await errorOf(r405);
});

Deno.test("bad inputs: each answered with the right 4xx naming the field", async (t) => {
  const { app, model } = await setup();
  const ok = { prompt: "an apple" };
  const gen = "/v1/images/generations";
  const cases: [string, string, RequestInit, number, string | null][] = [
    ["no content type", gen, { method: "POST", body: JSON.stringify(ok) }, 415, "content-type"],
    ["text/plain", gen, jsonInit(ok, { "content-type": "text/plain" }), 415, "content-type"],
    [
      "form",
      "/generate",
      jsonInit("prompt=x", { "content-type": "application/x-www-form-urlencoded" }),
      415,
      "content-type",
    ],
    ["non-JSON body", gen, jsonInit("{prompt:"), 400, "body"],
    ["empty body", gen, jsonInit(""), 400, "body"],
    ["JSON array", gen, jsonInit([ok]), 400, "body"],
    ["JSON string", gen, jsonInit('"apple"'), 400, "body"],
    ["oversized body", gen, jsonInit({ prompt: "x".repeat(70 * 1024) }), 413, "body"],
    ["missing prompt", gen, jsonInit({ n: 1 }), 400, "prompt"],
    ["prompt not a string", gen, jsonInit({ prompt: 5 }), 400, "prompt"],
    ["blank prompt", gen, jsonInit({ prompt: "   " }), 400, "prompt"],
    ["over-long prompt", gen, jsonInit({ prompt: "a".repeat(1001) }), 400, "prompt"],
    [
      "over-long negative_prompt",
      gen,
      jsonInit({ ...ok, negative_prompt: "b".repeat(1001) }),
      400,
      "negative_prompt",
    ],
    [
      "negative_prompt not a string",
      gen,
      jsonInit({ ...ok, negative_prompt: ["x"] }),
      400,
      "negative_prompt",
    ],
    ["n = 0", gen, jsonInit({ ...ok, n: 0 }), 400, "n"],
    ["n = 5", gen, jsonInit({ ...ok, n: 5 }), 400, "n"],
    ["n = 1.5", gen, jsonInit({ ...ok, n: 1.5 }), 400, "n"],
    [
      "size not native",
      gen,
      jsonInit({ ...ok, size: `${model.width * 8}x${model.height * 8}` }),
      400,
      "size",
    ],
    ["size malformed", gen, jsonInit({ ...ok, size: "big" }), 400, "size"],
    [
      "response_format url",
      gen,
      jsonInit({ ...ok, response_format: "url" }),
      400,
      "response_format",
    ],
    ["output_format jpeg", gen, jsonInit({ ...ok, output_format: "jpeg" }), 400, "output_format"],
    ["unknown model", gen, jsonInit({ ...ok, model: "dall-e-3" }), 404, "model"],
    ["seed negative", gen, jsonInit({ ...ok, seed: -1 }), 400, "seed"],
    ["seed too big", gen, jsonInit({ ...ok, seed: 2 ** 32 }), 400, "seed"],
    ["seed as string", gen, jsonInit({ ...ok, seed: "7" }), 400, "seed"],
    ["steps 0", gen, jsonInit({ ...ok, steps: 0 }), 400, "steps"],
    ["steps too many", gen, jsonInit({ ...ok, steps: LIMITS.stepsMax + 1 }), 400, "steps"],
    ["guidance too high", gen, jsonInit({ ...ok, guidance_scale: 31 }), 400, "guidance_scale"],
    [
      "guidance not a number",
      gen,
      jsonInit({ ...ok, guidance_scale: "high" }),
      400,
      "guidance_scale",
    ],
    ["guidance negative", gen, jsonInit({ ...ok, guidance_scale: -1 }), 400, "guidance_scale"],
    ["unknown solver", gen, jsonInit({ ...ok, solver: "heun" }), 400, "solver"],
    ["unknown schedule", gen, jsonInit({ ...ok, cache: "no-such-schedule" }), 400, "cache"],
    ["cache a number", gen, jsonInit({ ...ok, cache: 5 }), 400, "cache"],
    ["deadline_ms 0", gen, jsonInit({ ...ok, deadline_ms: 0 }), 400, "deadline_ms"],
    ["deadline_ms too large", gen, jsonInit({ ...ok, deadline_ms: 700_000 }), 400, "deadline_ms"],
    ["deadline_ms string", gen, jsonInit({ ...ok, deadline_ms: "100" }), 400, "deadline_ms"],
    [
      "Request-Timeout garbage",
      gen,
      jsonInit(ok, { "request-timeout": "soon" }),
      400,
      "Request-Timeout",
    ],
    ["stream not boolean", gen, jsonInit({ ...ok, stream: "yes" }), 400, "stream"],
    ["preview not boolean", gen, jsonInit({ ...ok, preview: 1 }), 400, "preview"],
    [
      "partial_images too many",
      gen,
      jsonInit({ ...ok, partial_images: 51 }),
      400,
      "partial_images",
    ],
    ["unknown field", gen, jsonInit({ ...ok, quality_boost: true }), 400, "quality_boost"],
    ["/generate n 2", "/generate", jsonInit({ ...ok, n: 2 }), 400, "n"],
    ["/generate stream", "/generate", jsonInit({ ...ok, stream: true }), 400, "stream"],
  ];
  const s = model.schedules[0];
  if (s) {
    cases.push([
      "steps disagree with schedule",
      gen,
      jsonInit({ ...ok, cache: s.name, steps: s.steps + 1 }),
      400,
      "steps",
    ]);
  }
  assert(cases.length >= 25);
  for (const [name, path, init, status, param] of cases) {
    await t.step(name, async () => {
      const res = await app.request(path, init);
      assertEquals(res.status, status, name);
      const err = await errorOf(res);
      assertEquals(err.param, param, name);
      assertEquals(err.type, "invalid_request_error");
    });
  }
});

Deno.test("auth on: bearer token required everywhere but /healthz; off: not required", async () => {
  const { app } = await setup(undefined, { apiToken: TOKEN });
  const none = await app.request("/v1/models");
  assertEquals(none.status, 401);
  assertEquals(none.headers.get("www-authenticate")?.startsWith("Bearer"), true);
  assertEquals((await errorOf(none)).param, "authorization");
  const wrong = await app.request("/v1/models", { headers: { authorization: `Bearer ${TOKEN}x` } });
  assertEquals(wrong.status, 401);
  await wrong.body?.cancel();
  const basic = await app.request("/metrics", { headers: { authorization: `Basic ${TOKEN}` } });
  assertEquals(basic.status, 401);
  await basic.body?.cancel();
  const gen = await app.request("/generate", jsonInit({ prompt: "x", steps: 2 }));
  assertEquals(gen.status, 401);
  await gen.body?.cancel();
  const right = await app.request("/v1/models", { headers: { authorization: `Bearer ${TOKEN}` } });
  assertEquals(right.status, 200);
  await right.body?.cancel();
  const health = await app.request("/healthz");
  assertEquals(health.status, 200);
  await health.body?.cancel();
  const off = await setup();
  const open = await off.app.request("/v1/models");
  assertEquals(open.status, 200);
  await open.body?.cancel();
});

Deno.test("queue full → 429 with Retry-After; queued work completes after", async () => {
  const g = gated(await testGenerator());
  const { app } = await setup(g, { queueMax: 1 });
  const body = { prompt: "x", steps: 2, deadline_ms: 60_000 };
  const first = app.request("/generate", jsonInit(body));
  await g.started;
  const second = app.request("/generate", jsonInit(body));
  await waitingIs(app, 1);
  const third = await app.request("/generate", jsonInit(body));
  assertEquals(third.status, 429);
  assert(Number(third.headers.get("retry-after")) >= 1);
  assertEquals((await errorOf(third)).code, "queue_full");
  g.release();
  assertEquals((await first).status, 200);
  assertEquals((await second).status, 200);
});

Deno.test("plans are taken with headroom: a prediction that only just fits is refused", async () => {
  // Every plan predicted at 1000 ms; the default headroom before any job finished is 1.15.
  const g = counting(predicting(await testGenerator(), () => 1000));
  const { app } = await setup(g);
  const body = { prompt: "red apple", steps: 4, cache: "none" };
  const tight = await app.request("/generate", jsonInit({ ...body, deadline_ms: 1100 }));
  assertEquals(tight.status, 503);
  const err = await errorOf(tight);
  assertEquals(err.code, "deadline_too_short");
  assert(err.message.includes("1150 ms with this replica's 1.15x headroom"), err.message);
  assertEquals(g.calls.length, 0);
  const ok = await app.request(
    "/v1/images/generations",
    jsonInit({ ...body, deadline_ms: 1300 }),
  );
  assertEquals(ok.status, 200);
  const { plan } = await ok.json();
  assertEquals(plan.headroom, 1.15);
  assert(plan.why.startsWith("dpm-4-none"), plan.why);
  assert("quality" in plan, "quality is reported (null where the plan was never measured)");
});

Deno.test("a deadline that cannot be met → 503 at once, without running the generator", async () => {
  const g = counting(await testGenerator());
  const { app } = await setup(g);
  const res = await app.request("/generate", jsonInit({ prompt: "x", deadline_ms: 1 }));
  assertEquals(res.status, 503);
  assert(Number(res.headers.get("retry-after")) >= 1);
  const err = await errorOf(res);
  assertEquals([err.type, err.param, err.code], [
    "deadline_error",
    "deadline_ms",
    "deadline_too_short",
  ]);
  const viaHeader = await app.request(
    "/v1/images/generations",
    jsonInit({ prompt: "x" }, { "request-timeout": "0.001" }),
  );
  assertEquals(viaHeader.status, 503);
  assertEquals((await errorOf(viaHeader)).param, "Request-Timeout");
  const viaPrefer = await app.request(
    "/v1/images/generations",
    jsonInit({ prompt: "x", stream: true }, { prefer: "wait=0.001" }),
  );
  assertEquals(viaPrefer.status, 503); // refused before any stream starts
  assertEquals((await errorOf(viaPrefer)).param, "Prefer");
  assertEquals(g.calls.length, 0);
  const m = await (await app.request("/metrics")).text();
  assert(m.includes("imagegen_deadline_rejections_total 3"), m);
});

Deno.test("Prefer: wait is a preference (RFC 7240): unusable ignored, used ones echoed", async () => {
  const { app } = await setup();
  for (const prefer of ["wait=-1", "wait=abc", "wait=0"]) {
    const res = await app.request("/generate", jsonInit({ prompt: "x", steps: 2 }, { prefer }));
    assertEquals(res.status, 200, prefer);
    assertEquals(res.headers.get("preference-applied"), null);
    assertEquals(res.headers.get("x-deadline-ms"), "60000");
    await res.body?.cancel();
  }
  const res = await app.request(
    "/v1/images/generations",
    jsonInit({ prompt: "x", steps: 2 }, { prefer: "respond-async, wait=1000" }),
  );
  assertEquals(res.status, 200);
  assertEquals(res.headers.get("preference-applied"), "wait=600");
  const { plan } = await res.json();
  assertEquals([plan.deadline_ms, plan.deadline_source], [600_000, "Prefer"]);
});

Deno.test("the expected queue wait counts: fits alone, refused behind a long job", async () => {
  const inner = gated(await testGenerator());
  const g = counting(predicting(inner, () => 1000)); // every plan predicted at 1 s
  const { app } = await setup(g);
  const first = app.request("/generate", jsonInit({ prompt: "x", steps: 2, deadline_ms: 60_000 }));
  await inner.started;
  const res = await app.request(
    "/generate",
    jsonInit({ prompt: "google dog face", deadline_ms: 1500 }),
  );
  assertEquals(res.status, 503);
  assertEquals((await errorOf(res)).code, "queue_too_long");
  assertEquals(g.calls.length, 1);
  inner.release();
  assertEquals((await first).status, 200);
  const alone = await app.request(
    "/generate",
    jsonInit({ prompt: "google dog face", steps: 2, deadline_ms: 1500 }),
  );
  assertEquals(alone.status, 200);
  await alone.arrayBuffer();
});

Deno.test("a deadline that can be met is met, and the plan says what was used", async () => {
  const { app } = await setup();
  const t0 = performance.now();
  const res = await app.request(
    "/v1/images/generations",
    jsonInit({ prompt: "x", steps: 2, deadline_ms: 60_000 }),
  );
  const elapsed = performance.now() - t0;
  assertEquals(res.status, 200);
  const { plan } = await res.json();
  assertEquals([plan.deadline_ms, plan.deadline_source], [60_000, "deadline_ms"]);
  assert(plan.predicted_ms <= 60_000);
  assert(elapsed <= 60_000);
});

Deno.test("a running generation is aborted at its deadline → 504, generator signal aborted", async () => {
  const g = gated(predicting(await testGenerator(), () => 1));
  const { app } = await setup(g);
  const res = await app.request("/generate", jsonInit({ prompt: "x", deadline_ms: 100 }));
  assertEquals(res.status, 504);
  const err = await errorOf(res);
  assertEquals([err.code, err.param], ["deadline_exceeded", "deadline_ms"]);
  assert((await aborted(g.calls[0].signal)) instanceof Error);
  const m = await (await app.request("/metrics")).text();
  assert(m.includes('imagegen_deadline_misses_total{stage="running"} 1'), m);
});

Deno.test("a deadline passing while queued → 504 and the job never runs", async () => {
  const g = gated(predicting(await testGenerator(), () => 1));
  const { app } = await setup(g);
  const first = app.request("/generate", jsonInit({ prompt: "x", steps: 2, deadline_ms: 60_000 }));
  await g.started;
  const second = await app.request(
    "/generate",
    jsonInit({ prompt: "google dog face", deadline_ms: 100 }),
  );
  assertEquals(second.status, 504);
  await errorOf(second);
  g.release();
  assertEquals((await first).status, 200);
  assertEquals(g.calls.length, 1);
  const m = await (await app.request("/metrics")).text();
  assert(m.includes('imagegen_deadline_misses_total{stage="queue"} 1'), m);
});

Deno.test("SSE: queued, plan, progress per step, OpenAI partial images, then completed images", async () => {
  const { app, model } = await setup();
  const res = await app.request(
    "/v1/images/generations",
    jsonInit({ prompt: "x", steps: 4, stream: true, partial_images: 4, seed: 3, n: 2 }),
  );
  assertEquals(res.status, 200);
  assert(res.headers.get("content-type")!.startsWith("text/event-stream"));
  const events = parseSse(await res.text());
  const names = events.map((e) => e.event);
  assertEquals(names.slice(0, 2), ["queued", "plan"]);
  assertEquals(names.slice(-2), ["image_generation.completed", "image_generation.completed"]);
  const middle = names.slice(2, -2);
  assert(
    middle.every((n) => n === "progress" || n === "image_generation.partial_image"),
    `unexpected events: ${middle}`,
  );
  const progress = events.filter((e) => e.event === "progress");
  const steps = progress.filter((e) => e.data.image_index === 0).map((e) => e.data.step as number);
  assertEquals(steps, [1, 2, 3, 4]);
  const partials = events.filter((e) => e.event === "image_generation.partial_image");
  assert(partials.length >= 2);
  for (const image of [0, 1]) {
    const mine = partials.filter((e) => e.data.image_index === image);
    mine.forEach((e, i) => {
      assertEquals(e.data.type, "image_generation.partial_image");
      assertEquals(e.data.partial_image_index, i);
      assertEquals([e.data.size, e.data.output_format], [`${model.width}x${model.height}`, "png"]);
      b64PngSize(e.data.b64_json as string);
    });
  }
  events.slice(-2).forEach((e, i) => {
    const d = e.data as {
      type: string;
      b64_json: string;
      image_index: number;
      seed: number;
      usage: { input_tokens: number };
      plan: { steps: number; seed: number };
    };
    assertEquals([d.type, d.image_index, d.seed], ["image_generation.completed", i, 3 + i]);
    assertEquals(b64PngSize(d.b64_json), { width: model.width, height: model.height });
    assertEquals([d.plan.steps, d.plan.seed], [4, 3]);
    assert(d.usage.input_tokens >= 1);
  });
});

Deno.test("SSE: partial images are previews before the final step, never the final image", async () => {
  const { app } = await setup();
  const res = await app.request(
    "/v1/images/generations",
    jsonInit({ prompt: "x", steps: 8, cache: "none", stream: true, partial_images: 1, seed: 1 }),
  );
  const events = parseSse(await res.text());
  const partials = events.filter((e) => e.event === "image_generation.partial_image");
  assertEquals(partials.map((e) => [e.data.partial_image_index, e.data.step]), [[0, 4]]);
  assertEquals(events.at(-1)!.event, "image_generation.completed");
});

Deno.test("previewEvery: at most partial_images previews, all before the final step", () => {
  for (let steps = 1; steps <= LIMITS.stepsMax; steps++) {
    for (let n = 0; n <= LIMITS.partialImagesMax; n++) {
      const every = previewEvery(steps, n);
      const at = [];
      for (let s = 1; every > 0 && s < steps; s++) if (s % every === 0) at.push(s);
      assert(at.length <= n, `${steps} steps, ${n} partials: ${at}`);
      // one at least whenever one can come before the final image
      assertEquals(at.length > 0, n > 0 && steps > 1, `${steps} steps, ${n} partials`);
    }
  }
  assertEquals([previewEvery(8, 1), previewEvery(20, 3), previewEvery(4, 3)], [4, 5, 1]);
});

Deno.test("SSE preview: the cheapest plan above the quality floor, streamed without asking", async () => {
  const { app } = await setup();
  const res = await app.request("/v1/images/generations", jsonInit({ prompt: "x", preview: true }));
  assert(res.headers.get("content-type")!.startsWith("text/event-stream"));
  const events = parseSse(await res.text());
  assertEquals(events.at(-1)!.event, "image_generation.completed");
  // the shipped model has a measured frontier: previews take its cheapest plan within 1.5x FD
  assertEquals(
    (events.at(-1)!.data.plan as { reason: string }).reason,
    "cheapest above the preview floor",
  );
});

Deno.test("SSE: a failing generation ends with an error event and no internals", async () => {
  const { app } = await setup(failingOn(await testGenerator(), 1));
  const res = await app.request(
    "/v1/images/generations",
    jsonInit({ prompt: "x", steps: 2, stream: true }),
  );
  const text = await res.text();
  assert(!text.includes("injected failure"), text);
  const events = parseSse(text);
  assertEquals(events.map((e) => e.event), ["queued", "plan", "error"]);
  assertEquals((events[2].data.error as { code: string }).code, "generation_failed");
});

Deno.test("a generation failure → 500 JSON without internals", async () => {
  const { app } = await setup(failingOn(await testGenerator(), 1));
  const res = await app.request("/generate", jsonInit({ prompt: "x", steps: 2 }));
  assertEquals(res.status, 500);
  const err = await errorOf(res);
  assert(!err.message.includes("injected"));
});

Deno.test("an unexpected exception → 500 JSON, no stack trace", async () => {
  const inner = await testGenerator();
  const broken: ImageGenerator = {
    models: () => inner.models(),
    tokenizer: (m) => inner.tokenizer(m),
    predictMs: () => {
      throw new Error("secret internal detail");
    },
    generate: (m, r, o) => inner.generate(m, r, o),
  };
  const { app } = await setup(broken);
  const res = await app.request("/generate", jsonInit({ prompt: "x" }));
  assertEquals(res.status, 500);
  const err = await errorOf(res);
  assertEquals(err.message, "internal server error");
});

Deno.test("SSE: cancelling the stream aborts the generator's signal", async () => {
  const g = gated(await testGenerator());
  const { app } = await setup(g);
  const res = await app.request("/v1/images/generations", jsonInit({ prompt: "x", stream: true }));
  const reader = res.body!.getReader();
  assertEquals((await readFirstEvent(reader)).event, "queued");
  await g.started;
  await reader.cancel();
  assert((await aborted(g.calls[0].signal)) instanceof Error);
});

Deno.test("client abort of a plain request aborts the generator's signal", async () => {
  const g = gated(await testGenerator());
  const { app } = await setup(g);
  const ctl = new AbortController();
  const pending = app.request("/generate", jsonInit({ prompt: "x" }, {}, ctl.signal));
  await g.started;
  ctl.abort();
  assert((await aborted(g.calls[0].signal)) instanceof Error);
  const res = await Promise.resolve(pending).catch(() => null);
  if (res) {
    assertEquals(res.status, 499);
    await res.body?.cancel();
  }
});

Deno.test("client abort while queued removes the job: the generator never sees it", async () => {
  const g = gated(await testGenerator());
  const { app } = await setup(g);
  const first = app.request("/generate", jsonInit({ prompt: "first", steps: 2 }));
  await g.started;
  const ctl = new AbortController();
  const second = app.request("/generate", jsonInit({ prompt: "second" }, {}, ctl.signal));
  await waitingIs(app, 1);
  ctl.abort();
  await Promise.resolve(second).catch(() => null);
  await waitingIs(app, 0);
  g.release();
  assertEquals((await first).status, 200);
  assertEquals(g.calls.map((c) => c.req.prompt), ["first"]);
});

Deno.test("every failed, refused or cancelled request is logged once: status, code, reason, elapsed", async () => {
  type Line = ReturnType<typeof memoryLogger>["lines"][number];
  const outcomes = (lines: Line[]) =>
    lines.filter((l) => l.msg.startsWith("request ")).map((l) => [
      l.level,
      l.msg,
      l.fields?.status,
      l.fields?.code,
    ]);
  const check = (l: Line) => {
    assert(typeof l.fields?.reason === "string" && l.fields.reason !== "", JSON.stringify(l));
    assert(typeof l.fields?.elapsedMs === "number" && l.fields.elapsedMs >= 0, JSON.stringify(l));
  };

  // refused at once: a bad field, an unknown route, a deadline nothing fits
  const log = memoryLogger();
  const { app } = await setup(undefined, {}, log);
  await (await app.request("/generate", jsonInit({ prompt: "x", steps: "many" }))).text();
  await (await app.request("/nope")).text();
  await (await app.request("/generate", jsonInit({ prompt: "x", deadline_ms: 1 }))).text();
  assertEquals(outcomes(log.lines), [
    ["warn", "request refused", 400, "invalid_type"],
    ["warn", "request refused", 404, "not_found"],
    ["warn", "request refused", 503, "deadline_too_short"],
  ]);
  log.lines.forEach((l) => l.msg.startsWith("request ") && check(l));
  const reason = String(log.lines[0].fields?.reason);
  assert(reason.includes("steps"), reason);

  // the generation fails, as a plain answer and in a stream (whose HTTP status is 200)
  const failing = memoryLogger();
  const f = await setup(failingOn(failingOn(await testGenerator(), 1), 2), {}, failing);
  await (await f.app.request("/generate", jsonInit({ prompt: "x", steps: 2 }))).text();
  await (await f.app.request(
    "/v1/images/generations",
    jsonInit({ prompt: "x", steps: 2, stream: true }),
  )).text();
  assertEquals(outcomes(failing.lines), [
    ["error", "request failed", 500, "generation_failed"],
    ["error", "request failed", 500, "generation_failed"],
  ]);
  assertEquals(failing.lines.filter((l) => l.msg === "request failed")[1].fields?.stream, true);

  // the deadline passes while queued (504), and a client goes away (499)
  const queued = memoryLogger();
  const g = gated(predicting(await testGenerator(), () => 1));
  const q = await setup(g, {}, queued);
  const ctl = new AbortController();
  const first = q.app.request("/generate", jsonInit({ prompt: "x" }, {}, ctl.signal));
  await g.started;
  await (await q.app.request(
    "/generate",
    jsonInit({ prompt: "google dog face", deadline_ms: 100 }),
  )).text();
  ctl.abort();
  await Promise.resolve(first).then((r) => r.body?.cancel(), () => {});
  for (let i = 0; i < 400 && outcomes(queued.lines).length < 2; i++) {
    await new Promise((r) => setTimeout(r, 5));
  }
  assertEquals(outcomes(queued.lines), [
    ["warn", "request refused", 504, "deadline_exceeded"],
    ["info", "request cancelled", 499, "client_closed"],
  ]);
  queued.lines.forEach((l) => l.msg.startsWith("request ") && check(l));
  assert(!queued.lines.some((l) => l.msg === "generated"), "no success line for either");
});

/**
 * The API faults found by trying the service as users do (issue #16), each by kind, on the real
 * default model: prompts past the text encoder's window and prompts with no known word, guidance
 * at or below 1, OpenAI's streaming format through the official `openai` client, OpenAI's request
 * fields, CORS preflights before auth, and `Prefer` as a preference.
 */
import OpenAI from "openai";
import { assert, assertEquals } from "./_assert.ts";
import { createApp } from "../lib/server/app.ts";
import { defaultConfig, type ServerConfig } from "../lib/server/config.ts";
import { silentLogger } from "../lib/io/log.ts";
import { startService } from "../main.ts";
import { testGenerator } from "./support/generator.ts";
import { counting } from "./support/wrap_generator.ts";
import { jsonInit } from "./support/http.ts";

const TOKEN = "faults-token-0123456789";

async function setup(config: Partial<ServerConfig> = {}) {
  const generator = counting(await testGenerator());
  const app = createApp({
    generator,
    config: defaultConfig({ queueMax: 4, ...config }),
    logger: silentLogger,
  });
  return { app, generator };
}

async function png(app: ReturnType<typeof createApp>, body: Record<string, unknown>) {
  const res = await app.request("/generate", jsonInit({ steps: 2, seed: 5, ...body }));
  assertEquals(res.status, 200, JSON.stringify(body));
  return new Uint8Array(await res.arrayBuffer());
}

Deno.test("prompts: words past the window are stated in the plan, never silently dropped", async () => {
  const { app } = await setup();
  const long = "twitter red apple" + " heart".repeat(11) + " google dog face grinning";
  const res = await app.request("/v1/images/generations", jsonInit({ prompt: long, steps: 2 }));
  assertEquals(res.status, 200);
  const { plan } = await res.json();
  assertEquals(plan.prompt.truncated, true);
  assertEquals(plan.prompt.max_tokens, 14);
  assert(plan.prompt.ignored_text.includes("google dog face grinning"), plan.prompt.ignored_text);
  const short = await (await app.request(
    "/v1/images/generations",
    jsonInit({ prompt: "twitter red apple", steps: 2 }),
  )).json();
  assertEquals([short.plan.prompt.truncated, short.plan.prompt.ignored_text], [false, ""]);
});

Deno.test("prompts: no known word is refused like an empty prompt (400 naming prompt)", async () => {
  const { app, generator } = await setup();
  for (const prompt of ["🍎", "红苹果", "تفاحة حمراء", "!!! ???", "   "]) {
    const res = await app.request("/generate", jsonInit({ prompt }));
    assertEquals(res.status, 400, prompt);
    const { error } = await res.json();
    assertEquals(error.param, "prompt", prompt);
  }
  assertEquals(generator.calls.length, 0);
  // lengths count code points everywhere: 1000 apples pass the length check (and then fail on
  // having no known word), 1001 are too long
  const at = await (await app.request("/generate", jsonInit({ prompt: "🍎".repeat(1001) }))).json();
  assert(at.error.message.includes("1001 characters (Unicode code points)"), at.error.message);
  const ok = await app.request(
    "/generate",
    jsonInit({ prompt: "twitter red apple " + "🍎".repeat(900), steps: 2 }),
  );
  assertEquals(ok.status, 200);
  await ok.body?.cancel();
});

Deno.test("guidance <= 1 runs one conditional batch: the prompt counts, and predictions are cheaper", async () => {
  const { app, generator } = await setup();
  for (const g of [0, 1]) {
    const apple = await png(app, { prompt: "twitter red apple", guidance_scale: g });
    const dog = await png(app, { prompt: "google dog face", guidance_scale: g });
    assert(apple.length !== dog.length || apple.some((b, i) => b !== dog[i]), `guidance ${g}`);
  }
  const model = generator.models()[0].name;
  const spec = { steps: 20, solver: "dpm" as const, schedule: null };
  const guided = generator.predictMs(model, { ...spec, guided: true });
  const plain = generator.predictMs(model, { ...spec, guided: false });
  assert(plain < guided, `unguided ${plain} ms vs guided ${guided} ms`);
});

Deno.test("OpenAI fields clients send by default: no-ops or a clear 400, never unknown", async () => {
  const { app } = await setup();
  const base = { prompt: "twitter red apple", steps: 2 };
  for (
    const extra of [
      { quality: "high", style: "vivid", user: "u-1", moderation: "auto" },
      { output_format: "png", background: "opaque", output_compression: 80 },
      { response_format: "b64_json", size: "64x64", n: 1 },
      { quality: null, style: null, user: null, seed: null },
    ]
  ) {
    const res = await app.request("/v1/images/generations", jsonInit({ ...base, ...extra }));
    assertEquals(res.status, 200, JSON.stringify(extra));
    await res.body?.cancel();
  }
  for (
    const [extra, param] of [
      [{ background: "transparent" }, "background"],
      [{ output_format: "jpeg" }, "output_format"],
      [{ response_format: "url" }, "response_format"],
      [{ quality: "ultra" }, "quality"],
      [{ colour: "red" }, "colour"],
    ] as const
  ) {
    const res = await app.request("/v1/images/generations", jsonInit({ ...base, ...extra }));
    assertEquals(res.status, 400, JSON.stringify(extra));
    const { error } = await res.json();
    assertEquals(error.param, param);
    if (param !== "colour") assert(!error.message.includes("unknown"), error.message);
    assert(!error.message.includes("  "), `one space between words: ${error.message}`);
  }
  // a field that takes one value says which
  for (
    const [extra, message] of [
      [{ output_format: "jpeg" }, 'output_format must be "png", got "jpeg"'],
      [{ response_format: "url" }, 'response_format must be "b64_json", got "url"'],
    ] as const
  ) {
    const res = await app.request("/v1/images/generations", jsonInit({ ...base, ...extra }));
    assertEquals((await res.json()).error.message, message);
  }
});

Deno.test("CORS: preflights are answered before auth; configured origins only", async () => {
  const { app } = await setup({ apiToken: TOKEN, corsOrigins: ["https://app.example.com"] });
  const preflight = await app.request("/v1/images/generations", {
    method: "OPTIONS",
    headers: {
      origin: "https://app.example.com",
      "access-control-request-method": "POST",
      "access-control-request-headers": "authorization, content-type",
    },
  });
  assertEquals(preflight.status, 204);
  assertEquals(
    preflight.headers.get("access-control-allow-origin"),
    "https://app.example.com",
  );
  assert(preflight.headers.get("access-control-allow-headers")?.includes("authorization"));
  const other = await app.request("/v1/models", {
    headers: { origin: "https://evil.example", authorization: `Bearer ${TOKEN}` },
  });
  assertEquals(other.headers.get("access-control-allow-origin"), null);
  await other.body?.cancel();
  const actual = await app.request("/v1/models", {
    headers: { origin: "https://app.example.com", authorization: `Bearer ${TOKEN}` },
  });
  assertEquals(actual.status, 200);
  assertEquals(actual.headers.get("access-control-allow-origin"), "https://app.example.com");
  await actual.body?.cancel();
});

Deno.test("the official openai client streams partial images and completed images", async () => {
  const generator = await testGenerator();
  const svc = await startService({
    generator,
    config: defaultConfig({ port: 0, host: "127.0.0.1", apiToken: TOKEN, shutdownGraceMs: 200 }),
    logger: silentLogger,
  });
  try {
    const client = new OpenAI({
      apiKey: TOKEN,
      baseURL: `http://127.0.0.1:${svc.addr.port}/v1`,
      maxRetries: 0,
    });
    const stream = await client.images.generate({
      model: generator.models()[0].name,
      prompt: "twitter red apple",
      stream: true,
      partial_images: 2,
      size: "auto",
    });
    const types: string[] = [];
    let final = "";
    for await (const ev of stream) {
      types.push(ev.type);
      if (ev.type === "image_generation.partial_image") assert(ev.b64_json.length > 0);
      if (ev.type === "image_generation.completed") final = ev.b64_json;
    }
    assert(types.includes("image_generation.partial_image"), types.join(", "));
    assertEquals(types.at(-1), "image_generation.completed");
    assert(final.length > 100, "the final image arrives in b64_json");
    // a refusal comes back as the SDK's API error, with the service's message
    let status = 0;
    try {
      await client.images.generate({ prompt: "🍎", model: generator.models()[0].name });
    } catch (e) {
      status = (e as { status?: number }).status ?? -1;
    }
    assertEquals(status, 400);
  } finally {
    await svc.shutdown();
  }
});

/**
 * The service over a real socket (`startService` from main.ts on 127.0.0.1, port 0): endpoints,
 * streaming, disconnects, auth, cron registration and graceful shutdown.
 */
import { assert, assertEquals } from "./_assert.ts";
import { loadJobs, type Service, startService } from "../main.ts";
import { defaultConfig, type ServerConfig } from "../lib/server/config.ts";
import type { ImageGenerator } from "../lib/pipeline/types.ts";
import { silentLogger } from "../lib/io/log.ts";
import type { CronFn, ThumbnailJob } from "../lib/jobs/thumbnails.ts";
import { DEFAULT_MODEL_DIR, testGenerator } from "./support/generator.ts";
import { gated } from "./support/wrap_generator.ts";
import {
  aborted,
  b64PngSize,
  jsonInit,
  parseSse,
  pngSize,
  readFirstEvent,
} from "./support/http.ts";

const TOKEN = "socket-token-0123456789";

async function serve(
  gen?: ImageGenerator,
  config: Partial<ServerConfig> = {},
  cron?: CronFn,
  jobs?: ThumbnailJob[],
): Promise<{ svc: Service; url: string; generator: ImageGenerator }> {
  const generator = gen ?? await testGenerator();
  const svc = await startService({
    generator,
    config: defaultConfig({ port: 0, host: "127.0.0.1", shutdownGraceMs: 200, ...config }),
    logger: silentLogger,
    cron,
    jobs,
  });
  return { svc, url: `http://127.0.0.1:${svc.addr.port}`, generator };
}

Deno.test("socket: every endpoint answers", async () => {
  const { svc, url, generator } = await serve();
  const model = generator.models()[0];
  try {
    const h = await fetch(`${url}/healthz`);
    assertEquals([h.status, (await h.json()).status], [200, "ok"]);
    const m = await fetch(`${url}/v1/models`);
    assertEquals((await m.json()).data[0].id, model.name);
    const j = await fetch(`${url}/v1/images/generations`, jsonInit({ prompt: "apple", steps: 2 }));
    assertEquals(j.status, 200);
    const jb = await j.json();
    assertEquals(b64PngSize(jb.data[0].b64_json), { width: model.width, height: model.height });
    const p = await fetch(`${url}/generate`, jsonInit({ prompt: "apple", steps: 2, seed: 9 }));
    assertEquals([p.status, p.headers.get("x-seed")], [200, "9"]);
    pngSize(new Uint8Array(await p.arrayBuffer()));
    const s = await fetch(
      `${url}/v1/images/generations`,
      jsonInit({ prompt: "apple", steps: 3, stream: true, partial_images: 3 }),
    );
    const events = parseSse(await s.text());
    assertEquals(events[0].event, "queued");
    assertEquals(events.at(-1)!.event, "image_generation.completed");
    const bad = await fetch(`${url}/generate`, jsonInit({ prompt: "apple", steps: "many" }));
    assertEquals(bad.status, 400);
    assertEquals((await bad.json()).error.param, "steps");
    const metrics = await (await fetch(`${url}/metrics`)).text();
    assert(metrics.includes('imagegen_http_requests_total{route="/generate",status="200"} 1'));
  } finally {
    await svc.shutdown();
  }
});

Deno.test("socket: a client that disconnects mid-stream cancels its generation", async () => {
  const g = gated(await testGenerator());
  const { svc, url } = await serve(g);
  try {
    const ctl = new AbortController();
    const res = await fetch(
      `${url}/v1/images/generations`,
      jsonInit({ prompt: "x", stream: true }, {}, ctl.signal),
    );
    const reader = res.body!.getReader();
    assertEquals((await readFirstEvent(reader)).event, "queued");
    await g.started;
    ctl.abort();
    await reader.cancel().catch(() => {});
    assert((await aborted(g.calls[0].signal)) instanceof Error);
    await svc.queue.idle();
  } finally {
    await svc.shutdown();
  }
});

Deno.test("socket: a client that disconnects from a plain request cancels its generation", async () => {
  const g = gated(await testGenerator());
  const { svc, url } = await serve(g);
  try {
    const ctl = new AbortController();
    const pending = fetch(`${url}/generate`, jsonInit({ prompt: "x" }, {}, ctl.signal)).catch((e) =>
      e
    );
    await g.started;
    ctl.abort();
    assert((await pending) instanceof Error);
    assert((await aborted(g.calls[0].signal)) instanceof Error);
    await svc.queue.idle();
  } finally {
    await svc.shutdown();
  }
});

Deno.test("socket: auth on and off", async () => {
  const on = await serve(undefined, { apiToken: TOKEN });
  try {
    const r = await fetch(`${on.url}/generate`, jsonInit({ prompt: "x", steps: 2 }));
    assertEquals(r.status, 401);
    assertEquals((await r.json()).error.param, "authorization");
    const ok = await fetch(
      `${on.url}/generate`,
      jsonInit({ prompt: "x", steps: 2 }, { authorization: `Bearer ${TOKEN}` }),
    );
    assertEquals(ok.status, 200);
    await ok.arrayBuffer();
    assertEquals(
      (await fetch(`${on.url}/healthz`).then(async (x) => (await x.body?.cancel(), x))).status,
      200,
    );
  } finally {
    await on.svc.shutdown();
  }
  const off = await serve();
  try {
    const r = await fetch(`${off.url}/generate`, jsonInit({ prompt: "x", steps: 2 }));
    assertEquals(r.status, 200);
    await r.arrayBuffer();
  } finally {
    await off.svc.shutdown();
  }
});

Deno.test("socket: shutdown refuses queued work and aborts the running job after the grace", async () => {
  const g = gated(await testGenerator());
  const { svc, url } = await serve(g, { shutdownGraceMs: 50 });
  const running = fetch(`${url}/generate`, jsonInit({ prompt: "a" }));
  await g.started;
  const queued = fetch(`${url}/generate`, jsonInit({ prompt: "b" }));
  while (svc.queue.waiting < 1) await new Promise((r) => setTimeout(r, 5));
  await svc.shutdown();
  const [r1, r2] = await Promise.all([running, queued]);
  assertEquals([r1.status, r2.status], [503, 503]);
  assertEquals((await r1.json()).error.code, "shutting_down");
  assertEquals((await r2.json()).error.code, "shutting_down");
  assert(g.calls[0].signal?.aborted);
  assertEquals(g.calls.length, 1);
});

Deno.test("socket: crons from the jobs file are registered and run through the queue", async () => {
  const dir = `tmp/socket-cron-${crypto.randomUUID().slice(0, 8)}`;
  await Deno.mkdir(dir, { recursive: true });
  try {
    const gen = await testGenerator();
    const model = gen.models()[0];
    const file = `${dir}/jobs.json`;
    await Deno.writeTextFile(
      file,
      JSON.stringify({
        jobs: [{
          name: "t1",
          cron: "*/5 * * * *",
          prompts: ["a cat"],
          size: `${model.width}x${model.height}`,
          steps: 2,
          outDir: `${dir}/out/`,
        }],
      }),
    );
    const registered: { name: string; schedule: string; handler: () => Promise<void> }[] = [];
    const cron: CronFn = (name, schedule, handler) => {
      registered.push({ name, schedule, handler });
      return Promise.resolve();
    };
    const config = defaultConfig({ thumbnailsFile: file });
    const { svc } = await serve(
      gen,
      {},
      cron,
      await loadJobs(config, [DEFAULT_MODEL_DIR], silentLogger),
    );
    try {
      assertEquals(registered.map((r) => [r.name, r.schedule]), [["t1", "*/5 * * * *"]]);
      await registered[0].handler();
      const index = JSON.parse(await Deno.readTextFile(`${dir}/out/index.json`));
      assertEquals(index.images.length, 1);
      assertEquals(index.images[0].prompt, "a cat");
    } finally {
      await svc.shutdown();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

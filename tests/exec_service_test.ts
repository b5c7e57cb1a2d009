/**
 * The serving promises against the real engine: the shipped model in a {@link WorkerPool} (one
 * wasm worker, no stand-in generator) behind the real HTTP service on a socket. Health checks
 * answered during a long generation, disconnects and deadlines stopping the worker, live SSE
 * progress, 429s from a full queue, a killed worker replaced. Timing bounds are generous: they
 * tell "answered while the engine works" from "answered after it finished", nothing finer.
 */
import { assert, assertEquals } from "./_assert.ts";
import { WorkerPool } from "../lib/exec/pool.ts";
import { modelFolders } from "../lib/model/folder.ts";
import { defaultConfig, type ServerConfig } from "../lib/server/config.ts";
import type { ImageGenerator } from "../lib/pipeline/types.ts";
import { silentLogger } from "../lib/io/log.ts";
import { type Service, startService } from "../main.ts";
import { predicting } from "./support/wrap_generator.ts";
import { jsonInit, parseSse } from "./support/http.ts";

const MODELS = new URL("../models", import.meta.url).pathname;

/** A long generation on the shipped model: ~100 guided UNet evaluations. */
const LONG = { prompt: "google red apple", steps: 100, cache: "none", seed: 1 };

async function serve(
  generator: ImageGenerator,
  config: Partial<ServerConfig> = {},
  pool?: WorkerPool,
): Promise<{ svc: Service; url: string }> {
  const svc = await startService({
    generator,
    config: defaultConfig({ port: 0, host: "127.0.0.1", shutdownGraceMs: 200, ...config }),
    logger: silentLogger,
    concurrency: 1,
    workers: pool ? () => pool.status() : undefined,
  });
  return { svc, url: `http://127.0.0.1:${svc.addr.port}` };
}

/** Resolves once the service has a running generation (polling /healthz). */
async function running(url: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const h = await (await fetch(`${url}/healthz`)).json();
    if (h.queue.running > 0) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error("no generation started");
}

/** The pool's one worker is idle again within `ms`. */
async function idleWithin(pool: WorkerPool, ms: number): Promise<number> {
  const t0 = performance.now();
  while (performance.now() - t0 < ms) {
    if (pool.status().every((w) => w.state === "idle")) return performance.now() - t0;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`the worker was still busy after ${ms} ms: ${JSON.stringify(pool.status())}`);
}

function metric(text: string, name: string): number {
  const line = text.split("\n").find((l) => l.startsWith(name + " ") || l.startsWith(name + "{"));
  return line ? Number(line.split(" ").at(-1)) : 0;
}

Deno.test("execution layer: serving promises hold with the real engine in a worker", async (t) => {
  const pool = await WorkerPool.start({
    modelDirs: await modelFolders(MODELS),
    backend: "wasm",
    workers: 1,
    logger: silentLogger,
  });
  try {
    const model = pool.models()[0].name;
    const predictedLong = pool.predictMs(model, {
      steps: 100,
      solver: "dpm",
      schedule: null,
      guided: true,
    });
    assert(Number.isFinite(predictedLong), "the worker's warm-up measured the host");

    await t.step(
      "predictions are calibrated at start: the first request is predicted, not 3x off",
      async () => {
        const { svc, url } = await serve(pool);
        try {
          const res = await fetch(
            `${url}/v1/images/generations`,
            jsonInit({ prompt: "google red apple", steps: 20, cache: "none" }),
          );
          const { plan } = await res.json();
          const ratio = (plan.elapsed_ms - plan.queue_wait_ms) / plan.predicted_ms;
          assert(ratio > 1 / 3 && ratio < 3, `measured / predicted = ${ratio}`);
        } finally {
          await svc.shutdown();
        }
      },
    );

    await t.step("/healthz answers while a long generation runs", async () => {
      const { svc, url } = await serve(pool);
      try {
        const gen = fetch(`${url}/generate`, jsonInit(LONG));
        await running(url);
        for (let i = 0; i < 3; i++) {
          const t0 = performance.now();
          const h = await fetch(`${url}/healthz`);
          const body = await h.json();
          const ms = performance.now() - t0;
          assertEquals([h.status, body.queue.running], [200, 1]);
          assert(ms < 1000, `/healthz took ${ms} ms during a generation`);
        }
        const res = await gen;
        assertEquals(res.status, 200);
        await res.arrayBuffer();
      } finally {
        await svc.shutdown();
      }
    });

    await t.step(
      "a client that disconnects stops the worker; the next request starts at once",
      async () => {
        const { svc, url } = await serve(pool);
        try {
          const client = new AbortController();
          const gen = fetch(`${url}/generate`, { ...jsonInit(LONG), signal: client.signal });
          gen.catch(() => {});
          await running(url);
          client.abort();
          const stopMs = await idleWithin(pool, 5_000);
          const next = await fetch(`${url}/generate`, jsonInit({ ...LONG, steps: 2 }));
          assertEquals(next.status, 200);
          const waited = Number(next.headers.get("x-queue-wait-ms"));
          await next.arrayBuffer();
          assert(waited < 1000, `the next request waited ${waited} ms behind a cancelled one`);
          const m = await (await fetch(`${url}/metrics`)).text();
          assertEquals(
            metric(m, 'imagegen_requests_cancelled_total{reason="client_disconnect"}'),
            1,
            `stopped after ${stopMs} ms; metrics:\n${m}`,
          );
        } finally {
          await svc.shutdown();
        }
      },
    );

    await t.step(
      "SSE progress arrives while the image is made, the first event at once",
      async () => {
        const { svc, url } = await serve(pool);
        try {
          const t0 = performance.now();
          const res = await fetch(
            `${url}/v1/images/generations`,
            jsonInit({ ...LONG, steps: 60, stream: true, partial_images: 3 }),
          );
          const headersMs = performance.now() - t0;
          const reader = res.body!.getReader();
          const dec = new TextDecoder();
          const arrivals: { event: string; ms: number }[] = [];
          let buf = "";
          while (true) {
            const r = await reader.read();
            if (r.done) break;
            buf += dec.decode(r.value, { stream: true });
            let k;
            while ((k = buf.indexOf("\n\n")) >= 0) {
              const block = buf.slice(0, k + 2);
              buf = buf.slice(k + 2);
              for (const e of parseSse(block)) {
                arrivals.push({ event: e.event, ms: performance.now() - t0 });
              }
            }
          }
          assertEquals(arrivals[0].event, "queued");
          assertEquals(arrivals.at(-1)!.event, "image_generation.completed");
          assert(
            headersMs < 1000 && arrivals[0].ms < 1000,
            `first event after ${arrivals[0].ms} ms`,
          );
          const progress = arrivals.filter((a) => a.event === "progress");
          assertEquals(progress.length, 60);
          const spread = progress.at(-1)!.ms - progress[0].ms;
          const total = arrivals.at(-1)!.ms - arrivals[0].ms;
          assert(spread > 0.5 * total, `progress spread over ${spread} of ${total} ms`);
        } finally {
          await svc.shutdown();
        }
      },
    );

    await t.step("a deadline passing mid-generation → 504 within about a segment", async () => {
      // Predictions are made to look small so the plan is admitted; the engine is the real one.
      const { svc, url } = await serve(predicting(pool, () => 1));
      try {
        const t0 = performance.now();
        const res = await fetch(`${url}/generate`, jsonInit({ ...LONG, deadline_ms: 400 }));
        const ms = performance.now() - t0;
        assertEquals(res.status, 504);
        assertEquals((await res.json()).error.code, "deadline_exceeded");
        assert(ms < 400 + 1500, `answered ${ms} ms after a 400 ms deadline`);
        await idleWithin(pool, 5_000);
        const m = await (await fetch(`${url}/metrics`)).text();
        assertEquals(metric(m, 'imagegen_deadline_misses_total{stage="running"}'), 1);
      } finally {
        await svc.shutdown();
      }
    });

    await t.step("QUEUE_MAX=1 and 4 concurrent requests: 429s with Retry-After", async () => {
      const { svc, url } = await serve(pool, { queueMax: 1 });
      try {
        const answers = await Promise.all(
          [1, 2, 3, 4].map((seed) =>
            fetch(`${url}/generate`, jsonInit({ ...LONG, steps: 30, seed })).then(async (r) => {
              const retry = r.headers.get("retry-after");
              await r.arrayBuffer();
              return { status: r.status, retry };
            })
          ),
        );
        const statuses = answers.map((a) => a.status).sort();
        assertEquals(statuses, [200, 200, 429, 429]);
        for (const a of answers.filter((x) => x.status === 429)) assert(Number(a.retry) >= 1);
      } finally {
        await svc.shutdown();
      }
    });

    await t.step("a killed worker fails its request with a 500 and is replaced", async () => {
      const { svc, url } = await serve(pool, {}, pool);
      try {
        const gen = fetch(`${url}/v1/images/generations`, jsonInit(LONG));
        await running(url);
        pool.terminateWorker(1, "killed by the test");
        const res = await gen;
        assertEquals(res.status, 500);
        const body = await res.json();
        assertEquals([body.error.type, body.error.code], ["server_error", "worker_failed"]);
        assert(!JSON.stringify(body).includes("killed by the test"), "no internals in the answer");
        const h = await (await fetch(`${url}/healthz`)).json();
        assert(["degraded", "ok"].includes(h.status), h.status);
        // what its load added to the process, measured once per load: named so
        const w = h.workers[0];
        assert("loadMemoryBytes" in w && !("memoryBytes" in w), JSON.stringify(w));
        assert(w.loadMemoryBytes === null || w.loadMemoryBytes > 0, JSON.stringify(w));
        const next = await fetch(`${url}/generate`, jsonInit({ ...LONG, steps: 2 }));
        assertEquals(next.status, 200);
        await next.arrayBuffer();
        assertEquals(pool.status()[0].restarts, 1);
        const m = await (await fetch(`${url}/metrics`)).text();
        assertEquals(metric(m, "imagegen_worker_restarts_total"), 1);
      } finally {
        await svc.shutdown();
      }
    });
  } finally {
    pool.close();
  }
});

/**
 * Start-up of the generation service: configuration from the environment, the default model,
 * a short warm-up (so the per-segment latencies the planner uses are measured on this host), the
 * Hono app on `Deno.serve`, the cron thumbnail jobs, and graceful shutdown on SIGTERM/SIGINT.
 *
 * `deno task start` (narrow permissions; see deno.json).
 *
 * @module
 */
import { ConfigError, loadConfig, type ServerConfig } from "./lib/server/config.ts";
import { createApp } from "./lib/server/app.ts";
import type { ImageGenerator } from "./lib/pipeline/types.ts";
import { errorFields, jsonLogger, type Logger } from "./lib/io/log.ts";
import { Metrics } from "./lib/server/metrics.ts";
import { JobQueue, queuedGenerator } from "./lib/server/queue.ts";
import {
  type CronFn,
  JobsFileError,
  loadThumbnailJobs,
  registerThumbnailCrons,
} from "./lib/jobs/thumbnails.ts";
// ── The real pipeline plugs in here (the one place main.ts knows about it). ──
import { loadGenerator } from "./lib/pipeline/service.ts";
import { isFile } from "./lib/io/fs.ts";

/** A running service. */
export interface Service {
  /** Where it listens (port resolved when PORT=0). */
  addr: Deno.NetAddr;
  queue: JobQueue;
  metrics: Metrics;
  server: Deno.HttpServer<Deno.NetAddr>;
  /** Stops taking requests, lets the running generation finish within the grace period (then
   * aborts it), and resolves when the server has closed. */
  shutdown(): Promise<void>;
}

/** Options of `startService`. */
export interface StartOptions {
  generator: ImageGenerator;
  config: ServerConfig;
  logger?: Logger;
  /** Register the jobs file's crons (default false; `main` turns it on). */
  cron?: boolean | CronFn;
  /** Called once the server listens. */
  onListen?: (addr: Deno.NetAddr) => void;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Starts the HTTP service (and optionally the crons) around an already loaded generator. */
export async function startService(opts: StartOptions): Promise<Service> {
  const { generator, config } = opts;
  const log = opts.logger ?? jsonLogger();
  const queue = new JobQueue({ maxQueued: config.queueMax });
  const metrics = new Metrics();
  const stop = new AbortController();
  const app = createApp({
    generator,
    config,
    logger: log,
    queue,
    metrics,
    shutdownSignal: stop.signal,
  });

  if (opts.cron && config.thumbnailsFile) {
    let jobs: Awaited<ReturnType<typeof loadThumbnailJobs>> | undefined;
    try {
      jobs = await loadThumbnailJobs(config.thumbnailsFile);
    } catch (e) {
      if (!(e instanceof JobsFileError) || (await isFile(config.thumbnailsFile))) throw e;
      log.info("no thumbnails file; no cron jobs", { file: config.thumbnailsFile });
    }
    if (jobs) {
      registerThumbnailCrons(jobs, queuedGenerator(generator, queue), {
        logger: log,
        cron: typeof opts.cron === "function" ? opts.cron : undefined,
      });
      log.info("cron jobs registered", { jobs: jobs.map((j) => `${j.name} (${j.cron})`) });
    }
  }

  let listened!: (a: Deno.NetAddr) => void;
  const listening = new Promise<Deno.NetAddr>((r) => (listened = r));
  const server = Deno.serve({
    port: config.port,
    hostname: config.host,
    onListen: (addr) => listened(addr),
    onError: (e) => {
      log.error("request failed", errorFields(e));
      return new Response(
        JSON.stringify({
          error: {
            message: "internal server error",
            type: "server_error",
            param: null,
            code: null,
          },
        }),
        { status: 500, headers: { "content-type": "application/json" } },
      );
    },
  }, app.fetch);
  const addr = await listening;
  opts.onListen?.(addr);

  let closing: Promise<void> | null = null;
  const shutdown = () =>
    closing ??= (async () => {
      log.info("shutting down", { running: queue.running, waiting: queue.waiting });
      queue.close();
      const closed = server.shutdown();
      await Promise.race([queue.idle(), sleep(config.shutdownGraceMs)]);
      if (queue.running > 0) {
        log.warn("aborting the running generation", { graceMs: config.shutdownGraceMs });
        stop.abort();
        await Promise.race([queue.idle(), sleep(5_000)]);
      }
      await Promise.race([closed, sleep(5_000)]);
      log.info("stopped");
    })();
  return { addr, queue, metrics, server, shutdown };
}

/**
 * Two short generations per model (few steps, no cache) so the generator measures its per-segment
 * latencies on this host before the planner relies on them: the first pays the one-time costs
 * (wasm or shader compilation, allocation), which the measured means leave out; the second is
 * steady state.
 */
export async function warmUp(generator: ImageGenerator, logger: Logger): Promise<void> {
  for (const m of generator.models()) {
    const req = {
      prompt: "warm-up",
      negativePrompt: "",
      seed: 0,
      steps: Math.min(4, m.defaults.steps),
      guidanceScale: m.defaults.guidanceScale,
      solver: m.defaults.solver,
      cache: "none",
    };
    await generator.generate(m.name, req, {});
    const t0 = performance.now();
    const r = await generator.generate(m.name, { ...req, seed: 1 }, {});
    logger.info("warm-up done", {
      model: m.name,
      backend: r.backend,
      steps: r.steps,
      ms: Math.round(performance.now() - t0),
      predictedDefaultMs: Math.round(
        generator.predictMs(m.name, {
          steps: m.defaults.steps,
          solver: m.defaults.solver,
          schedule: null,
        }),
      ),
    });
  }
}

/**
 * Where the models are: `MODELS_DIR` when set (relative to the working directory), else the
 * models/ folder beside this file, which is the checkout's and, in the binary `deno task compile`
 * builds, the copy embedded in it (so the binary runs from any directory).
 */
export function modelsDir(config: ServerConfig, env = (k: string) => Deno.env.get(k)): string {
  if (env("MODELS_DIR")?.trim()) return config.modelsDir;
  return new URL("./models", import.meta.url).pathname;
}

/** The `deno task start` entry point. */
async function main(): Promise<void> {
  const log = jsonLogger();
  let config: ServerConfig;
  try {
    config = loadConfig((k) => Deno.env.get(k));
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`configuration error: ${e.message}`);
      Deno.exit(2);
    }
    throw e;
  }
  let generator: ImageGenerator;
  try {
    generator = await loadGenerator(modelsDir(config), config.backend);
    log.info("model loaded", {
      models: generator.models().map((m) => `${m.name} ${m.width}x${m.height} (${m.backend})`),
    });
    await warmUp(generator, log);
  } catch (e) {
    log.error("start-up failed: could not load the model", errorFields(e));
    Deno.exit(1);
  }
  let service: Service;
  try {
    service = await startService({
      generator,
      config,
      logger: log,
      cron: true,
      onListen: (a) => log.info("listening", { url: `http://${a.hostname}:${a.port}/` }),
    });
  } catch (e) {
    log.error("start-up failed", { error: e instanceof Error ? e.message : String(e) });
    Deno.exit(1);
  }
  const onSignal = () => {
    service.shutdown().then(() => Deno.exit(0), () => Deno.exit(1));
  };
  Deno.addSignalListener("SIGTERM", onSignal);
  Deno.addSignalListener("SIGINT", onSignal);
}

if (import.meta.main) await main();

/**
 * Start-up of the generation service: configuration from the environment, the model folders
 * (every file checked against its manifest; a folder that fails is reported and left out), the
 * cron jobs file (checked before any model loads), the generation workers (`lib/exec/`: each loads the models
 * and warms the request path, so the planner's predictions are measured on this host), the Hono
 * app on `Deno.serve`, the crons, and graceful shutdown on SIGTERM/SIGINT.
 *
 * `deno task start` (narrow permissions; see deno.json).
 *
 * @module
 */
import { ConfigError, defaultConfig, loadConfig, type ServerConfig } from "./lib/server/config.ts";
import { createApp } from "./lib/server/app.ts";
import type { ImageGenerator } from "./lib/pipeline/types.ts";
import type { FailedModel } from "./lib/pipeline/service.ts";
import { errorFields, jsonLogger, type Logger } from "./lib/io/log.ts";
import { Metrics } from "./lib/server/metrics.ts";
import { JobQueue, queuedGenerator } from "./lib/server/queue.ts";
import {
  checkThumbnailJobs,
  type CronFn,
  type JobModel,
  JobStats,
  registerThumbnailCrons,
  type ThumbnailJob,
} from "./lib/jobs/thumbnails.ts";
import { WorkerPool, type WorkerStatus } from "./lib/exec/pool.ts";
import { isFile } from "./lib/io/fs.ts";
import { listenAddress, listenRefusal, permissionAdvice } from "./lib/io/permissions.ts";
import {
  type ModelFolder,
  ModelFolderError,
  modelFolders,
  readModelFolder,
} from "./lib/model/folder.ts";
import { verifyModelFolder } from "./lib/model/manifest.ts";
import { basename } from "node:path";

/** A running service. */
export interface Service {
  /** Where it listens (port resolved when PORT=0). */
  addr: Deno.NetAddr;
  queue: JobQueue;
  metrics: Metrics;
  server: Deno.HttpServer<Deno.NetAddr>;
  /**
   * Drains and stops: new generation requests get 503 (and `/healthz` 503) while the listener
   * stays open; running work may finish within the grace period and is aborted after it; then the
   * listener closes. Resolves when the server has closed.
   */
  shutdown(): Promise<void>;
}

/** Options of `startService`. */
export interface StartOptions {
  generator: ImageGenerator;
  config: ServerConfig;
  logger?: Logger;
  /** Generations that may run at once (the number of workers; default 1). */
  concurrency?: number;
  /** The workers' states, for `/healthz` and `/metrics`. */
  workers?: () => WorkerStatus[];
  /** Cron jobs to register (already loaded and checked: {@link loadJobs}). */
  jobs?: ThumbnailJob[];
  /** Model folders that failed their start-up check (reported, not served). */
  unavailable?: FailedModel[];
  /** `Deno.cron` or a stand-in (default `Deno.cron`). */
  cron?: CronFn;
  /** Called once the server listens. */
  onListen?: (addr: Deno.NetAddr) => void;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Starts the HTTP service (and the crons) around an already loaded generator. */
export async function startService(opts: StartOptions): Promise<Service> {
  const { generator, config } = opts;
  const log = opts.logger ?? jsonLogger();
  const queue = new JobQueue({ maxQueued: config.queueMax, concurrency: opts.concurrency ?? 1 });
  const metrics = new Metrics();
  const jobStats = new JobStats();
  const stop = new AbortController();
  const app = createApp({
    generator,
    config,
    logger: log,
    queue,
    metrics,
    shutdownSignal: stop.signal,
    workers: opts.workers,
    unavailable: opts.unavailable,
    moreMetrics: () => jobStats.prometheus(),
  });

  if (opts.jobs?.length) {
    registerThumbnailCrons(opts.jobs, queuedGenerator(generator, queue), {
      logger: log,
      cron: opts.cron,
      stats: jobStats,
    });
    log.info("cron jobs registered", { jobs: opts.jobs.map((j) => `${j.name} (${j.cron})`) });
  }

  let listened!: (a: Deno.NetAddr) => void;
  const listening = new Promise<Deno.NetAddr>((r) => (listened = r));
  const server = Deno.serve({
    port: config.port,
    hostname: config.host,
    onListen: (addr) => listened(addr),
    onError: (e) => {
      log.error("request failed", errorFields(e, { stack: true }));
      return Response.json(
        {
          error: {
            message: "internal server error",
            type: "server_error",
            param: null,
            code: null,
          },
        },
        { status: 500 },
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
      await Promise.race([queue.idle(), sleep(config.shutdownGraceMs)]);
      if (queue.running > 0) {
        log.warn("aborting the running generations", {
          running: queue.running,
          graceMs: config.shutdownGraceMs,
        });
        stop.abort(new DOMException("the service is shutting down", "AbortError"));
        await Promise.race([queue.idle(), sleep(5_000)]);
      }
      await Promise.race([server.shutdown(), sleep(5_000)]);
      log.info("stopped");
    })();
  return { addr, queue, metrics, server, shutdown };
}

/**
 * The start-up check of the model folders, before any session is created: every file each
 * folder's manifest lists has its recorded size and sha256, and the folder is one the pipeline
 * can load (configs, tokenizer, graphs' inputs and outputs, the timestep contract: see
 * `readModelFolder`). Returns the folders that pass, as paths (`ok`) and as read (`folders`, for
 * the jobs check and the pool, which then need not read them again), and, by name and reason,
 * those that do not (the service starts without them; with none, it does not start).
 */
export async function checkModelFolders(
  dirs: string[],
): Promise<{ ok: string[]; folders: ModelFolder[]; unavailable: FailedModel[] }> {
  const folders: ModelFolder[] = [];
  const unavailable: FailedModel[] = [];
  for (const dir of dirs) {
    try {
      await verifyModelFolder(dir);
      folders.push(await readModelFolder(dir));
    } catch (e) {
      const reason = e instanceof ModelFolderError ? e.reason : (e as Error).message;
      unavailable.push({ name: basename(dir), dir, reason });
    }
  }
  return { ok: folders.map((f) => f.dir), folders, unavailable };
}

/**
 * Reads and checks the cron jobs file against the models that will serve it (see
 * `checkThumbnailJobs`), naming the file, the job and the field on any problem; no jobs when the
 * file is not configured, or is absent at its default name.
 */
export async function loadJobs(
  config: ServerConfig,
  models: (string | JobModel)[],
  log: Logger,
): Promise<ThumbnailJob[]> {
  const file = config.thumbnailsFile;
  if (!file) return [];
  if (file === defaultConfig().thumbnailsFile && !(await isFile(file))) {
    log.info("no thumbnails file; no cron jobs", { file });
    return [];
  }
  const { jobs, warnings } = await checkThumbnailJobs(file, models);
  for (const w of warnings) log.warn(w);
  return jobs;
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
  // before the models load (seconds): an address the net grant refuses fails now, explained
  const refused = listenRefusal(config.host, config.port);
  if (refused) {
    log.error("start-up failed: cannot listen", { error: refused });
    Deno.exit(1);
  }
  const dir = modelsDir(config);
  let dirs: string[];
  try {
    dirs = await modelFolders(dir);
  } catch (e) {
    log.error("start-up failed: no models", { error: (e as Error).message });
    Deno.exit(1);
  }
  const { folders, unavailable } = await checkModelFolders(dirs);
  for (const u of unavailable) {
    log.error("model unavailable: it failed its start-up check", {
      model: u.name,
      reason: u.reason,
    });
  }
  if (folders.length === 0) {
    log.error("start-up failed: no model passed its start-up check");
    Deno.exit(1);
  }
  let jobs: ThumbnailJob[];
  try {
    jobs = await loadJobs(config, folders, log);
  } catch (e) {
    log.error("start-up failed: the cron jobs file is invalid", errorFields(e));
    Deno.exit(1);
  }
  let pool: WorkerPool;
  try {
    pool = await WorkerPool.start({
      modelDirs: folders,
      backend: config.backend,
      workers: config.workers,
      logger: log,
    });
  } catch (e) {
    log.error("start-up failed: could not load the models", errorFields(e));
    Deno.exit(1);
  }
  unavailable.push(...pool.unavailable());
  log.info("models loaded", {
    models: pool.models().map((m) => `${m.name} ${m.width}x${m.height} (${m.backend})`),
    workers: pool.size,
  });
  let service: Service;
  try {
    service = await startService({
      generator: pool,
      config,
      logger: log,
      concurrency: pool.size,
      workers: () => pool.status(),
      jobs,
      unavailable,
      onListen: (a) =>
        log.info("listening", {
          address: `${a.hostname}:${a.port}`,
          url: `http://${
            listenAddress(
              a.hostname === "0.0.0.0" || a.hostname === "::" ? "localhost" : a.hostname,
              a.port,
            )
          }/`,
        }),
    });
  } catch (e) {
    const address = listenAddress(config.host, config.port);
    const advice = permissionAdvice(e, "net", address);
    log.error("start-up failed", advice ? { error: advice } : { ...errorFields(e), address });
    pool.close();
    Deno.exit(1);
  }
  const onSignal = () => {
    service.shutdown().then(() => {
      pool.close();
      Deno.exit(0);
    }, () => Deno.exit(1));
  };
  Deno.addSignalListener("SIGTERM", onSignal);
  Deno.addSignalListener("SIGINT", onSignal);
}

if (import.meta.main) await main();

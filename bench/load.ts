/**
 * Load test of the generation service over loopback: a bounded number of concurrent requests with
 * deadlines, reporting images/s, latency percentiles, deadline compliance, 429/503/504 counts,
 * answers later than the deadline plus one UNet segment, `/healthz` latency under the load, how
 * the planner's predictions compare with the measured generation time, and memory.
 *
 *   deno run --allow-net=127.0.0.1 bench/load.ts --url http://127.0.0.1:8000 --requests 40
 *   deno task bench load --workers 1,2 --concurrency 1,2,4   # the service in-process, per count
 *
 * Only loopback URLs are accepted; counts, concurrency and time are capped.
 *
 * @module
 */
import { defaultConfig, type ServerConfig } from "../lib/server/config.ts";
import type { ImageGenerator } from "../lib/pipeline/types.ts";
import { silentLogger } from "../lib/io/log.ts";
import { WorkerPool } from "../lib/exec/pool.ts";
import { modelFolders } from "../lib/model/folder.ts";
import type { BackendChoice } from "../lib/runtime/backend.ts";
import { startService } from "../main.ts";

/** Hard caps, so a typo cannot turn the benchmark into a flood. */
export const LOAD_LIMITS = { requests: 2000, concurrency: 64, timeLimitMs: 600_000 } as const;

/** What to send. */
export interface LoadOptions {
  /** A running server on loopback (`http://127.0.0.1:8000`). */
  url: string;
  /** Requests in total (at most `LOAD_LIMITS.requests`). */
  requests: number;
  /** Requests in flight at once. */
  concurrency: number;
  /** `deadline_ms` of every request. */
  deadlineMs: number;
  /** Stop sending new requests after this long. */
  timeLimitMs: number;
  /** Extra body fields (e.g. `{steps: 10}`); prompts cycle through `prompts`. */
  body?: Record<string, unknown>;
  prompts?: string[];
  /** Bearer token, when the server has API_TOKEN set. */
  token?: string;
  /** An answer later than deadline + `graceMs` counts as late (default 0; e.g. one segment). */
  graceMs?: number;
  /** Interval of `/healthz` probes during the load (default 250 ms; 0 = none). */
  healthEveryMs?: number;
}

/** Percentiles of a sample in ms. */
export interface Percentiles {
  p50Ms: number;
  p95Ms: number;
  maxMs: number;
}

/** What a load run measured. */
export interface LoadReport {
  url: string;
  sent: number;
  concurrency: number;
  deadlineMs: number;
  wallMs: number;
  /** Responses by HTTP status ("network" for failed connections). */
  status: Record<string, number>;
  ok: number;
  rejected429: number;
  rejected503: number;
  timeouts504: number;
  /** Latency of every answer, and of the 200s alone. */
  latency: Percentiles;
  okLatency: Percentiles;
  /** Of the requests the server accepted (not refused with 429/503), the share answered 200 within the deadline. */
  deadlineCompliance: number;
  /** Answers of any status that came after the deadline plus `graceMs`, and the worst overshoot past the deadline. */
  lateAnswers: number;
  graceMs: number;
  /** Latency of `/healthz` probed while the load ran. */
  healthz: Percentiles & { probes: number };
  maxOvershootMs: number;
  /** Measured generation time (elapsed − queue wait) over predicted, from the answers' plans. */
  predictionRatio: { median: number; p95: number; samples: number };
  /** Images per second over the run. */
  imagesPerSecond: number;
  /** Peak resident memory of the process running the server (in-process runs only). */
  peakRssBytes: number | null;
}

const DEFAULT_PROMPTS = [
  "google red apple",
  "twitter grinning face",
  "apple red heart",
  "google thumbs up",
];

/** Throws unless `url` points at this machine. */
export function assertLoopback(url: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`--url: not a URL: "${url}"`);
  }
  const h = u.hostname;
  if (!(h === "localhost" || h === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h))) {
    throw new Error(
      `--url: only loopback hosts are allowed (127.0.0.0/8, ::1, localhost), got ${h}`,
    );
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error("--url: must be http(s)");
  return u;
}

function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}

function percentiles(xs: number[]): Percentiles {
  const s = [...xs].sort((a, b) => a - b);
  const r = (x: number) => Math.round(x * 10) / 10;
  return { p50Ms: r(percentile(s, 0.5)), p95Ms: r(percentile(s, 0.95)), maxMs: r(s.at(-1) ?? 0) };
}

/** Sends the load to a running server and reports. */
export async function runLoad(opts: LoadOptions): Promise<LoadReport> {
  const base = assertLoopback(opts.url);
  const requests = Math.min(Math.max(1, Math.floor(opts.requests)), LOAD_LIMITS.requests);
  const concurrency = Math.min(Math.max(1, Math.floor(opts.concurrency)), LOAD_LIMITS.concurrency);
  const timeLimitMs = Math.min(Math.max(1, opts.timeLimitMs), LOAD_LIMITS.timeLimitMs);
  const prompts = opts.prompts?.length ? opts.prompts : DEFAULT_PROMPTS;
  const endpoint = new URL("/v1/images/generations", base).href;
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;

  const graceMs = opts.graceMs ?? 0;
  const healthEvery = opts.healthEveryMs ?? 250;
  const health: number[] = [];
  let loading = true;
  const probe = async () => {
    const url = new URL("/healthz", base).href;
    while (loading && healthEvery > 0) {
      const s = performance.now();
      try {
        const r = await fetch(url, { signal: AbortSignal.timeout(60_000) });
        await r.body?.cancel();
        health.push(performance.now() - s);
      } catch { /* counted as missing */ }
      await new Promise((r) => setTimeout(r, healthEvery));
    }
  };
  const prober = probe();
  const status: Record<string, number> = {};
  const all: number[] = [], oks: number[] = [], ratios: number[] = [];
  let sent = 0, images = 0, late = 0, overshoot = 0;
  const t0 = performance.now();
  const worker = async () => {
    while (sent < requests && performance.now() - t0 < timeLimitMs) {
      const i = sent++;
      const body = {
        prompt: prompts[i % prompts.length],
        ...opts.body,
        deadline_ms: opts.deadlineMs,
      };
      const start = performance.now();
      let code = "network";
      try {
        const res = await fetch(endpoint, {
          method: "POST",
          headers,
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(opts.deadlineMs + 30_000),
        });
        code = String(res.status);
        if (res.status === 200) {
          const j = await res.json() as {
            data: unknown[];
            plan: { predicted_ms: number; elapsed_ms: number; queue_wait_ms: number };
          };
          images += j.data.length;
          const gen = j.plan.elapsed_ms - j.plan.queue_wait_ms;
          if (j.plan.predicted_ms > 0) ratios.push(gen / j.plan.predicted_ms);
        } else {
          await res.body?.cancel();
        }
      } catch {
        code = "network";
      }
      const ms = performance.now() - start;
      status[code] = (status[code] ?? 0) + 1;
      if (code !== "network") {
        all.push(ms);
        if (ms > opts.deadlineMs + graceMs) late++;
        overshoot = Math.max(overshoot, ms - opts.deadlineMs);
      }
      if (code === "200") oks.push(ms);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const wallMs = performance.now() - t0;
  loading = false;
  await prober;
  const n = (c: string) => status[c] ?? 0;
  const accepted = sent - n("429") - n("503");
  const inTime = oks.filter((ms) => ms <= opts.deadlineMs).length;
  const rs = [...ratios].sort((a, b) => a - b);
  const r3 = (x: number) => Math.round(x * 1000) / 1000;
  return {
    url: base.origin,
    sent,
    concurrency,
    deadlineMs: opts.deadlineMs,
    wallMs: Math.round(wallMs),
    status,
    ok: n("200"),
    rejected429: n("429"),
    rejected503: n("503"),
    timeouts504: n("504"),
    latency: percentiles(all),
    okLatency: percentiles(oks),
    deadlineCompliance: accepted > 0 ? r3(inTime / accepted) : 1,
    lateAnswers: late,
    graceMs: Math.round(graceMs),
    healthz: { ...percentiles(health), probes: health.length },
    maxOvershootMs: Math.round(overshoot),
    predictionRatio: {
      median: r3(percentile(rs, 0.5)),
      p95: r3(percentile(rs, 0.95)),
      samples: rs.length,
    },
    imagesPerSecond: Math.round((images / (wallMs / 1000)) * 100) / 100,
    peakRssBytes: null,
  };
}

/**
 * Starts the service in this process on 127.0.0.1 (random port) around `generator` (with
 * `concurrency` generations at once), runs the load against it while sampling
 * `Deno.memoryUsage().rss` every 50 ms, and shuts it down.
 */
export async function runLoadInProcess(
  generator: ImageGenerator,
  opts: Omit<LoadOptions, "url" | "token"> & {
    config?: Partial<ServerConfig>;
    concurrencyLimit?: number;
  },
): Promise<LoadReport> {
  const svc = await startService({
    generator,
    config: defaultConfig({ port: 0, host: "127.0.0.1", apiToken: null, ...opts.config }),
    logger: silentLogger,
    concurrency: opts.concurrencyLimit,
  });
  let peak = Deno.memoryUsage().rss;
  const timer = setInterval(() => (peak = Math.max(peak, Deno.memoryUsage().rss)), 50);
  try {
    const report = await runLoad({ ...opts, url: `http://127.0.0.1:${svc.addr.port}` });
    peak = Math.max(peak, Deno.memoryUsage().rss);
    return { ...report, peakRssBytes: peak };
  } finally {
    clearInterval(timer);
    await svc.shutdown();
  }
}

/** One row of a load grid: a worker count and a client concurrency. */
export interface LoadGridRow extends LoadReport {
  workers: number;
  /** Resident memory each worker's load added to the process (MiB, in worker order). */
  workerMiB: number[];
}

/** What {@link runLoadGrid} runs. */
export interface LoadGridOptions extends Omit<LoadOptions, "url" | "token" | "concurrency"> {
  workers: number[];
  concurrency: number[];
  modelsDir: string;
  backend: BackendChoice;
  config?: Partial<ServerConfig>;
  log?: (line: string) => void;
}

/**
 * For each worker count: starts a {@link WorkerPool} of that many workers and the service around
 * it, then for each client concurrency runs the load (late = after the deadline plus the longest
 * UNet segment the workers measured), and closes both.
 */
export async function runLoadGrid(opts: LoadGridOptions): Promise<LoadGridRow[]> {
  const rows: LoadGridRow[] = [];
  for (const workers of opts.workers) {
    opts.log?.(`starting ${workers} worker(s)…`);
    const pool = await WorkerPool.start({
      modelDirs: await modelFolders(opts.modelsDir),
      backend: opts.backend,
      workers,
      logger: silentLogger,
    });
    try {
      const model = pool.models()[0].name;
      for (const concurrency of opts.concurrency) {
        const graceMs = opts.graceMs ?? pool.latency.longestSegmentMs(model, true) ?? 0;
        const r = await runLoadInProcess(pool, {
          ...opts,
          concurrency,
          graceMs,
          concurrencyLimit: pool.size,
        });
        const row = {
          ...r,
          workers,
          workerMiB: pool.status().map((w) => Math.round((w.loadMemoryBytes ?? 0) / 2 ** 20)),
        };
        opts.log?.(formatLoadGrid([row]).split("\n").at(-1)!);
        rows.push(row);
      }
    } finally {
      pool.close();
    }
  }
  return rows;
}

/** A Markdown table of load rows (for the README). */
export function formatLoadGrid(rows: LoadGridRow[]): string {
  return [
    "| workers | concurrency | requests | images/s | p50 | p95 | /healthz p50 / max | late (> deadline + 1 segment) | 429 / 503 / 504 | worker MiB |",
    "|---|---|---|---|---|---|---|---|---|---|",
    ...rows.map((r) =>
      `| ${r.workers} | ${r.concurrency} | ${r.sent} | ${r.imagesPerSecond} | ${r.latency.p50Ms} ms | ${r.latency.p95Ms} ms | ${r.healthz.p50Ms} / ${r.healthz.maxMs} ms | ${r.lateAnswers} | ${r.rejected429} / ${r.rejected503} / ${r.timeouts504} | ${
        r.workerMiB.join(", ")
      } |`
    ),
  ].join("\n");
}

/** A Markdown summary of a report (for the README). */
export function formatLoadReport(r: LoadReport): string {
  const mib = r.peakRssBytes === null ? "n/a" : `${(r.peakRssBytes / 2 ** 20).toFixed(0)} MiB`;
  return [
    `| requests | concurrency | deadline | p50 | p95 | deadline met | 429 | 503 | 504 | late | /healthz p50 | predicted/actual (median) | images/s | peak RSS |`,
    `|---|---|---|---|---|---|---|---|---|---|---|---|---|---|`,
    `| ${r.sent} | ${r.concurrency} | ${r.deadlineMs} ms | ${r.latency.p50Ms} ms | ${r.latency.p95Ms} ms | ${
      (r.deadlineCompliance * 100).toFixed(1)
    }% | ${r.rejected429} | ${r.rejected503} | ${r.timeouts504} | ${r.lateAnswers} | ${r.healthz.p50Ms} ms | ${r.predictionRatio.median} | ${r.imagesPerSecond} | ${mib} |`,
  ].join("\n");
}

/** Load options from parsed `--requests --deadline-ms --time-limit-ms --steps` flags. */
export function loadOptions(flags: Record<string, string | number | boolean>) {
  return {
    requests: (flags.requests as number | undefined) ?? 20,
    deadlineMs: (flags["deadline-ms"] as number | undefined) ?? 10_000,
    timeLimitMs: (flags["time-limit-ms"] as number | undefined) ?? 120_000,
    body: flags.steps !== undefined ? { steps: flags.steps } : undefined,
  };
}

/** A comma-separated list of positive integers (`--workers 1,2`), or `fallback` when absent. */
export function intList(flag: string, raw: unknown, fallback: number[]): number[] {
  if (raw === undefined) return fallback;
  const xs = String(raw).split(",").map((x) => Number(x.trim()));
  if (xs.length === 0 || xs.some((x) => !Number.isInteger(x) || x < 1 || x > 64)) {
    throw new Error(`--${flag} must be a comma-separated list of integers 1..64, got "${raw}"`);
  }
  return xs;
}

if (import.meta.main) {
  const { parseFlags, UsageError } = await import("../lib/cli/flags.ts");
  try {
    const { flags } = parseFlags(Deno.args, {
      url: "string",
      requests: "int",
      concurrency: "int",
      "deadline-ms": "int",
      "time-limit-ms": "int",
      steps: "int",
      token: "string",
      json: "boolean",
    });
    if (flags.url === undefined) {
      throw new UsageError("--url is required (or use deno task bench load)");
    }
    const report = await runLoad({
      ...loadOptions(flags),
      concurrency: (flags.concurrency as number | undefined) ?? 4,
      url: String(flags.url),
      token: flags.token as string | undefined,
    });
    console.log(flags.json ? JSON.stringify(report, null, 2) : formatLoadReport(report));
  } catch (e) {
    console.error(`load: ${e instanceof UsageError || e instanceof Error ? e.message : e}`);
    Deno.exit(2);
  }
}

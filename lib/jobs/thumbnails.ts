/**
 * Cron thumbnails: a jobs file (`thumbnails.json`) names prompts to render on a schedule into an
 * output folder. Each image is written atomically (temporary file in the same folder, then rename),
 * and `index.json` lists exactly the images that exist, rewritten atomically after each one. A run
 * skips images that already exist with the same settings, so a run that failed midway is completed
 * by the next tick; a failure is logged and leaves no partial file behind.
 *
 * @module
 */
import { isTempFile, writeFileAtomic } from "../io/atomic.ts";
import type { GenerateRequest, ImageGenerator } from "../pipeline/types.ts";
import { errorFields, type Logger, silentLogger } from "../io/log.ts";
import { LIMITS } from "../pipeline/request.ts";
import { isFile } from "../io/fs.ts";

/** One job of the jobs file. */
export interface ThumbnailJob {
  /** Deno.cron name: letters, digits, spaces, `-` and `_`, under 64 characters. */
  name: string;
  /** Five-field cron expression (UTC), e.g. `"0 3 * * *"`. */
  cron: string;
  prompts: string[];
  /** `WxH`; must be the model's native size. */
  size: string;
  /** Steps (default: the model's default). */
  steps?: number;
  /** Output folder, relative to the working directory, without `..`. */
  outDir: string;
  /** Model name (default: the first loaded model). */
  model?: string;
  /** Seed for every prompt (default: derived from the prompt, so images are stable). */
  seed?: number;
}

/** One image in `index.json`. */
export interface ThumbnailEntry {
  file: string;
  prompt: string;
  seed: number;
  steps: number;
  model: string;
  size: string;
  schedule: string | null;
  /** ISO time the image was written. */
  created: string;
}

/** `index.json` of an output folder. */
export interface ThumbnailIndex {
  format: "thumbnails-index/1";
  job: string;
  updated: string;
  images: ThumbnailEntry[];
}

/** What one run did. */
export interface ThumbnailRunReport {
  job: string;
  written: string[];
  skipped: string[];
  failed: { prompt: string; error: string }[];
}

/** A bad jobs file; `message` names the field (e.g. `jobs[1].cron`). */
export class JobsFileError extends Error {
  override name = "JobsFileError";
}

/** Name of the index file in each output folder. */
export const INDEX_FILE = "index.json";
const MAX_PROMPTS = 100;
const MAX_PROMPT_CHARS = 1000;

const CRON_RANGES: [number, number][] = [[0, 59], [0, 23], [1, 31], [1, 12], [0, 7]];
const CRON_FIELDS = ["minute", "hour", "day of month", "month", "day of week"];

/** Why a five-field cron expression is invalid, or null when it is valid. */
export function cronError(expr: string): string | null {
  const fields = expr.trim().split(/\s+/);
  if (fields.length !== 5) {
    return `needs 5 fields (minute hour day month weekday), got ${fields.length}`;
  }
  for (let i = 0; i < 5; i++) {
    const [lo, hi] = CRON_RANGES[i];
    for (const item of fields[i].split(",")) {
      const m = /^(\*|(\d+)(?:-(\d+))?)(?:\/(\d+))?$/.exec(item);
      if (!m) return `bad ${CRON_FIELDS[i]} field "${fields[i]}"`;
      const nums = [m[2], m[3]].filter((x) => x !== undefined).map(Number);
      if (nums.some((n) => n < lo || n > hi)) {
        return `${CRON_FIELDS[i]} must be within ${lo}-${hi}, got "${item}"`;
      }
      if (nums.length === 2 && nums[0] > nums[1]) {
        return `empty range "${item}" in ${CRON_FIELDS[i]}`;
      }
      if (m[4] !== undefined && Number(m[4]) === 0) return `step 0 in ${CRON_FIELDS[i]}`;
    }
  }
  return null;
}

/** Validates a parsed jobs file (`{jobs: [...]}`), throwing `JobsFileError` naming the field. */
export function parseThumbnailJobs(value: unknown): ThumbnailJob[] {
  const fail = (path: string, msg: string): never => {
    throw new JobsFileError(`${path}: ${msg}`);
  };
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    fail("(root)", 'must be an object like {"jobs": [...]}');
  }
  const root = value as Record<string, unknown>;
  for (const k of Object.keys(root)) if (k !== "jobs") fail(k, "unknown field");
  if (!Array.isArray(root.jobs)) fail("jobs", "must be an array");
  const jobs: ThumbnailJob[] = [];
  const names = new Set<string>();
  const allowed = new Set(["name", "cron", "prompts", "size", "steps", "outDir", "model", "seed"]);
  (root.jobs as unknown[]).forEach((raw, i) => {
    const at = `jobs[${i}]`;
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
      fail(at, "must be an object");
    }
    const j = raw as Record<string, unknown>;
    for (const k of Object.keys(j)) if (!allowed.has(k)) fail(`${at}.${k}`, "unknown field");
    const s = (k: string) => {
      if (typeof j[k] !== "string" || (j[k] as string).trim() === "") {
        fail(`${at}.${k}`, "must be a non-empty string");
      }
      return j[k] as string;
    };
    const name = s("name");
    if (!/^[A-Za-z0-9 _-]{1,63}$/.test(name)) {
      fail(`${at}.name`, "must be 1-63 letters, digits, spaces, '-' or '_'");
    }
    if (names.has(name)) fail(`${at}.name`, `duplicate job name "${name}"`);
    names.add(name);
    const cron = s("cron");
    const ce = cronError(cron);
    if (ce) fail(`${at}.cron`, ce);
    if (!Array.isArray(j.prompts) || j.prompts.length === 0) {
      fail(`${at}.prompts`, "must be a non-empty array of strings");
    }
    const prompts = j.prompts as unknown[];
    if (prompts.length > MAX_PROMPTS) fail(`${at}.prompts`, `at most ${MAX_PROMPTS} prompts`);
    prompts.forEach((p, k) => {
      if (typeof p !== "string" || p.trim() === "") {
        fail(`${at}.prompts[${k}]`, "must be a non-empty string");
      }
      if ([...(p as string)].length > MAX_PROMPT_CHARS) {
        fail(`${at}.prompts[${k}]`, `longer than ${MAX_PROMPT_CHARS} characters`);
      }
    });
    if (new Set(prompts).size !== prompts.length) fail(`${at}.prompts`, "has duplicates");
    const size = s("size");
    if (!/^\d{1,5}x\d{1,5}$/.test(size)) {
      fail(`${at}.size`, `must look like "64x64", got "${size}"`);
    }
    const outDir = s("outDir");
    if (
      outDir.startsWith("/") || /^[A-Za-z]:/.test(outDir) || outDir.split(/[\\/]/).includes("..")
    ) {
      fail(`${at}.outDir`, "must be a relative path without '..'");
    }
    const job: ThumbnailJob = { name, cron, prompts: prompts as string[], size, outDir };
    if (j.steps !== undefined) {
      if (
        !Number.isInteger(j.steps) || (j.steps as number) < LIMITS.stepsMin ||
        (j.steps as number) > LIMITS.stepsMax
      ) {
        fail(`${at}.steps`, `must be an integer from ${LIMITS.stepsMin} to ${LIMITS.stepsMax}`);
      }
      job.steps = j.steps as number;
    }
    if (j.model !== undefined) job.model = s("model");
    if (j.seed !== undefined) {
      if (!Number.isInteger(j.seed) || (j.seed as number) < 0 || (j.seed as number) > 0xffffffff) {
        fail(`${at}.seed`, "must be an integer from 0 to 4294967295");
      }
      job.seed = j.seed as number;
    }
    jobs.push(job);
  });
  return jobs;
}

/** Reads and validates a jobs file; errors name the file and the field. */
export async function loadThumbnailJobs(path: string): Promise<ThumbnailJob[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new JobsFileError(`${path}: cannot read (${e instanceof Error ? e.message : e})`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new JobsFileError(`${path}: not valid JSON`);
  }
  try {
    return parseThumbnailJobs(value);
  } catch (e) {
    if (e instanceof JobsFileError) throw new JobsFileError(`${path}: ${e.message}`);
    throw e;
  }
}

/** FNV-1a hash of a string (32-bit): stable seeds and file names for prompts. */
export function promptHash(text: string): number {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(text)) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** The file name of a prompt's image: a readable slug plus a hash that keeps names distinct. */
export function thumbnailFileName(prompt: string): string {
  const slug = prompt.toLowerCase().normalize("NFKD").replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "").slice(0, 60).replace(/-+$/, "") || "image";
  return `${slug}-${promptHash(prompt).toString(16).padStart(8, "0")}.png`;
}

function join(dir: string, file: string): string {
  return dir.endsWith("/") ? dir + file : `${dir}/${file}`;
}

/** Reads an output folder's index, keeping only entries whose file exists. */
export async function readThumbnailIndex(outDir: string, job: string): Promise<ThumbnailIndex> {
  const empty: ThumbnailIndex = { format: "thumbnails-index/1", job, updated: "", images: [] };
  let raw: unknown;
  try {
    raw = JSON.parse(await Deno.readTextFile(join(outDir, INDEX_FILE)));
  } catch {
    return empty;
  }
  const images = (raw as Partial<ThumbnailIndex>)?.images;
  if (!Array.isArray(images)) return empty;
  const kept: ThumbnailEntry[] = [];
  for (const e of images) {
    if (
      e && typeof e.file === "string" && !e.file.includes("/") && typeof e.prompt === "string" &&
      await isFile(join(outDir, e.file))
    ) kept.push(e);
  }
  return { ...empty, updated: String((raw as ThumbnailIndex).updated ?? ""), images: kept };
}

/** Options of a run. */
export interface RunOptions {
  logger?: Logger;
  signal?: AbortSignal;
  now?: () => Date;
}

/**
 * Runs a job once: renders every prompt whose image is missing or was made with other settings,
 * writing each image and then the index atomically. Failures are logged and reported, never thrown
 * (except for a job that cannot run at all: unknown model or size).
 */
export async function runThumbnailJob(
  job: ThumbnailJob,
  generator: ImageGenerator,
  opts: RunOptions = {},
): Promise<ThumbnailRunReport> {
  const log = opts.logger ?? silentLogger;
  const now = opts.now ?? (() => new Date());
  const models = generator.models();
  const model = job.model === undefined ? models[0] : models.find((m) => m.name === job.model);
  if (!model) throw new JobsFileError(`job ${job.name}: unknown model "${job.model}"`);
  const native = `${model.width}x${model.height}`;
  if (job.size !== native) {
    throw new JobsFileError(
      `job ${job.name}: size ${job.size} is not supported by ${model.name} (${native})`,
    );
  }
  const steps = job.steps ?? model.defaults.steps;
  await Deno.mkdir(job.outDir, { recursive: true });
  for await (const e of Deno.readDir(job.outDir)) {
    if (e.isFile && isTempFile(e.name)) {
      await Deno.remove(join(job.outDir, e.name)).catch(() => {});
    }
  }
  const index = await readThumbnailIndex(job.outDir, job.name);
  const report: ThumbnailRunReport = { job: job.name, written: [], skipped: [], failed: [] };
  const saveIndex = async () => {
    index.updated = now().toISOString();
    index.images.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
    await writeFileAtomic(
      join(job.outDir, INDEX_FILE),
      new TextEncoder().encode(JSON.stringify(index, null, 2) + "\n"),
    );
  };
  for (const prompt of job.prompts) {
    opts.signal?.throwIfAborted();
    const file = thumbnailFileName(prompt);
    const seed = job.seed ?? promptHash(prompt);
    const have = index.images.find((e) => e.file === file);
    if (
      have && have.prompt === prompt && have.seed === seed && have.steps === steps &&
      have.model === model.name && have.size === native
    ) {
      report.skipped.push(file);
      continue;
    }
    const req: GenerateRequest = {
      prompt,
      negativePrompt: "",
      seed,
      steps,
      guidanceScale: model.defaults.guidanceScale,
      solver: model.defaults.solver,
      cache: "auto",
    };
    try {
      const r = await generator.generate(model.name, req, { signal: opts.signal });
      await writeFileAtomic(join(job.outDir, file), r.png);
      index.images = index.images.filter((e) => e.file !== file);
      index.images.push({
        file,
        prompt,
        seed: r.seed,
        steps: r.steps,
        model: model.name,
        size: native,
        schedule: r.schedule,
        created: now().toISOString(),
      });
      await saveIndex();
      report.written.push(file);
    } catch (e) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      const msg = e instanceof Error ? e.message : String(e);
      report.failed.push({ prompt, error: msg });
      log.error("thumbnail failed", {
        job: job.name,
        prompt: prompt.slice(0, 200),
        ...errorFields(e),
      });
    }
  }
  if (report.written.length === 0 && !(await isFile(join(job.outDir, INDEX_FILE)))) {
    await saveIndex();
  }
  log[report.failed.length ? "warn" : "info"]("thumbnail job done", {
    job: job.name,
    written: report.written.length,
    skipped: report.skipped.length,
    failed: report.failed.length,
  });
  return report;
}

/** The `Deno.cron` signature the registration uses (injectable for tests). */
export type CronFn = (
  name: string,
  schedule: string,
  handler: () => Promise<void>,
) => Promise<void>;

/**
 * Registers one cron per job; a tick that finds the previous run of the same job still going skips.
 * A run's failures are logged (and its missing images retried on the next tick).
 */
export function registerThumbnailCrons(
  jobs: ThumbnailJob[],
  generator: ImageGenerator,
  opts: { logger?: Logger; cron?: CronFn } = {},
): Promise<void>[] {
  const log = opts.logger ?? silentLogger;
  const cron: CronFn = opts.cron ?? ((n, s, h) => Deno.cron(n, s, h));
  return jobs.map((job) => {
    let running = false;
    return cron(job.name, job.cron, async () => {
      if (running) {
        log.warn("thumbnail job still running; tick skipped", { job: job.name });
        return;
      }
      running = true;
      try {
        await runThumbnailJob(job, generator, { logger: log });
      } catch (e) {
        log.error("thumbnail job failed", { job: job.name, ...errorFields(e) });
      } finally {
        running = false;
      }
    });
  });
}

/** Runs every job once, one after another (the `deno task thumbnails` command). */
export async function runAllThumbnailJobs(
  jobs: ThumbnailJob[],
  generator: ImageGenerator,
  opts: RunOptions = {},
): Promise<ThumbnailRunReport[]> {
  const reports: ThumbnailRunReport[] = [];
  for (const job of jobs) {
    try {
      reports.push(await runThumbnailJob(job, generator, opts));
    } catch (e) {
      if (opts.signal?.aborted) throw e;
      const msg = e instanceof Error ? e.message : String(e);
      (opts.logger ?? silentLogger).error("thumbnail job failed", { job: job.name, error: msg });
      reports.push({
        job: job.name,
        written: [],
        skipped: [],
        failed: [{ prompt: "*", error: msg }],
      });
    }
  }
  return reports;
}

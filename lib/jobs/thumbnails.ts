/**
 * Cron thumbnails: a jobs file (`thumbnails.json`) names prompts to render on a schedule into an
 * output folder. Each image is written atomically (temporary file in the same folder, then rename),
 * and `index.json` lists exactly the images that exist, with each file's size and sha256, rewritten
 * atomically after each one. A run skips images that exist intact with the same settings (a file
 * cut short or changed by hand is made again), so a run that failed midway is completed by the
 * next tick; a failure is logged and leaves no partial file behind.
 *
 * A job that can never run is found at start-up, before any model loads, with an error that names
 * the file and the job: a cron expression `Deno.cron` refuses or would crash on
 * ({@link parseThumbnailJobs}, with `./cron.ts`), an output folder outside the write grant or
 * unwritable ({@link checkJobOutputs}), an unknown model, a size the model does not make, or a
 * prompt with no token the model knows ({@link checkJobModels}). Runs, failures and skipped ticks
 * are counted in a {@link JobStats} for `/metrics`.
 *
 * Day-of-week numbers follow Deno.cron: 1 = Sunday … 7 = Saturday (0 is refused); names (MON-FRI)
 * avoid the surprise.
 *
 * @module
 */
import { isTempFile, TEMP_PREFIX, writeFileAtomic } from "../io/atomic.ts";
import { statOrUndefined } from "../io/fs.ts";
import { sha256Bytes, sha256File } from "../io/hash.ts";
import { errorFields, type Logger, silentLogger } from "../io/log.ts";
import { type ModelFolder, readModelFolder } from "../model/folder.ts";
import { assertPromptUsable, PromptError, truncationWarning } from "../model/prompt.ts";
import { parseFields, Prompt, Seed, Steps } from "../pipeline/request.ts";
import { z } from "zod";
import type { GenerateRequest, ImageGenerator } from "../pipeline/types.ts";
import { cronError } from "./cron.ts";

/** One job of the jobs file. */
export interface ThumbnailJob {
  /** Deno.cron name: letters, digits, spaces, `-` and `_`, under 64 characters. */
  name: string;
  /** Five-field cron expression (UTC) as Deno.cron reads it, e.g. `"0 3 * * *"` (see ./cron.ts). */
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
  /** Size in bytes and sha256 (hex) of the file as written; a file that differs is made again. */
  bytes: number;
  sha256: string;
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

/** A bad jobs file; `message` names the file, the job and the field. */
export class JobsFileError extends Error {
  override name = "JobsFileError";
}

/** Name of the index file in each output folder. */
export const INDEX_FILE = "index.json";
const MAX_PROMPTS = 100;

/** How messages name a job: `job "nightly" (jobs[0])`. */
function jobLabel(i: number, name?: string): string {
  return name === undefined ? `jobs[${i}]` : `job ${JSON.stringify(name)} (jobs[${i}])`;
}

/** A non-empty string field of the jobs file. */
const nonEmpty = z.string({
  error: (i) => i.input === undefined ? "is required" : "must be a non-empty string",
}).refine((x) => x.trim() !== "", { error: "must be a non-empty string" });

/** One job as the jobs file writes it; prompts, steps and seed are the request's own fields. */
const JobSchema = z.strictObject({
  name: nonEmpty.refine((x) => /^[A-Za-z0-9 _-]{1,63}$/.test(x), {
    error: "must be 1-63 letters, digits, spaces, '-' or '_'",
  }),
  cron: nonEmpty,
  prompts: z.array(Prompt, { error: "must be a non-empty array of strings" })
    .min(1, { error: "must be a non-empty array of strings" })
    .max(MAX_PROMPTS, { error: `at most ${MAX_PROMPTS} prompts` })
    .refine((ps) => new Set(ps).size === ps.length, { error: "has duplicates" }),
  size: nonEmpty.refine((x) => /^\d{1,5}x\d{1,5}$/.test(x), {
    error: (i) => `must look like "64x64", got ${JSON.stringify(i.input)}`,
  }),
  steps: Steps.optional(),
  outDir: nonEmpty.refine(
    (d) => !(d.startsWith("/") || /^[A-Za-z]:/.test(d) || d.split(/[\\/]/).includes("..")),
    { error: "must be a relative path without '..'" },
  ),
  model: nonEmpty.optional(),
  seed: Seed.optional(),
});

/** The jobs file: `{"jobs": [...]}`. */
const JobsFileSchema = z.strictObject({ jobs: z.array(JobSchema, { error: "must be an array" }) }, {
  error: 'must be an object like {"jobs": [...]}',
});

/**
 * Validates a parsed jobs file (`{jobs: [...]}`), throwing `JobsFileError` naming the job and
 * field. Cron expressions are checked with Deno.cron's own rules, including expressions that never
 * fire (on which Deno.cron crashes); `now` is where that search starts.
 */
export function parseThumbnailJobs(value: unknown, now: Date = new Date()): ThumbnailJob[] {
  const r = parseFields(JobsFileSchema, value);
  if (!r.ok) {
    // `jobs[2].prompts[0] must …` → `job "nightly" (jobs[2]).prompts[0] must …`
    const m = /^jobs\[(\d+)\]/.exec(r.problem.path);
    const name = m ? (value as { jobs: { name?: unknown }[] }).jobs[Number(m[1])]?.name : undefined;
    const badName = r.problem.path === `${m?.[0]}.name`;
    const label = m && typeof name === "string" && !badName ? jobLabel(Number(m[1]), name) : m?.[0];
    const message = r.problem.code === "unknown_field"
      ? `${r.problem.path}: unknown field`
      : r.problem.path === ""
      ? `(root): ${r.problem.message}`
      // parseFields writes `${path} ${message}`: the path gets its colon
      : `${r.problem.path}: ${r.problem.message.slice(r.problem.path.length + 1)}`;
    throw new JobsFileError(label && m ? message.replace(m[0], label) : message);
  }
  const names = new Set<string>();
  r.value.jobs.forEach((job, i) => {
    if (names.has(job.name)) {
      throw new JobsFileError(`${jobLabel(i)}.name: duplicate job name "${job.name}"`);
    }
    names.add(job.name);
    const ce = cronError(job.cron, now);
    if (ce) {
      throw new JobsFileError(`${jobLabel(i, job.name)}.cron: ${JSON.stringify(job.cron)} ${ce}`);
    }
  });
  return r.value.jobs;
}

/** Reads and validates a jobs file; errors name the file, the job and the field. */
export async function loadThumbnailJobs(
  path: string,
  now: Date = new Date(),
): Promise<ThumbnailJob[]> {
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
    return parseThumbnailJobs(value, now);
  } catch (e) {
    if (e instanceof JobsFileError) throw new JobsFileError(`${path}: ${e.message}`);
    throw e;
  }
}

/**
 * Checks at start-up that every job can write its output folder: inside this process's write
 * grant (asked with `Deno.permissions.query`, so no permission prompt appears) and writable
 * (the folder is created and a probe file written and removed). Throws `JobsFileError` naming the
 * file, the job and what to do. `file` prefixes the messages (the jobs file's path).
 */
export async function checkJobOutputs(jobs: ThumbnailJob[], file = "thumbnails"): Promise<void> {
  for (const [i, job] of jobs.entries()) {
    const at = `${file}: ${jobLabel(i, job.name)}.outDir ${JSON.stringify(job.outDir)}`;
    const { state } = await Deno.permissions.query({ name: "write", path: job.outDir });
    if (state !== "granted") {
      throw new JobsFileError(
        `${at}: this process may not write there (Deno's --allow-write grant does not include ` +
          "it; `deno task start` and `deno task thumbnails` grant ./thumbnails only): put the " +
          "job's outDir under thumbnails/, or run with a write grant that includes it",
      );
    }
    const probe = `${job.outDir.replace(/\/+$/, "")}/${TEMP_PREFIX}write-check.${
      crypto.randomUUID().slice(0, 8)
    }.tmp`;
    try {
      await Deno.mkdir(job.outDir, { recursive: true });
      await Deno.writeFile(probe, new Uint8Array());
      await Deno.remove(probe);
    } catch (e) {
      await Deno.remove(probe).catch(() => {});
      throw new JobsFileError(`${at}: cannot write there (${(e as Error).message})`);
    }
  }
}

/**
 * What the start-up check needs to know of a model (its name, the side in pixels of the images it
 * makes, its tokenizer): part of the {@link ModelFolder} `readModelFolder` reads, no sessions.
 */
export type JobModel = Pick<ModelFolder, "name" | "imageSize" | "tokenizer">;

/**
 * Checks each job against the models that will serve it (`models[0]` is the default): the model
 * exists, `size` is its native size, and every prompt has a token the model knows (see
 * lib/model/prompt.ts). Throws `JobsFileError` naming the file, the job and the field; returns one
 * warning per prompt longer than the text encoder reads (its dropped words are stated).
 */
export function checkJobModels(
  jobs: ThumbnailJob[],
  models: JobModel[],
  file = "thumbnails",
): string[] {
  const warnings: string[] = [];
  for (const [i, job] of jobs.entries()) {
    const at = `${file}: ${jobLabel(i, job.name)}`;
    const model = job.model === undefined ? models[0] : models.find((m) => m.name === job.model);
    if (!model) {
      throw new JobsFileError(
        `${at}.model: unknown model "${job.model}" (models: ${
          models.map((m) => m.name).join(", ") || "none"
        })`,
      );
    }
    const native = `${model.imageSize}x${model.imageSize}`;
    if (job.size !== native) {
      throw new JobsFileError(`${at}.size: ${job.size} is not ${model.name}'s size (${native})`);
    }
    job.prompts.forEach((prompt, k) => {
      const field = `prompts[${k}]`;
      try {
        const warning = truncationWarning(
          field,
          assertPromptUsable(model.tokenizer, prompt, field).report,
        );
        if (warning) warnings.push(`${at}.${warning}`);
      } catch (e) {
        if (e instanceof PromptError) throw new JobsFileError(`${at}.${e.message}`);
        throw e;
      }
    });
  }
  return warnings;
}

/**
 * Everything start-up checks of a jobs file before serving, in one call: reads and validates it
 * ({@link loadThumbnailJobs}), checks the output folders ({@link checkJobOutputs}) and, given the
 * model folders that will be served (the default first; paths, or folders already read, which are
 * not read again), the models, sizes and prompts ({@link checkJobModels}). Returns the jobs and the
 * truncation warnings; throws `JobsFileError`.
 */
export async function checkThumbnailJobs(
  file: string,
  models: (string | JobModel)[],
): Promise<{ jobs: ThumbnailJob[]; warnings: string[] }> {
  const jobs = await loadThumbnailJobs(file);
  await checkJobOutputs(jobs, file);
  const read = await Promise.all(models.map((m) => typeof m === "string" ? readModelFolder(m) : m));
  return { jobs, warnings: checkJobModels(jobs, read, file) };
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

/** Whether the file is exactly the one the entry records (same size, same sha256). */
async function intact(dir: string, e: Partial<ThumbnailEntry>): Promise<boolean> {
  if (typeof e.sha256 !== "string" || typeof e.bytes !== "number") return false;
  const path = join(dir, e.file!);
  const info = await statOrUndefined(path);
  return info?.isFile === true && info.size === e.bytes && await sha256File(path) === e.sha256;
}

/**
 * Reads an output folder's index, keeping only entries whose file exists intact (size and sha256
 * as recorded; entries without them, from older versions, count as missing).
 */
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
      await intact(outDir, e)
    ) kept.push(e);
  }
  return { ...empty, updated: String((raw as ThumbnailIndex).updated ?? ""), images: kept };
}

/** Counts of one job's runs since start-up. */
export interface JobCounters {
  /** Runs that finished with every image in place. */
  runsOk: number;
  /** Runs where an image failed, or the job could not run at all. */
  runsFailed: number;
  /** Cron ticks skipped because the previous run of the job was still going. */
  ticksSkipped: number;
  imagesWritten: number;
  imagesSkipped: number;
  imagesFailed: number;
  /** ISO time the last run ended, and its error (first failure) when it failed. */
  lastRunEnd?: string;
  lastError?: string;
}

/**
 * Job runs and failures, counted for `/metrics` (pass one to {@link registerThumbnailCrons} and
 * {@link runThumbnailJob} as `stats`); {@link JobStats.prometheus} renders them.
 */
export class JobStats {
  readonly jobs = new Map<string, JobCounters>();

  /** The counters of `job` (created at zero). */
  of(job: string): JobCounters {
    let c = this.jobs.get(job);
    if (!c) {
      c = {
        runsOk: 0,
        runsFailed: 0,
        ticksSkipped: 0,
        imagesWritten: 0,
        imagesSkipped: 0,
        imagesFailed: 0,
      };
      this.jobs.set(job, c);
    }
    return c;
  }

  /** Records a finished run (its report) or a run that could not run (its error). */
  recordRun(job: string, outcome: ThumbnailRunReport | Error, end: Date): void {
    const c = this.of(job);
    c.lastRunEnd = end.toISOString();
    if (outcome instanceof Error) {
      c.runsFailed++;
      c.lastError = outcome.message;
      return;
    }
    c.imagesWritten += outcome.written.length;
    c.imagesSkipped += outcome.skipped.length;
    c.imagesFailed += outcome.failed.length;
    if (outcome.failed.length) {
      c.runsFailed++;
      c.lastError = outcome.failed[0].error;
    } else {
      c.runsOk++;
      delete c.lastError;
    }
  }

  /**
   * Prometheus text exposition (version 0.0.4) of the counters: `imagegen_thumbnail_runs_total`
   * {job, outcome="ok"|"failed"}, `imagegen_thumbnail_images_total` {job,
   * result="written"|"skipped"|"failed"}, `imagegen_thumbnail_ticks_skipped_total` {job} and
   * `imagegen_thumbnail_last_run_ok` {job} (1 or 0; absent before the first run). Job names are
   * letters, digits, spaces, `-`, `_`, so they need no escaping.
   */
  prometheus(): string {
    const out: string[] = [];
    const head = (name: string, type: string, help: string) =>
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    head("imagegen_thumbnail_runs_total", "counter", "Thumbnail job runs by outcome.");
    for (const [job, c] of this.jobs) {
      out.push(`imagegen_thumbnail_runs_total{job="${job}",outcome="ok"} ${c.runsOk}`);
      out.push(`imagegen_thumbnail_runs_total{job="${job}",outcome="failed"} ${c.runsFailed}`);
    }
    head("imagegen_thumbnail_images_total", "counter", "Thumbnail images by result.");
    for (const [job, c] of this.jobs) {
      for (
        const [result, n] of [
          ["written", c.imagesWritten],
          ["skipped", c.imagesSkipped],
          ["failed", c.imagesFailed],
        ] as const
      ) out.push(`imagegen_thumbnail_images_total{job="${job}",result="${result}"} ${n}`);
    }
    head(
      "imagegen_thumbnail_ticks_skipped_total",
      "counter",
      "Cron ticks skipped because the job's previous run was still going.",
    );
    for (const [job, c] of this.jobs) {
      out.push(`imagegen_thumbnail_ticks_skipped_total{job="${job}"} ${c.ticksSkipped}`);
    }
    head("imagegen_thumbnail_last_run_ok", "gauge", "1 when the job's last run wrote every image.");
    for (const [job, c] of this.jobs) {
      if (c.lastRunEnd) {
        out.push(`imagegen_thumbnail_last_run_ok{job="${job}"} ${c.lastError ? 0 : 1}`);
      }
    }
    return out.join("\n") + "\n";
  }
}

/** Options of a run. */
export interface RunOptions {
  logger?: Logger;
  signal?: AbortSignal;
  now?: () => Date;
  /** Counts the run (default: not counted). */
  stats?: JobStats;
}

/**
 * Runs a job once: renders every prompt whose image is missing, damaged or was made with other
 * settings, writing each image and then the index atomically. Failures are logged and reported,
 * never thrown (except for a job that cannot run at all: unknown model or size, output folder
 * not writable). Counted in `opts.stats` either way.
 */
export async function runThumbnailJob(
  job: ThumbnailJob,
  generator: ImageGenerator,
  opts: RunOptions = {},
): Promise<ThumbnailRunReport> {
  const now = opts.now ?? (() => new Date());
  let report: ThumbnailRunReport;
  try {
    report = await renderJob(job, generator, opts, now);
  } catch (e) {
    if (!opts.signal?.aborted) {
      opts.stats?.recordRun(job.name, e instanceof Error ? e : new Error(String(e)), now());
    }
    throw e;
  }
  opts.stats?.recordRun(job.name, report, now());
  return report;
}

async function renderJob(
  job: ThumbnailJob,
  generator: ImageGenerator,
  opts: RunOptions,
  now: () => Date,
): Promise<ThumbnailRunReport> {
  const log = opts.logger ?? silentLogger;
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
        bytes: r.png.length,
        sha256: sha256Bytes(r.png),
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
  if (report.written.length === 0 && !(await statOrUndefined(join(job.outDir, INDEX_FILE)))) {
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
 * A run's failures are logged (and its missing images retried on the next tick) and counted in
 * `opts.stats` with the skipped ticks.
 */
export function registerThumbnailCrons(
  jobs: ThumbnailJob[],
  generator: ImageGenerator,
  opts: { logger?: Logger; cron?: CronFn; stats?: JobStats } = {},
): Promise<void>[] {
  const log = opts.logger ?? silentLogger;
  const cron: CronFn = opts.cron ?? ((n, s, h) => Deno.cron(n, s, h));
  return jobs.map((job) => {
    opts.stats?.of(job.name); // listed in /metrics from start-up, at zero
    let running = false;
    return cron(job.name, job.cron, async () => {
      if (running) {
        log.warn("thumbnail job still running; tick skipped", { job: job.name });
        if (opts.stats) opts.stats.of(job.name).ticksSkipped++;
        return;
      }
      running = true;
      try {
        await runThumbnailJob(job, generator, { logger: log, stats: opts.stats });
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

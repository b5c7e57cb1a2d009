/**
 * `deno task generate`: prompt → PNG from the command line (`--help` prints {@link USAGE}).
 *
 *   deno task generate --prompt "red apple" --out apple.png [--negative TEXT] [--seed N]
 *     [--steps N] [--solver ddim|dpm|euler] [--guidance X] [--cache none|auto|NAME|FILE]
 *     [--backend auto|wasm|webgpu] [--model NAME|FOLDER]
 *   deno task generate --batch prompts.jsonl --out-dir DIR [--batch-size N] [options as above]
 *
 * A batch file has one JSON object per line: `id` (a safe file name, unique), `prompt`, and
 * optionally the HTTP API's request fields `negative_prompt`, `seed`, `steps`, `solver`,
 * `guidance_scale`, `cache` (the flags give their defaults); it writes `DIR/<id>.png` (examples/prompts.jsonl is one). Lines that share steps,
 * solver, guidance and cache run together in one denoising loop (`--batch-size` at a time; the
 * images equal one-at-a-time runs). Every image is written to a temporary file and renamed, so a
 * failed or interrupted image leaves no partial file. Before the model loads, the model folder is
 * checked against its manifest and every prompt against its tokenizer: a prompt with no token the
 * model knows is refused (exit 2), one longer than the text encoder reads gets a warning naming
 * the ignored words. Bad flags or lines: a message naming the flag or line and field, exit 2.
 * Exit 1 when an image or the model failed, 130 when interrupted.
 *
 * @module
 */
import {
  flagProblem,
  noPositionals,
  parseFlags,
  requestFields,
  UsageError,
  usageMessage,
} from "./flags.ts";
import { UnknownScheduleError } from "../cache/registry.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import { isFile } from "../io/fs.ts";
import { readModelFolder } from "../model/folder.ts";
import { verifyModelFolder } from "../model/manifest.ts";
import {
  analyzePrompt,
  assertPromptUsable,
  PromptError,
  truncationWarning,
} from "../model/prompt.ts";
import type { Tokenizer } from "../model/tokenizer.ts";
import { Pipeline } from "../pipeline/pipeline.ts";
import {
  DEFAULTS,
  FieldError,
  ImageRequestFields,
  LIMITS,
  resolveRequest,
  SOLVERS,
} from "../pipeline/request.ts";
import { registryCacheName } from "../pipeline/service.ts";
import type { GenerateRequest, GenerateResult } from "../pipeline/types.ts";
import { BACKEND_CHOICES, type BackendChoice } from "../runtime/backend.ts";

/** The folder of the shipped models; `--model NAME` means `<this>/NAME`. */
export const MODELS_ROOT = new URL("../../models", import.meta.url).pathname;

/** The default `--model`. */
export const DEFAULT_MODEL_DIR = `${MODELS_ROOT}/emoji-ldm`;

/** Most images one denoising loop takes with `--batch-size`. */
export const MAX_BATCH_SIZE = 16;

/** A batch id: a plain file name (letters, digits, `.`, `_`, `-`; starts with a letter or digit). */
const SAFE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

const FLAGS = {
  prompt: "string",
  out: "string",
  negative: "string",
  seed: "int",
  steps: "int",
  solver: "string",
  guidance: "number",
  cache: "string",
  backend: "string",
  model: "string",
  batch: "string",
  "out-dir": "string",
  "batch-size": "int",
} as const;

/** Batch-line keys: the request fields of the HTTP API (lib/pipeline/request.ts), plus `id`. */
const LINE_KEYS = ["id", ...Object.keys(ImageRequestFields)];

/** Default `--batch-size`. */
const DEFAULT_BATCH_SIZE = 4;

/** The `--help` text: every flag with its range and default. */
export const USAGE = `usage:
  deno task generate --prompt TEXT --out FILE.png [options]
  deno task generate --batch FILE.jsonl --out-dir DIR [--batch-size N] [options]

options (default in brackets):
  --negative TEXT      negative prompt [none]
  --seed N             noise seed, 0..${LIMITS.seedMax} [random]
  --steps N            denoising steps, ${LIMITS.stepsMin}..${LIMITS.stepsMax} [${DEFAULTS.steps}]
  --solver NAME        ${SOLVERS.join(", ")} [${DEFAULTS.solver}]
  --guidance X         classifier-free guidance scale, ${LIMITS.guidanceMin}..${LIMITS.guidanceMax} [${DEFAULTS.guidanceScale}]
  --cache VALUE        none; auto: for this solver and steps, the plan with the lowest FD
                       measured on the model's frontier, no cache or a shipped schedule (no
                       cache where none is measured); a schedule name or id; or a schedule
                       file [${DEFAULTS.cache}]
  --backend NAME       ${BACKEND_CHOICES.join(", ")} [auto]
  --model NAME|DIR     a model under models/, or a model folder [emoji-ldm]
  --batch-size N       images per denoising loop with --batch, 1..${MAX_BATCH_SIZE} [${DEFAULT_BATCH_SIZE}]
  -h, --help           this text

A batch file has one JSON object per line, e.g. {"id": "apple", "prompt": "google red apple"},
with the fields ${LINE_KEYS.join(", ")};
the flags give the defaults (--negative for negative_prompt, --guidance for guidance_scale;
a sample: examples/prompts.jsonl).
Prompts count at most ${LIMITS.promptMaxChars} characters (Unicode code points). The text encoder
reads a fixed number of tokens (emoji-ldm: 14 words): later words are ignored, with a warning;
a prompt with no word the model knows is refused.`;

/** One image to make: the resolved request and where it goes. */
export interface ImageJob {
  /** Output file. */
  out: string;
  /** The output file as the user named it (for messages). */
  label: string;
  req: GenerateRequest;
  /** 1-based line of the batch file (absent for `--prompt`). */
  line?: number;
  id?: string;
}

/** A parsed command line. */
export interface GeneratePlan {
  modelDir: string;
  backend: BackendChoice;
  batchSize: number;
  jobs: ImageJob[];
  /** The batch file and the output folder, when `--batch` was given. */
  batchFile?: string;
  outDir?: string;
}

/** Dependencies and I/O of {@link generateCommand} (all optional). */
export interface GenerateCommandOptions {
  /** Stops the run; images not yet written are not written. */
  signal?: AbortSignal;
  /** Loads a model (default `Pipeline.load`); tests pass a shared one. */
  load?: (modelDir: string, backend: BackendChoice) => Promise<Pipeline>;
  /** Checks the model folder before anything loads (default `verifyModelFolder`). */
  verify?: (modelDir: string) => Promise<unknown>;
  /** Where relative paths are resolved (default the process's working directory). */
  cwd?: string;
  /** Standard output and error lines (default console.log / console.error). */
  print?: (line: string) => void;
  printError?: (line: string) => void;
}

function resolvePath(cwd: string, p: string): string {
  return p.startsWith("/") ? p : `${cwd.replace(/\/+$/, "")}/${p}`;
}

/** The request fields the flags set but the prompt (the defaults of batch lines). */
function flagInput(flags: Record<string, string | number | boolean>): Record<string, unknown> {
  const { prompt: _, ...input } = requestFields(flags);
  return input;
}

/**
 * Parses a batch file's text: one JSON object per non-blank line. Throws a UsageError naming the
 * file, line and field (`prompts.jsonl line 3: steps must be in 1..100`).
 */
export function parseBatchLines(
  text: string,
  file: string,
  defaults: Record<string, unknown> = {},
): { line: number; id: string; req: GenerateRequest }[] {
  const out: { line: number; id: string; req: GenerateRequest }[] = [];
  const seen = new Map<string, number>();
  text.split("\n").forEach((raw, i) => {
    const line = i + 1;
    const where = `${file} line ${line}`;
    if (!raw.trim()) return;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      throw new UsageError(`${where}: not valid JSON`);
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new UsageError(`${where}: must be a JSON object`);
    }
    const obj = value as Record<string, unknown>;
    for (const k of Object.keys(obj)) {
      if (!LINE_KEYS.includes(k)) {
        throw new UsageError(
          `${where}: unknown field ${JSON.stringify(k)} (fields: ${LINE_KEYS.join(", ")})`,
        );
      }
    }
    if (obj.id === undefined) throw new UsageError(`${where}: missing id`);
    if (typeof obj.id !== "string" || !SAFE_ID.test(obj.id)) {
      throw new UsageError(
        `${where}: id must be a plain file name (letters, digits, ".", "_", "-"; ` +
          `starting with a letter or digit; at most 100 characters), got ${
            JSON.stringify(obj.id).slice(0, 120)
          }`,
      );
    }
    const key = obj.id.toLowerCase();
    const earlier = seen.get(key);
    if (earlier !== undefined) {
      throw new UsageError(`${where}: id ${JSON.stringify(obj.id)} repeats line ${earlier}`);
    }
    seen.set(key, line);
    if (obj.prompt === undefined) throw new UsageError(`${where}: missing prompt`);
    let req: GenerateRequest;
    try {
      const { id: _id, ...fields } = obj;
      req = resolveRequest({ ...defaults, ...fields });
    } catch (e) {
      if (e instanceof FieldError) throw new UsageError(`${where}: ${e.message}`);
      throw e;
    }
    out.push({ line, id: obj.id, req });
  });
  if (out.length === 0) throw new UsageError(`--batch: ${file} has no lines`);
  return out;
}

/** Parses and checks a command line (reads the batch file); throws UsageError naming the flag. */
export async function parseGenerateArgs(args: string[], cwd = Deno.cwd()): Promise<GeneratePlan> {
  const { flags, positional } = parseFlags(args, FLAGS);
  noPositionals(positional);
  const backend = flags.backend === undefined ? "auto" : String(flags.backend);
  if (!BACKEND_CHOICES.includes(backend as BackendChoice)) {
    throw new UsageError(
      `--backend must be one of ${BACKEND_CHOICES.join(", ")}, got "${backend}"`,
    );
  }
  const batchSize = flags["batch-size"] === undefined
    ? DEFAULT_BATCH_SIZE
    : Number(flags["batch-size"]);
  if (batchSize < 1 || batchSize > MAX_BATCH_SIZE) {
    throw new UsageError(`--batch-size must be in 1..${MAX_BATCH_SIZE}, got ${batchSize}`);
  }
  let modelDir = DEFAULT_MODEL_DIR;
  if (flags.model !== undefined) {
    const m = String(flags.model);
    if (!m) throw new UsageError("--model must not be empty");
    modelDir = m.includes("/") ? resolvePath(cwd, m) : `${MODELS_ROOT}/${m}`;
    if (!(await isFile(`${modelDir}/model_index.json`))) {
      throw new UsageError(`--model: ${m} is not a model folder (no ${modelDir}/model_index.json)`);
    }
  }
  const single = flags.prompt !== undefined, batch = flags.batch !== undefined;
  if (single && batch) throw new UsageError("--prompt and --batch cannot be used together");
  if (!single && !batch) {
    throw new UsageError("give --prompt TEXT --out FILE.png, or --batch FILE --out-dir DIR");
  }
  const defaults = flagInput(flags);
  if (single) {
    if (flags["out-dir"] !== undefined) {
      throw new UsageError("--out-dir goes with --batch; use --out");
    }
    if (flags["batch-size"] !== undefined) throw new UsageError("--batch-size goes with --batch");
    if (flags.out === undefined) throw new UsageError("missing --out (the PNG file to write)");
    const out = String(flags.out);
    if (!out || out.endsWith("/")) throw new UsageError("--out must be a file name");
    let req: GenerateRequest;
    try {
      req = resolveRequest({ ...defaults, prompt: flags.prompt });
    } catch (e) {
      if (e instanceof FieldError) throw new UsageError(flagProblem(e.field, e.message));
      throw e;
    }
    return {
      modelDir,
      backend: backend as BackendChoice,
      batchSize: 1,
      jobs: [{ out: resolvePath(cwd, out), label: out, req }],
    };
  }
  if (flags.out !== undefined) throw new UsageError("--out goes with --prompt; use --out-dir");
  if (flags["out-dir"] === undefined) throw new UsageError("missing --out-dir (where the PNGs go)");
  const outDirGiven = String(flags["out-dir"]).replace(/(.)\/+$/, "$1");
  const outDir = resolvePath(cwd, outDirGiven);
  // Check the flags' own values once, so a bad one is named as a flag, not as every line.
  try {
    resolveRequest({ ...defaults, prompt: "x" });
  } catch (e) {
    if (e instanceof FieldError) throw new UsageError(flagProblem(e.field, e.message));
    throw e;
  }
  const file = String(flags.batch);
  let text: string;
  try {
    text = await Deno.readTextFile(resolvePath(cwd, file));
  } catch (e) {
    throw new UsageError(`--batch: cannot read ${file} (${(e as Error).message})`);
  }
  const jobs = parseBatchLines(text, file, defaults).map((l) => ({
    out: `${outDir}/${l.id}.png`,
    label: `${outDirGiven}/${l.id}.png`,
    req: l.req,
    line: l.line,
    id: l.id,
  }));
  return { modelDir, backend: backend as BackendChoice, batchSize, jobs, batchFile: file, outDir };
}

/** Jobs grouped for one denoising loop each: same steps, solver, guidance and cache, in order. */
export function groupJobs(jobs: ImageJob[], batchSize: number): ImageJob[][] {
  const groups = new Map<string, ImageJob[][]>();
  const order: ImageJob[][] = [];
  for (const j of jobs) {
    const r = j.req;
    const key = JSON.stringify([r.steps, r.solver, r.guidanceScale, r.cache]);
    const list = groups.get(key) ?? [];
    groups.set(key, list);
    let last = list.at(-1);
    if (!last || last.length >= batchSize) {
      last = [];
      list.push(last);
      order.push(last);
    }
    last.push(j);
  }
  return order;
}

const ms = (x: number) => `${x.toFixed(1)} ms`;

/** The report line of one written image. */
export function describeResult(
  file: string,
  r: GenerateResult,
  guidance: number,
  batch: number,
): string {
  const t = r.timings;
  return `${file}: ${r.width}x${r.height}, seed ${r.seed}, ${r.solver} ${r.steps} steps, ` +
    `guidance ${guidance}, backend ${r.backend}, schedule ${r.schedule ?? "none"} ` +
    `(skipped ${(r.skippedFraction * 100).toFixed(1)}%), text encoder ${ms(t.textEncoderMs)}, ` +
    `UNet ${ms(t.unetMs)}, decoder ${ms(t.decoderMs)}, total ${ms(t.totalMs)}` +
    (batch > 1 ? ` (times for a batch of ${batch})` : "");
}

function where(j: ImageJob): string {
  return j.line === undefined ? "" : `line ${j.line} (${j.id}): `;
}

/** How a message names a job's field: `--prompt` for the command line, `FILE line N` for a batch. */
function fieldWhere(plan: GeneratePlan, j: ImageJob, flag: string): string {
  return j.line === undefined ? `--${flag}` : `${plan.batchFile} line ${j.line}: ${flag}`;
}

/**
 * Checks every prompt against the model's tokenizer before anything loads: throws UsageError for a
 * prompt with no token the model knows (named by flag or line), returns the warnings (prompts
 * longer than the text encoder reads, negative prompts it cannot read).
 */
export function checkPrompts(plan: GeneratePlan, tokenizer: Tokenizer): string[] {
  const warnings: string[] = [];
  for (const j of plan.jobs) {
    let report;
    try {
      report = assertPromptUsable(tokenizer, j.req.prompt).report;
    } catch (e) {
      if (!(e instanceof PromptError)) throw e;
      throw new UsageError(`${fieldWhere(plan, j, "prompt")}${e.message.slice("prompt".length)}`);
    }
    const w = truncationWarning(fieldWhere(plan, j, "prompt"), report);
    if (w) warnings.push(w);
    if (j.req.negativePrompt.trim()) {
      const neg = analyzePrompt(tokenizer, j.req.negativePrompt).report;
      const where = fieldWhere(plan, j, "negative");
      const nw = truncationWarning(where, neg);
      if (nw) warnings.push(nw);
      if (neg.knownTokens === 0) {
        warnings.push(`${where} has no token the model knows; it acts as no negative prompt`);
      }
    }
  }
  return warnings;
}

/**
 * Runs the command with `args`; resolves with the exit code (0 done, 1 an image or the model
 * failed, 2 bad usage, 130 interrupted). Never throws.
 */
export async function generateCommand(
  args: string[],
  opts: GenerateCommandOptions = {},
): Promise<number> {
  const print = opts.print ?? console.log;
  const printError = opts.printError ?? console.error;
  const fail = (msg: string, code: number) => (printError(`generate: ${msg}`), code);
  let plan: GeneratePlan;
  try {
    if (parseFlags(args, FLAGS).help) return (print(USAGE), 0);
    plan = await parseGenerateArgs(args, opts.cwd ?? Deno.cwd());
  } catch (e) {
    if (e instanceof UsageError) return (printError(usageMessage("generate", USAGE, e)), 2);
    return fail((e as Error).message, 1);
  }
  const signal = opts.signal;
  const interrupted = (written: number) =>
    fail(`interrupted; ${written} of ${plan.jobs.length} images written`, 130);
  if (signal?.aborted) return interrupted(0);
  let tokenizer: Tokenizer;
  try {
    await (opts.verify ?? verifyModelFolder)(plan.modelDir);
    tokenizer = (await readModelFolder(plan.modelDir)).tokenizer;
  } catch (e) {
    return fail(`cannot load the model ${plan.modelDir}: ${(e as Error).message}`, 1);
  }
  try {
    for (const w of checkPrompts(plan, tokenizer)) printError(`generate: warning: ${w}`);
  } catch (e) {
    if (e instanceof UsageError) return fail(e.message, 2);
    throw e;
  }
  let pipeline: Pipeline;
  try {
    const load = opts.load ??
      ((dir: string, backend: BackendChoice) => Pipeline.load(dir, { backend, log: () => {} }));
    pipeline = await load(plan.modelDir, plan.backend);
  } catch (e) {
    return fail(`cannot load the model ${plan.modelDir}: ${(e as Error).message}`, 1);
  }
  // Resolve every schedule before making anything: a bad cache value is a usage error.
  for (const j of plan.jobs) {
    const r = j.req;
    r.cache = registryCacheName(pipeline, r.cache, r.solver, r.steps);
  }
  const checked = new Set<string>();
  for (const j of plan.jobs) {
    const r = j.req;
    const key = JSON.stringify([r.cache, r.solver, r.steps]);
    if (checked.has(key)) continue;
    checked.add(key);
    try {
      await pipeline.resolveSchedule(r.cache, r.solver, r.steps);
    } catch (e) {
      let msg = (e as Error).message.replace(/^cache: /, "");
      if (e instanceof UnknownScheduleError && e.same.length) {
        msg += ` (add ${
          e.same.map((s) => `--solver ${s.solver} --steps ${s.steps}`).join(" or ")
        })`;
      }
      return fail(`${fieldWhere(plan, j, "cache")}: ${msg}`, 2);
    }
  }
  print(`model ${pipeline.model.name} (${plan.modelDir}), backend ${pipeline.backend}`);
  if (plan.outDir !== undefined) {
    try {
      await Deno.mkdir(plan.outDir, { recursive: true });
    } catch (e) {
      return fail(`--out-dir: cannot create it (${(e as Error).message})`, 1);
    }
  }
  let written = 0, failed = 0;
  for (const group of groupJobs(plan.jobs, plan.batchSize)) {
    if (signal?.aborted) return interrupted(written);
    let results: GenerateResult[];
    try {
      results = await pipeline.generateBatch(group.map((j) => j.req), { signal });
    } catch (e) {
      if (signal?.aborted) return interrupted(written);
      for (const j of group) printError(`generate: ${where(j)}failed: ${(e as Error).message}`);
      failed += group.length;
      continue;
    }
    for (const [i, j] of group.entries()) {
      if (signal?.aborted) return interrupted(written);
      try {
        await writeFileAtomic(j.out, results[i].png);
      } catch (e) {
        printError(`generate: ${where(j)}cannot write ${j.label}: ${(e as Error).message}`);
        failed++;
        continue;
      }
      written++;
      print(describeResult(j.label, results[i], j.req.guidanceScale, group.length));
    }
  }
  if (failed) return fail(`${failed} of ${plan.jobs.length} images failed`, 1);
  return 0;
}

if (import.meta.main) {
  const ctl = new AbortController();
  const onInt = () => ctl.abort(new Error("interrupted"));
  Deno.addSignalListener("SIGINT", onInt);
  // Deno tasks run in the config's folder; INIT_CWD is where the user ran the task.
  const cwd = Deno.env.get("INIT_CWD") ?? Deno.cwd();
  const code = await generateCommand(Deno.args, { signal: ctl.signal, cwd });
  Deno.removeSignalListener("SIGINT", onInt);
  Deno.exit(code);
}

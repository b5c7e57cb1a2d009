/**
 * `deno task calibrate`: measures block change on a prompt set, derives static schedules (paper
 * Eq. 7 for each `--deltas` value, or for the deltas that reach each `--skip-targets` fraction of
 * reused block evaluations; uniform ones for `--uniform`), fits scale-shift (with the history term
 * by default, `--scale-shift-form paper` for the paper's form), and writes
 * `schedules/<model>/<solver>-<steps>-<name>.json` plus pictures (change heatmap, schedule grids).
 *
 *   deno task calibrate --model models/emoji-ldm --solver dpm --steps 20 --deltas 0.5,1 --uniform 2 \
 *     --out out/schedules
 *
 * Without `--out` it writes `schedules/<model>/`, and refuses (before loading the model) when that
 * folder already holds schedules for the solver and step count: the shipped ones carry measured
 * FD/KID that a new calibration would drop.
 *
 * @module
 */
import {
  calibrateSchedules,
  defaultCalibrationPrompts,
  type ScaleShiftForm,
} from "../calibration/calibrate.ts";
import { Pipeline } from "../pipeline/pipeline.ts";
import { SOLVERS } from "../pipeline/request.ts";
import type { SolverName } from "../pipeline/types.ts";
import type { BackendChoice } from "../runtime/backend.ts";
import { BACKEND_CHOICES } from "../runtime/backend.ts";
import { noPositionals, parseFlags, UsageError, usageMessage } from "./flags.ts";
import { readModelFolder } from "../model/folder.ts";
import { fittingImages } from "../model/memory.ts";
import { isGuided } from "../solvers/guidance.ts";

/** Samples per UNet batch when `--batch` is not given and memory allows. */
const DEFAULT_BATCH = 32;

/** The `--help` text: every flag with its default. */
export const USAGE = `usage: deno task calibrate [options]

Measures block change on a prompt set, derives cache schedules (Eq. 7 deltas, uniform ones),
fits scale-shift, and writes <out>/<solver>-<steps>-<name>.json with pictures and curves.

options (default in brackets):
  --model DIR              model folder [models/emoji-ldm]
  --solver NAME            ${SOLVERS.join(", ")} [dpm]
  --steps N                2..100 [20]
  --deltas LIST            Eq. 7 thresholds, e.g. 0.25,0.5,1 [0.25,0.5,1]
  --skip-targets LIST      instead of --deltas: skipped fractions to reach, e.g. 0.4,0.6
  --uniform LIST           uniform schedules recomputing every N-th step [2,3]
  --scale-shift WHICH      fit scale-shift for all, none, recommended, or NAME,... [all]
  --scale-shift-form FORM  history (a·r + g·p + b) or paper (a·r + b) [history]
  --prompts FILE           one prompt per line [the model's calibration prompts]
  --seeds N                seeds per prompt, 1..16 [2]
  --guidance X             guidance scale [4]
  --batch N                images per denoising loop [32]
  --recommend NAME|TARGET  record this schedule as the solver and steps' auto in index.json
  --out DIR                where to write [schedules/<model>; refused when it already holds
                           schedules for this solver and steps: pass --out to replace them]
  --backend NAME           ${BACKEND_CHOICES.join(", ")} [wasm]
  -h, --help               this text`;

/**
 * Files of `dir` a calibration of `solver`/`steps` would overwrite (`<solver>-<steps>.curves.*`,
 * `<solver>-<steps>-<name>.*`); empty when the folder is absent.
 */
export async function existingScheduleFiles(
  dir: string,
  solver: string,
  steps: number,
): Promise<string[]> {
  const base = `${solver}-${steps}`;
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile && (e.name.startsWith(`${base}.`) || e.name.startsWith(`${base}-`))) {
        out.push(e.name);
      }
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out.sort();
}

function numberList(flag: string, raw: string): number[] {
  const out = raw.split(",").filter((s) => s.trim()).map((s) => Number(s.trim()));
  if (out.some((n) => !Number.isFinite(n) || n < 0)) {
    throw new UsageError(`--${flag} must be a comma-separated list of non-negative numbers`);
  }
  return out;
}

async function defaultPrompts(modelDir: string): Promise<string[]> {
  try {
    return await defaultCalibrationPrompts(modelDir);
  } catch (e) {
    throw new UsageError(`--prompts is required: ${(e as Error).message}`);
  }
}

/** Runs the command; returns the exit code. */
export async function calibrateCommand(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseFlags(args, {
      model: "string",
      solver: "string",
      steps: "int",
      deltas: "string",
      "skip-targets": "string",
      uniform: "string",
      "scale-shift": "string",
      "scale-shift-form": "string",
      prompts: "string",
      seeds: "int",
      guidance: "number",
      batch: "int",
      recommend: "string",
      out: "string",
      backend: "string",
    });
    if (parsed.help) {
      console.log(USAGE);
      return 0;
    }
    noPositionals(parsed.positional);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(usageMessage("calibrate", USAGE, e));
      return 2;
    }
    throw e;
  }
  const f = parsed.flags;
  try {
    const modelDir = String(f.model ?? "models/emoji-ldm");
    try {
      await Deno.stat(`${modelDir}/model_index.json`);
    } catch {
      throw new UsageError(`--model: ${modelDir} is not a model folder (no model_index.json)`);
    }
    const solver = String(f.solver ?? "dpm") as SolverName;
    if (!SOLVERS.includes(solver)) {
      throw new UsageError(`--solver must be one of ${SOLVERS.join(", ")}`);
    }
    const steps = Number(f.steps ?? 20);
    if (steps < 2 || steps > 100) throw new UsageError("--steps must be in 2..100");
    const backend = String(f.backend ?? "wasm") as BackendChoice;
    if (!BACKEND_CHOICES.includes(backend)) {
      throw new UsageError("--backend must be auto, wasm or webgpu");
    }
    if (f.deltas !== undefined && f["skip-targets"] !== undefined) {
      throw new UsageError("give --deltas or --skip-targets, not both");
    }
    const targets = f["skip-targets"] === undefined
      ? []
      : numberList("skip-targets", String(f["skip-targets"]));
    if (targets.some((t) => t > 1)) {
      throw new UsageError("--skip-targets must be fractions in 0..1");
    }
    const givenDeltas = targets.length
      ? []
      : numberList("deltas", String(f.deltas ?? "0.25,0.5,1"));
    const uniform = numberList("uniform", String(f.uniform ?? "2,3"));
    if (uniform.some((n) => !Number.isInteger(n) || n < 1)) {
      throw new UsageError("--uniform must list positive integers");
    }
    const form = String(f["scale-shift-form"] ?? "history") as ScaleShiftForm;
    if (form !== "history" && form !== "paper") {
      throw new UsageError("--scale-shift-form must be history or paper");
    }
    const seeds = Number(f.seeds ?? 2);
    if (seeds < 1 || seeds > 16) throw new UsageError("--seeds must be in 1..16");
    const guidance = Number(f.guidance ?? 4);
    const prompts = f.prompts
      ? (await Deno.readTextFile(String(f.prompts)).catch(() => {
        throw new UsageError(`--prompts: cannot read ${f.prompts}`);
      })).split("\n").map((l) => l.trim()).filter((l) => l)
      : await defaultPrompts(modelDir);
    if (!prompts.length) throw new UsageError("--prompts: the file has no prompts");

    const model = (await readModelFolder(modelDir)).name;
    const out = String(f.out ?? `schedules/${model}`);
    if (f.out === undefined) {
      const existing = await existingScheduleFiles(out, solver, steps);
      if (existing.length) {
        throw new UsageError(
          `${out} already holds ${solver}-${steps} schedules (${existing.slice(0, 3).join(", ")}` +
            `${existing.length > 3 ? ", …" : ""}), shipped with their measured quality; ` +
            `a calibration would overwrite them. Pass --out DIR to write elsewhere, or ` +
            `--out ${out} to replace them`,
        );
      }
    }
    const log = (line: string) => console.log(line);
    const pipeline = await Pipeline.load(modelDir, { backend, log });
    try {
      // without --batch: as many samples per UNet batch (up to 32) as fit in memory at the
      // native size (an SD-sized UNet at 64x64 latents fits far fewer than 32 guided pairs)
      const batchSize = f.batch !== undefined ? Number(f.batch) : fittingImages(
        (n) => pipeline.estimateMemory(pipeline.nativeLatent, n, isGuided(guidance)),
        DEFAULT_BATCH,
      );
      if (f.batch === undefined && batchSize < DEFAULT_BATCH) {
        log(`calibration batch: ${batchSize} samples (what fits in memory on ${pipeline.backend})`);
      }
      const fitSet = String(f["scale-shift"] ?? "all");
      await calibrateSchedules(pipeline, {
        prompts,
        seeds: Array.from({ length: seeds }, (_, i) => i),
        solver,
        steps,
        guidanceScale: guidance,
        batchSize,
        log,
      }, {
        deltas: givenDeltas,
        skipTargets: targets,
        uniform,
        scaleShift: fitSet === "all" || fitSet === "none" || fitSet === "recommended"
          ? fitSet
          : fitSet.split(","),
        form,
        recommend: f.recommend === undefined ? undefined : String(f.recommend),
        out,
      });
    } catch (e) {
      const m = /^(recommend|scale-shift): (.*)$/s.exec((e as Error).message);
      if (m) throw new UsageError(`--${m[1]}: ${m[2]}`);
      throw e;
    } finally {
      await pipeline.release();
    }
    return 0;
  } catch (e) {
    console.error(
      e instanceof UsageError
        ? usageMessage("calibrate", USAGE, e)
        : `calibrate: ${(e as Error).message}`,
    );
    return e instanceof UsageError ? 2 : 1;
  }
}

if (import.meta.main) Deno.exit(await calibrateCommand(Deno.args));

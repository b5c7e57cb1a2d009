/**
 * `deno task calibrate`: measures block change on a prompt set, derives static schedules (paper
 * Eq. 7 for each `--deltas` value, or for the deltas that reach each `--skip-targets` fraction of
 * reused block evaluations; uniform ones for `--uniform`), fits scale-shift (with the history term
 * by default, `--scale-shift-form paper` for the paper's form), and writes
 * `schedules/<model>/<solver>-<steps>-<name>.json` plus pictures (change heatmap, schedule grids).
 *
 *   deno task calibrate --model models/emoji-ldm --solver dpm --steps 20 --deltas 0.5,1 --uniform 2
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
import { parseFlags, UsageError } from "./flags.ts";

const USAGE = `usage: deno task calibrate [--model DIR] [--solver ddim|dpm|euler] [--steps N]
  [--deltas 0.25,0.5,1 | --skip-targets 0.4,0.6,0.75] [--uniform 2,3] [--scale-shift all|none|recommended|NAME,...]
  [--scale-shift-form history|paper] [--prompts FILE]
  [--seeds N] [--guidance X] [--batch N] [--recommend NAME|TARGET] [--out DIR] [--backend wasm|webgpu|auto]`;

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
      help: "boolean",
    });
    if (parsed.flags.help) {
      console.log(USAGE);
      return 0;
    }
    if (parsed.positional.length) {
      throw new UsageError(`unexpected argument ${parsed.positional[0]}`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`${e.message}\n${USAGE}`);
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

    const log = (line: string) => console.log(line);
    const pipeline = await Pipeline.load(modelDir, { backend, log });
    try {
      const fitSet = String(f["scale-shift"] ?? "all");
      await calibrateSchedules(pipeline, {
        prompts,
        seeds: Array.from({ length: seeds }, (_, i) => i),
        solver,
        steps,
        guidanceScale: guidance,
        batchSize: Number(f.batch ?? 32),
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
        out: String(f.out ?? `schedules/${pipeline.model.name}`),
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
      e instanceof UsageError ? `${e.message}\n${USAGE}` : `calibrate: ${(e as Error).message}`,
    );
    return e instanceof UsageError ? 2 : 1;
  }
}

if (import.meta.main) Deno.exit(await calibrateCommand(Deno.args));

/**
 * `deno task frontier`: measures a model's speed–quality frontier per solver and writes
 * `schedules/<model>/<solver>.frontier.json` (format: lib/planning/frontier.ts). For every step
 * count of `--steps`: the uncached plan and every shipped schedule of that step count, calibrating
 * Eq. 7 schedules (`--skip-targets`) and uniform ones (`--uniform`) with scale-shift first where
 * none is shipped (at the step counts of `--calibrate-steps`, default all; cached plans only at
 * those of `--cached-steps`, default all); quality on `--prompts` held-out prompts; then every
 * plan timed in interleaved runs (`--timing-runs`, 0 = none), and FD's spread over
 * `--spread-sets` other seed sets of one uncached plan (0 = none).
 *
 *   deno task frontier --solvers dpm,ddim --prompts 128 --steps 4,6,8,10,12,15,20,25,30,40,50
 *
 * Resumable: results go to `--work` (default `.frontier/<model>`) plan by plan, so a rerun with
 * the same flags skips finished plans. The uncached plans of every solver are measured first,
 * then the cached ones step count by step count (fewest first) across solvers, so an interrupted
 * run holds the cheap end of every frontier.
 *
 * @module
 */
import { defaultCalibrationPrompts } from "../calibration/calibrate.ts";
import {
  assembleFrontier,
  measureFdSpread,
  measureFrontierQuality,
  type PlanResult,
  type PlanTimings,
  timePlans,
} from "../calibration/frontier.ts";
import { ScheduleRegistry } from "../cache/registry.ts";
import { scheduleFileName } from "../cache/schedule.ts";
import { Evaluator } from "../eval/evaluator.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import { machineDescription } from "../io/machine.ts";
import { Pipeline } from "../pipeline/pipeline.ts";
import { SOLVERS } from "../pipeline/request.ts";
import type { SolverName } from "../pipeline/types.ts";
import { frontierFileName, serializeFrontier } from "../planning/frontier.ts";
import { noPositionals, parseFlags, UsageError, usageMessage } from "./flags.ts";

/** The default step grid. */
export const DEFAULT_STEPS = [4, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50];

/** The `--help` text: every flag with its range and default. */
export const USAGE = `usage: deno task frontier [options]

Measures a model's speed-quality frontier per solver (hours for the full grid on a CPU) and
writes <out>/<solver>.frontier.json; resumable from --work.

options (default in brackets):
  --model DIR                 model folder with an evaluation network [models/emoji-ldm]
  --solvers LIST              comma-separated, of ${SOLVERS.join(", ")} [dpm,ddim]
  --steps LIST                step counts, 1..100 [${DEFAULT_STEPS.join(",")}]
  --calibrate-steps LIST      step counts of --steps to calibrate schedules at [all of --steps]
  --cached-steps LIST         step counts of --steps to measure cached plans at [all of --steps]
  --skip-targets LIST         Eq. 7 reuse fractions, 0..1 [0.4,0.6,0.8]
  --uniform LIST              uniform recompute periods, >= 2 ("" for none) [2]
  --calibration-seeds N       seeds per calibration prompt, 1..16 [1]
  --calibration-prompts N     calibration prompts, 1..32 [32]
  --prompts N                 held-out prompts for quality, 2..2048 [128]
  --batch N                   images per quality batch, 1..256 [32]
  --guidance X                classifier-free guidance scale [4]
  --timing-runs N             interleaved timing rounds, 0..50 (0 = none) [3]
  --spread-sets N             extra seed sets for FD's spread, 0..8 (0 = none) [2]
  --work DIR                  resumable per-plan results [.frontier/<model>]
  --out DIR                   schedules and frontier files [schedules/<model>]
  --only WHAT                 uncached, cached or all [all]
  -h, --help                  this text`;

function numberList(flag: string, raw: string, integer: boolean): number[] {
  const out = raw.split(",").filter((s) => s.trim()).map((s) => Number(s.trim()));
  if (
    !out.length ||
    out.some((n) => !Number.isFinite(n) || n < 0 || (integer && !Number.isInteger(n)))
  ) {
    throw new UsageError(
      `--${flag} must be a comma-separated list of non-negative ${
        integer ? "integers" : "numbers"
      }`,
    );
  }
  return out;
}

/** Runs the command; returns the exit code. */
export async function frontierCommand(args: string[]): Promise<number> {
  try {
    const { flags: f, positional, help } = parseFlags(args, {
      model: "string",
      solvers: "string",
      steps: "string",
      "calibrate-steps": "string",
      "cached-steps": "string",
      "skip-targets": "string",
      uniform: "string",
      "calibration-seeds": "int",
      "calibration-prompts": "int",
      prompts: "int",
      batch: "int",
      guidance: "number",
      "timing-runs": "int",
      "spread-sets": "int",
      work: "string",
      out: "string",
      only: "string",
    });
    if (help) {
      console.log(USAGE);
      return 0;
    }
    noPositionals(positional);
    const modelDir = String(f.model ?? "models/emoji-ldm");
    try {
      await Deno.stat(`${modelDir}/model_index.json`);
      await Deno.stat(`${modelDir}/eval/config.json`);
    } catch {
      throw new UsageError(
        `--model: ${modelDir} is not a model folder with an evaluation network (model_index.json, eval/config.json)`,
      );
    }
    const solvers = String(f.solvers ?? "dpm,ddim").split(",").map((s) => s.trim());
    for (const s of solvers) {
      if (!SOLVERS.includes(s as SolverName)) {
        throw new UsageError(`--solvers: ${s} is not one of ${SOLVERS.join(", ")}`);
      }
    }
    const steps = f.steps === undefined
      ? DEFAULT_STEPS
      : numberList("steps", String(f.steps), true);
    if (steps.some((s) => s < 1 || s > 100)) throw new UsageError("--steps must be in 1..100");
    const calibrateSteps = f["calibrate-steps"] === undefined
      ? steps
      : numberList("calibrate-steps", String(f["calibrate-steps"]), true);
    if (calibrateSteps.some((s) => !steps.includes(s))) {
      throw new UsageError("--calibrate-steps must be step counts of --steps");
    }
    const cachedSteps = f["cached-steps"] === undefined
      ? steps
      : numberList("cached-steps", String(f["cached-steps"]), true);
    if (cachedSteps.some((s) => !steps.includes(s))) {
      throw new UsageError("--cached-steps must be step counts of --steps");
    }
    const skipTargets = numberList(
      "skip-targets",
      String(f["skip-targets"] ?? "0.4,0.6,0.8"),
      false,
    );
    if (skipTargets.some((t) => t > 1)) {
      throw new UsageError("--skip-targets must be fractions in 0..1");
    }
    const uniform = f.uniform === "" ? [] : numberList("uniform", String(f.uniform ?? "2"), true);
    if (uniform.some((n) => n < 2)) throw new UsageError("--uniform periods must be >= 2");
    const seeds = Number(f["calibration-seeds"] ?? 1);
    if (seeds < 1 || seeds > 16) throw new UsageError("--calibration-seeds must be in 1..16");
    const calibrationPrompts = Number(f["calibration-prompts"] ?? 32);
    if (calibrationPrompts < 1 || calibrationPrompts > 32) {
      throw new UsageError("--calibration-prompts must be in 1..32");
    }
    const nPrompts = Number(f.prompts ?? 128);
    if (nPrompts < 2 || nPrompts > 2048) throw new UsageError("--prompts must be in 2..2048");
    const batch = Number(f.batch ?? 32);
    if (batch < 1 || batch > 256) throw new UsageError("--batch must be in 1..256");
    const guidance = Number(f.guidance ?? 4);
    const runs = Number(f["timing-runs"] ?? 3);
    if (runs < 0 || runs > 50) throw new UsageError("--timing-runs must be in 0..50");
    const spreadSets = Number(f["spread-sets"] ?? 2);
    if (spreadSets < 0 || spreadSets > 8) throw new UsageError("--spread-sets must be in 0..8");
    const only = String(f.only ?? "all");
    if (!["uncached", "cached", "all"].includes(only)) {
      throw new UsageError("--only must be uncached, cached or all");
    }

    const log = (line: string) =>
      console.log(`[${new Date().toISOString().slice(11, 19)}] ${line}`);
    const started = performance.now();
    const pipeline = await Pipeline.load(modelDir, { backend: "wasm", log });
    const evaluator = await Evaluator.load(`${modelDir}/eval`);
    try {
      const model = pipeline.model.name;
      const out = String(f.out ?? `schedules/${model}`);
      const work = String(f.work ?? `.frontier/${model}`);
      const calibration = {
        prompts: (await defaultCalibrationPrompts(modelDir)).slice(0, calibrationPrompts),
        seeds: Array.from({ length: seeds }, (_, i) => i),
      };
      const optionsFor = (
        solver: SolverName,
        phase: "uncached" | "cached" | "all",
        at?: number[],
      ) => ({
        pipeline,
        evaluator,
        solver,
        steps,
        derive: { skipTargets, uniform, out },
        calibrateSteps,
        calibration,
        prompts: nPrompts,
        guidanceScale: guidance,
        batch,
        workDir: `${work}/${solver}`,
        only: phase,
        at,
        log,
      });
      // the no-cache frontier of every solver first, then the cached plans step count by step
      // count (fewest first) across solvers: an interrupted run has the cheap end of every one
      const results = new Map<SolverName, PlanResult[]>();
      if (only !== "cached") {
        for (const solver of solvers as SolverName[]) {
          results.set(solver, await measureFrontierQuality(optionsFor(solver, "uncached")));
        }
      }
      if (only !== "uncached") {
        for (const s of [...new Set(cachedSteps)].sort((a, b) => a - b)) {
          for (const solver of solvers as SolverName[]) {
            results.set(solver, await measureFrontierQuality(optionsFor(solver, "cached", [s])));
          }
        }
      }
      const floor = evaluator.floor();
      const registry = await ScheduleRegistry.load(out, model);
      for (const solver of solvers as SolverName[]) {
        const res = results.get(solver)!;
        let timings: PlanTimings | undefined;
        if (runs > 0) {
          const timingPath = `${work}/${solver}/timing.json`;
          const plans = res.map((r) => ({
            id: r.id,
            steps: r.steps,
            cache: r.schedule === null
              ? "none"
              : `${out}/${scheduleFileName(solver, r.steps, r.schedule)}`,
          }));
          const stored = await Deno.readTextFile(timingPath).then(JSON.parse).catch(() =>
            undefined
          ) as
            | PlanTimings
            | undefined;
          if (stored && stored.runs === runs && plans.every((p) => stored.plans[p.id])) {
            timings = stored;
          } else {
            log(`${solver}: timing ${plans.length} plans, ${runs} interleaved rounds`);
            timings = await timePlans(pipeline, solver, plans, runs, guidance, log);
            await writeFileAtomic(timingPath, JSON.stringify(timings) + "\n");
          }
        }
        // FD's seed spread on the uncached plan with the most steps up to 10 (a cheap one)
        const spreadSteps = Math.max(...steps.filter((s) => s <= 10), Math.min(...steps));
        const fdSpread = spreadSets > 0
          ? await measureFdSpread(optionsFor(solver, "uncached"), spreadSteps, spreadSets)
          : undefined;
        const frontier = assembleFrontier(pipeline, solver, res, registry.schedules, {
          command: `deno task frontier ${args.join(" ")}`.trim(),
          machine: machineDescription(),
          backend: pipeline.backend,
          date: new Date().toISOString().slice(0, 10),
          floor: { fd: floor.fd, kid: floor.kid },
          guidanceScale: guidance,
          fdSpread,
        }, timings);
        const file = `${out}/${frontierFileName(solver)}`;
        await writeFileAtomic(file, serializeFrontier(frontier));
        log(`wrote ${file}: ${frontier.plans.length} plans, ${nPrompts} prompts`);
      }
      log(`done in ${((performance.now() - started) / 1000).toFixed(0)} s`);
    } finally {
      await evaluator.release();
      await pipeline.release();
    }
    return 0;
  } catch (e) {
    console.error(
      e instanceof UsageError
        ? usageMessage("frontier", USAGE, e)
        : `frontier: ${(e as Error).message}`,
    );
    return e instanceof UsageError ? 2 : 1;
  }
}

if (import.meta.main) Deno.exit(await frontierCommand(Deno.args));

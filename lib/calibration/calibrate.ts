/**
 * Calibration: measures each cacheable block's change between steps on a prompt set (paper
 * Eq. 6), derives static schedules from it (Eq. 7, and uniform ones for comparison), and fits the
 * per-channel scale-shift of a schedule along the cached sampler's own trajectory.
 *
 * The scale-shift fit is the paper's student/teacher objective solved in closed form, step by
 * step: at every step the teacher (the uncached UNet) runs on the student's current latent and
 * gives each block's fresh residual; for the blocks the schedule reuses at that step, the
 * least-squares map from the student's cached residual to the teacher's fresh one is fitted over
 * the whole calibration batch, and the student continues with the corrected residuals.
 *
 * @module
 */
import { initialLatents, type Pipeline } from "../pipeline/pipeline.ts";
import type { SolverName } from "../pipeline/types.ts";
import { toFloat32 } from "../runtime/tensors.ts";
import { createSolver } from "../solvers/mod.ts";
import { ChangeAccumulator } from "./change.ts";
import { deltaForSkippedFraction, deriveSchedule, uniformSchedule } from "./derive.ts";
import { BlockCache } from "../cache/policy.ts";
import { ScaleShiftAccumulator } from "./scale_shift_fit.ts";
import {
  deltaScheduleName,
  type ScaleShiftTable,
  type Schedule,
  SCHEDULE_FORMAT,
  scheduleFileName,
  serializeSchedule,
  skippedFraction,
  uniformScheduleName,
} from "../cache/schedule.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import { parseScheduleIndex, type ScheduleIndex } from "../cache/registry.ts";
import { changeHeatmapSvg, scheduleGridSvg } from "../image/plots.ts";

/** What a calibration run generates. */
export interface CalibrationSet {
  prompts: string[];
  seeds: number[];
  solver: SolverName;
  steps: number;
  guidanceScale: number;
  /** Samples per UNet batch (each is 2 items with guidance). */
  batchSize?: number;
  signal?: AbortSignal;
  log?: (line: string) => void;
}

/**
 * The default calibration prompts of a model folder: the first 32 reference captions of its
 * evaluation set (benchmarks use the held-out ones), as the paper's 32 prompts.
 */
export async function defaultCalibrationPrompts(modelDir: string): Promise<string[]> {
  try {
    const cfg = JSON.parse(await Deno.readTextFile(`${modelDir}/eval/config.json`));
    return (cfg.captions as string[]).slice(0, 32);
  } catch {
    throw new Error(`${modelDir}/eval/config.json has no captions`);
  }
}

interface Sample {
  prompt: string;
  seed: number;
}

function samples(set: CalibrationSet): Sample[] {
  return set.seeds.flatMap((seed) => set.prompts.map((prompt) => ({ prompt, seed })));
}

function batches<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * Runs the uncached sampler on every (prompt, seed) and returns the mean relative L1 change of
 * each block's cached value, `curves[block][step]` (step 0 is 1 by convention).
 */
export async function measureChange(pipeline: Pipeline, set: CalibrationSet): Promise<number[][]> {
  const blocks = pipeline.unet.blocks;
  const acc = new ChangeAccumulator(blocks, set.steps);
  for (const [b, batch] of batches(samples(set), set.batchSize ?? 32).entries()) {
    const recorder = new BlockCache(null, blocks);
    const solver = createSolver(set.solver, pipeline.model.scheduler, set.steps);
    const emb = await pipeline.encodePrompts(
      batch.map((s) => s.prompt),
      batch.map(() => ""),
      set.guidanceScale !== 1,
    );
    try {
      let x = initialLatents(
        batch.map((s) => s.seed),
        pipeline.latentLength,
        solver.initNoiseSigma,
      );
      for (let i = 0; i < set.steps; i++) {
        const xin = solver.scaleModelInput(x, i);
        const out = await pipeline.evalUNet(
          xin,
          solver.timesteps[i],
          emb,
          recorder,
          set.guidanceScale,
          set.signal,
        );
        for (const [k, block] of blocks.entries()) {
          const t = recorder.storedValue(k)!;
          acc.add(block, i, await toFloat32(t), t.dims[0]);
        }
        x = solver.step(out, i, x).prevSample;
      }
    } finally {
      emb.tensor.dispose();
      recorder.dispose();
    }
    set.log?.(`change: batch ${b + 1} done (${batch.length} samples)`);
  }
  return acc.curves();
}

/** A schedule without measured figures or scale-shift. */
export function makeSchedule(
  model: string,
  solver: SolverName,
  steps: number,
  blocks: string[],
  mode: "residual" | "output",
  rule: { delta: number; curves: number[][] } | { every: number },
): Schedule {
  const recompute = "delta" in rule
    ? deriveSchedule(rule.curves, rule.delta)
    : uniformSchedule(steps, blocks.length, rule.every);
  return {
    format: SCHEDULE_FORMAT,
    model,
    solver,
    steps,
    name: "delta" in rule ? deltaScheduleName(rule.delta) : uniformScheduleName(rule.every),
    kind: "delta" in rule ? "delta" : "uniform",
    ...("delta" in rule ? { delta: rule.delta } : { every: rule.every }),
    mode,
    blocks: [...blocks],
    recompute,
    skippedFraction: skippedFraction(recompute),
  };
}

/** Which correction {@link fitScaleShift} fits: the paper's `a·r + b`, or with the history term. */
export type ScaleShiftForm = "paper" | "history";

/**
 * Fits the schedule's scale-shift table along the cached sampler's trajectory (see the module
 * doc); returns the table and the mean squared error of the reused residuals before and after.
 * The history form also weighs each block's value from the computation before the cached one
 * wherever the block has been computed twice.
 */
export async function fitScaleShift(
  pipeline: Pipeline,
  schedule: Schedule,
  set: CalibrationSet,
  form: ScaleShiftForm = "history",
): Promise<{ table: ScaleShiftTable; mseBefore: number; mseAfter: number }> {
  const blocks = pipeline.unet.blocks;
  const all = samples(set);
  const table: ScaleShiftTable = {};
  const working: Schedule = { ...schedule, scaleShift: table };
  let before = 0, after = 0, count = 0;
  // the whole calibration set is one batch, so each step's fit sees every sample
  const student = new BlockCache(working, blocks);
  if (form === "history") student.keepPrevious();
  const teacher = new BlockCache(null, blocks);
  const emb = await pipeline.encodePrompts(
    all.map((s) => s.prompt),
    all.map(() => ""),
    set.guidanceScale !== 1,
  );
  try {
    const solver = createSolver(set.solver, pipeline.model.scheduler, set.steps);
    let x = initialLatents(all.map((s) => s.seed), pipeline.latentLength, solver.initNoiseSigma);
    for (let i = 0; i < set.steps; i++) {
      const xin = solver.scaleModelInput(x, i);
      const t = solver.timesteps[i];
      const reused = blocks.map((_, k) => student.reusesAt(i, k));
      if (reused.some((r) => r)) {
        await pipeline.evalUNet(xin, t, emb, teacher, set.guidanceScale, set.signal);
        const acc = new ScaleShiftAccumulator();
        for (const [k, block] of blocks.entries()) {
          if (!reused[k]) continue;
          const cached = student.storedValue(k)!;
          const fresh = teacher.storedValue(k)!;
          const previous = student.previousValue(k);
          acc.add(
            block,
            i,
            await toFloat32(cached),
            await toFloat32(fresh),
            cached.dims,
            previous && await toFloat32(previous),
          );
        }
        const fitted = acc.fit();
        for (const r of acc.report(fitted)) {
          before += r.mseIdentity;
          after += r.mseFit;
          count++;
        }
        for (const [block, steps] of Object.entries(fitted)) {
          table[block] = { ...table[block], ...steps };
        }
      }
      await student.beginStep(i);
      const out = await pipeline.evalUNet(xin, t, emb, student, set.guidanceScale, set.signal);
      x = solver.step(out, i, x).prevSample;
    }
  } finally {
    emb.tensor.dispose();
    student.dispose();
    teacher.dispose();
  }
  set.log?.(
    `scale-shift (${form}) ${schedule.name}: reused-residual MSE ${
      (before / (count || 1)).toExponential(3)
    }` +
      ` → ${(after / (count || 1)).toExponential(3)}`,
  );
  return { table, mseBefore: before / (count || 1), mseAfter: after / (count || 1) };
}

/** What {@link calibrateSchedules} derives and fits. */
export interface ScheduleDerivation {
  /** Eq. 7 thresholds to derive schedules for. */
  deltas?: number[];
  /** Fractions of reused block evaluations (0..1): each becomes the Eq. 7 delta that reaches it. */
  skipTargets?: number[];
  /** Periods of uniform schedules (recompute every N steps). */
  uniform?: number[];
  /** Which schedules get a fitted scale-shift: all (default), none, the recommended one, or these names. */
  scaleShift?: "all" | "none" | "recommended" | string[];
  /**
   * The schedule `schedules/<model>/index.json` recommends for this solver and step count: a
   * schedule name, or one of `skipTargets` (as text) for the schedule derived for it.
   */
  recommend?: string;
  /** The scale-shift form (default: history). */
  form?: ScaleShiftForm;
  /** Folder the curves, schedules and their pictures go to (created if missing). */
  out: string;
}

/** What {@link calibrateSchedules} wrote. */
export interface CalibrationOutput {
  /** `[block][step]` mean L1_rel (paper Eq. 6). */
  curves: number[][];
  /** The schedules written, in the order derived: deltas, skip targets, uniform. */
  schedules: Schedule[];
  /** The delta each skip target became, in the order of `skipTargets`. */
  targetDeltas: number[];
  /** The recommended schedule's name, when `recommend` was given. */
  recommended?: string;
}

/**
 * The whole calibration of one (solver, step count): measures the change curves on `set`,
 * derives the Eq. 7 and uniform schedules, fits scale-shift, and writes
 * `<out>/<solver>-<steps>.curves.{json,svg}` and `<out>/<solver>-<steps>-<name>.{json,svg}`
 * (each file atomically). Throws for a schedule name asked for in `scaleShift` that is not derived.
 */
export async function calibrateSchedules(
  pipeline: Pipeline,
  set: CalibrationSet,
  what: ScheduleDerivation,
): Promise<CalibrationOutput> {
  const model = pipeline.model.name;
  const { solver, steps } = set;
  const blocks = pipeline.unet.blocks;
  const mode = pipeline.unet.manifest.mode;
  await Deno.mkdir(what.out, { recursive: true });
  const t0 = performance.now();
  const curves = await measureChange(pipeline, set);
  set.log?.(
    `change measured on ${set.prompts.length} prompts x ${set.seeds.length} seeds in ${
      ((performance.now() - t0) / 1000).toFixed(1)
    } s`,
  );
  const base = `${solver}-${steps}`;
  await writeFileAtomic(
    `${what.out}/${base}.curves.json`,
    JSON.stringify({
      model,
      solver,
      steps,
      blocks,
      prompts: set.prompts.length,
      seeds: set.seeds.length,
      curves,
    }) + "\n",
  );
  await writeFileAtomic(
    `${what.out}/${base}.curves.svg`,
    changeHeatmapSvg(curves, blocks, { title: `${model} ${base}: L1_rel per block and step` }),
  );
  const targetDeltas = (what.skipTargets ?? []).map((t) =>
    deltaForSkippedFraction(curves, t).delta
  );
  const deltas = [...(what.deltas ?? []), ...targetDeltas].filter((d, i, all) =>
    all.indexOf(d) === i
  );
  // a table equal to an earlier one (few steps leave few choices) is derived once: the first wins
  const tables = new Set<string>();
  const schedules = [
    ...deltas.map((delta) => makeSchedule(model, solver, steps, blocks, mode, { delta, curves })),
    ...(what.uniform ?? []).map((every) =>
      makeSchedule(model, solver, steps, blocks, mode, { every })
    ),
  ].filter((s) => {
    const key = JSON.stringify(s.recompute);
    if (tables.has(key)) {
      set.log?.(`${base}-${s.name}: the same table as an earlier schedule, left out`);
      return false;
    }
    tables.add(key);
    return true;
  });
  const known = (names: string[], what: string) => {
    const unknown = names.filter((n) => !schedules.some((s) => s.name === n));
    if (unknown.length) {
      throw new Error(
        `${what}: ${unknown.join(", ")} is not one of ${schedules.map((s) => s.name).join(", ")}`,
      );
    }
  };
  let recommended: string | undefined;
  if (what.recommend !== undefined) {
    const k = (what.skipTargets ?? []).indexOf(Number(what.recommend));
    recommended = k >= 0 ? deltaScheduleName(targetDeltas[k]) : what.recommend;
    known([recommended], "recommend");
  }
  const fit = what.scaleShift ?? "all";
  const fitNames = fit === "all"
    ? schedules.map((s) => s.name)
    : fit === "none"
    ? []
    : fit === "recommended"
    ? (recommended ? [recommended] : [])
    : fit;
  known(fitNames, "scale-shift");
  for (const s of schedules) {
    if (fitNames.includes(s.name) && s.skippedFraction > 0) {
      const r = await fitScaleShift(pipeline, s, set, what.form ?? "history");
      s.scaleShift = r.table;
      s.measured = { scaleShiftMseBefore: r.mseBefore, scaleShiftMseAfter: r.mseAfter };
    }
    const file = `${what.out}/${scheduleFileName(solver, steps, s.name)}`;
    await writeFileAtomic(file, serializeSchedule(s));
    await writeFileAtomic(
      file.replace(/\.json$/, ".svg"),
      scheduleGridSvg(s.recompute, blocks, { title: `${model} ${base} ${s.name}` }),
    );
    set.log?.(
      `wrote ${file}: skipped ${(s.skippedFraction * 100).toFixed(1)}% of block evaluations`,
    );
  }
  if (recommended) await recommendSchedule(what.out, base, recommended);
  return { curves, schedules, targetDeltas, recommended };
}

/**
 * Records `name` as the recommended schedule of `<solver>-<steps>` (`key`) in `<dir>/index.json`
 * ({@link ScheduleIndex}), keeping the other entries; written atomically.
 */
export async function recommendSchedule(dir: string, key: string, name: string): Promise<void> {
  let index: ScheduleIndex = { recommended: {} };
  try {
    index = parseScheduleIndex(await Deno.readTextFile(`${dir}/index.json`), `${dir}/index.json`);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  index.recommended[key] = name;
  await writeFileAtomic(`${dir}/index.json`, JSON.stringify(index, null, 2) + "\n");
}

/**
 * Measures a model's speed–quality frontier for one solver (the file format and its checks are in
 * lib/planning/frontier.ts): for every step count of a grid, the uncached plan and every shipped
 * schedule of that step count — calibrating Eq. 7 and uniform schedules (with scale-shift) first
 * where none is shipped — generate the same prompt set, score it with the model's evaluation
 * network (FD/KID against real images, category accuracy) and against the reference plan's images
 * (PSNR/SSIM); then time every plan in interleaved runs.
 *
 * Resumable: every plan's result is a JSON file in a work folder (and the reference images a raw
 * file), written atomically, so a restarted run skips finished plans; a result whose schedule has
 * changed since (sha256) is measured again. Quality is deterministic (fixed prompts and seeds).
 *
 * @module
 */
import { ScheduleRegistry } from "../cache/registry.ts";
import type { Schedule } from "../cache/schedule.ts";
import { scheduleFileName } from "../cache/schedule.ts";
import type { Evaluator } from "../eval/evaluator.ts";
import type { RgbaImage } from "../image/png.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import { rgba8 } from "../metrics/image8.ts";
import { pairedPsnrSsim } from "../metrics/psnr.ts";
import type { Pipeline } from "../pipeline/pipeline.ts";
import type { GenerateRequest, SolverName } from "../pipeline/types.ts";
import {
  type Frontier,
  FRONTIER_FORMAT,
  type FrontierPlan,
  planCost,
  planId,
  type PlanQuality,
  scheduleFingerprint,
} from "../planning/frontier.ts";
import { calibrateSchedules, type ScheduleDerivation } from "./calibrate.ts";

/** What to measure. */
export interface FrontierOptions {
  pipeline: Pipeline;
  evaluator: Evaluator;
  solver: SolverName;
  /** Step counts of the grid; the largest one's uncached plan is the reference. */
  steps: number[];
  /** Schedules derived where a step count has none shipped (`out` is the schedules folder). */
  derive: ScheduleDerivation;
  /** Step counts that get schedules derived when none is shipped (default: all of `steps`). */
  calibrateSteps?: number[];
  /** The calibration set for those schedules: prompts and seeds. */
  calibration: { prompts: string[]; seeds: number[] };
  /** Quality prompts: the first `prompts` held-out captions of the evaluation set, seed = index. */
  prompts: number;
  guidanceScale: number;
  /** Images per UNet batch while measuring quality. */
  batch: number;
  /** Folder of per-plan results (created if missing). */
  workDir: string;
  /** Which plans to measure now: the uncached ones, the cached ones (calibrating first), or all. */
  only?: "uncached" | "cached" | "all";
  /** The step counts of `steps` to measure now (default all; the reference is always measured). */
  at?: number[];
  log?: (line: string) => void;
  signal?: AbortSignal;
}

/** A measured plan as stored in the work folder (a {@link FrontierPlan} without cost/timing). */
export interface PlanResult {
  id: string;
  steps: number;
  schedule: string | null;
  scheduleSha256?: string;
  skippedFraction: number;
  quality: PlanQuality;
  prompts: number;
  seconds: number;
}

/** The quality prompt set: held-out captions (cycled past 256), their labels, seed = index. */
export function qualityPrompts(
  evaluator: Evaluator,
  count: number,
): { prompts: string[]; labels: number[] } {
  const captions = evaluator.holdoutCaptions, labels = evaluator.holdoutLabels;
  return {
    prompts: Array.from({ length: count }, (_, i) => captions[i % captions.length]),
    labels: Array.from({ length: count }, (_, i) => labels[i % captions.length]),
  };
}

async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(path)) as T;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

/** Writes images as one raw RGBA file (`n × h × w × 4` bytes, sizes in the name's sidecar). */
async function saveImages(path: string, images: RgbaImage[]): Promise<void> {
  const { width, height } = images[0];
  const bytes = new Uint8Array(images.length * width * height * 4);
  images.forEach((img, i) => bytes.set(img.data, i * width * height * 4));
  await writeFileAtomic(path, bytes);
  await writeFileAtomic(`${path}.json`, JSON.stringify({ count: images.length, width, height }));
}

async function loadImages(path: string): Promise<RgbaImage[] | undefined> {
  const meta = await readJson<{ count: number; width: number; height: number }>(`${path}.json`);
  if (!meta) return undefined;
  const bytes = await Deno.readFile(path);
  const size = meta.width * meta.height * 4;
  return Array.from({ length: meta.count }, (_, i) => ({
    width: meta.width,
    height: meta.height,
    data: bytes.slice(i * size, (i + 1) * size),
  }));
}

/** The request of one quality image (`cache`: "none" or a schedule file path). */
function qualityRequest(
  prompt: string,
  seed: number,
  o: Pick<FrontierOptions, "solver" | "guidanceScale">,
  steps: number,
  cache: string,
): GenerateRequest {
  return {
    prompt,
    negativePrompt: "",
    seed,
    steps,
    guidanceScale: o.guidanceScale,
    solver: o.solver,
    cache,
  };
}

/**
 * The images of `prompts` (prompt i with seed `seedOffset + i`) at `steps` under `cache`, made in
 * UNet batches of {@link FrontierOptions.batch}.
 */
async function generateImages(
  o: FrontierOptions,
  prompts: string[],
  steps: number,
  cache: string,
  seedOffset = 0,
): Promise<RgbaImage[]> {
  const out: RgbaImage[] = [];
  for (let i = 0; i < prompts.length; i += o.batch) {
    const reqs = prompts.slice(i, i + o.batch).map((prompt, k) =>
      qualityRequest(prompt, seedOffset + i + k, o, steps, cache)
    );
    for (const r of await o.pipeline.generateBatch(reqs, { signal: o.signal })) out.push(r.image);
  }
  return out;
}

/**
 * The shipped schedules of the solver at `steps`, calibrating them first where there are none and
 * `steps` is one of {@link FrontierOptions.calibrateSteps}.
 */
async function schedulesFor(o: FrontierOptions, steps: number): Promise<Schedule[]> {
  const model = o.pipeline.model.name;
  const dir = o.derive.out;
  let found = (await ScheduleRegistry.load(dir, model)).for(o.solver, steps);
  if (found.length === 0 && steps >= 2 && (o.calibrateSteps ?? o.steps).includes(steps)) {
    o.log?.(`${o.solver}-${steps}: no shipped schedules, calibrating`);
    await calibrateSchedules(o.pipeline, {
      prompts: o.calibration.prompts,
      seeds: o.calibration.seeds,
      solver: o.solver,
      steps,
      guidanceScale: o.guidanceScale,
      signal: o.signal,
      log: o.log,
    }, o.derive);
    found = (await ScheduleRegistry.load(dir, model)).for(o.solver, steps);
  }
  return found;
}

/**
 * Measures the plans of {@link FrontierOptions.only} that the work folder does not have yet;
 * returns every result now in the work folder for this solver, reference first.
 */
export async function measureFrontierQuality(o: FrontierOptions): Promise<PlanResult[]> {
  const { evaluator, solver } = o;
  const log = o.log ?? (() => {});
  await Deno.mkdir(o.workDir, { recursive: true });
  const { prompts, labels } = qualityPrompts(evaluator, o.prompts);
  const grid = [...new Set(o.steps)].sort((a, b) => a - b);
  const refSteps = grid[grid.length - 1];
  const refId = planId(solver, refSteps, null);
  const resultPath = (id: string) => `${o.workDir}/${id}.json`;

  const score = async (images: RgbaImage[], reference: RgbaImage[]): Promise<PlanQuality> => {
    const { features, predicted } = await evaluator.embed(images);
    const q = evaluator.score(features, predicted, labels);
    const pair = pairedPsnrSsim(images.map(rgba8), reference.map(rgba8));
    return {
      fd: q.fd,
      kid: q.kid,
      kidStd: q.kidStd,
      accuracy: q.accuracy ?? NaN,
      psnr: Number.isFinite(pair.psnr) ? pair.psnr : null,
      ssim: pair.ssim,
    };
  };
  const done = async (id: string, sha?: string): Promise<PlanResult | undefined> => {
    const r = await readJson<PlanResult>(resultPath(id));
    return r && r.prompts === o.prompts && r.scheduleSha256 === sha ? r : undefined;
  };

  // the reference plan's images: every other plan's PSNR/SSIM is against them
  const refImagesPath = `${o.workDir}/${refId}.rgba`;
  let reference = await loadImages(refImagesPath);
  if (!reference || reference.length !== o.prompts || !(await done(refId))) {
    const t0 = performance.now();
    log(`${refId}: generating the reference (${o.prompts} prompts)`);
    reference = await generateImages(o, prompts, refSteps, "none");
    await saveImages(refImagesPath, reference);
    const quality = await score(reference, reference);
    await writeFileAtomic(
      resultPath(refId),
      JSON.stringify(
        {
          id: refId,
          steps: refSteps,
          schedule: null,
          skippedFraction: 0,
          quality,
          prompts: o.prompts,
          seconds: (performance.now() - t0) / 1000,
        } satisfies PlanResult,
      ) + "\n",
    );
  }

  const measure = async (steps: number, schedule: Schedule | null) => {
    const id = planId(solver, steps, schedule?.name ?? null);
    const sha = schedule ? scheduleFingerprint(schedule) : undefined;
    if (await done(id, sha)) return;
    const t0 = performance.now();
    const cache = schedule
      ? `${o.derive.out}/${scheduleFileName(solver, steps, schedule.name)}`
      : "none";
    const images = await generateImages(o, prompts, steps, cache);
    const quality = await score(images, reference!);
    const seconds = (performance.now() - t0) / 1000;
    const result: PlanResult = {
      id,
      steps,
      schedule: schedule?.name ?? null,
      ...(sha ? { scheduleSha256: sha } : {}),
      skippedFraction: schedule?.skippedFraction ?? 0,
      quality,
      prompts: o.prompts,
      seconds,
    };
    await writeFileAtomic(resultPath(id), JSON.stringify(result) + "\n");
    log(
      `${id}: FD ${quality.fd.toFixed(3)} KID ${quality.kid.toFixed(4)} acc ${
        (quality.accuracy * 100).toFixed(1)
      }% PSNR ${quality.psnr?.toFixed(2) ?? "inf"} SSIM ${quality.ssim.toFixed(3)} (${
        seconds.toFixed(0)
      } s)`,
    );
  };

  const only = o.only ?? "all";
  const now = grid.filter((s) => !o.at || o.at.includes(s));
  if (only !== "cached") { for (const s of now) await measure(s, null); }
  if (only !== "uncached") {
    for (const s of now) for (const sch of await schedulesFor(o, s)) await measure(s, sch);
  }
  const results: PlanResult[] = [];
  for await (const e of Deno.readDir(o.workDir)) {
    if (!e.isFile || !e.name.startsWith(`${solver}-`) || !e.name.endsWith(".json")) continue;
    if (e.name.endsWith(".rgba.json") || e.name.endsWith("timing.json")) continue;
    const r = await readJson<PlanResult>(`${o.workDir}/${e.name}`);
    if (r && r.prompts === o.prompts && grid.includes(r.steps)) results.push(r);
  }
  return results.sort((a, b) =>
    (a.id === refId ? -1 : b.id === refId ? 1 : 0) || a.steps - b.steps ||
    (a.schedule ?? "").localeCompare(b.schedule ?? "")
  );
}

/**
 * The seed spread of FD ({@link Frontier.fdSpread}): the uncached plan at `steps` scored again on
 * the same prompts with `sets` other seed sets (seed = index + k × count, k = 1…sets), next to its
 * frontier result (k = 0, which must be measured). Stored in the work folder; resumable.
 */
export async function measureFdSpread(
  o: FrontierOptions,
  steps: number,
  sets: number,
): Promise<{ plan: string; fd: number[] }> {
  const id = planId(o.solver, steps, null);
  const path = `${o.workDir}/spread.json`;
  const stored = await readJson<{ plan: string; prompts: number; fd: number[] }>(path);
  if (
    stored && stored.plan === id && stored.prompts === o.prompts && stored.fd.length === sets + 1
  ) {
    return { plan: id, fd: stored.fd };
  }
  const first = await readJson<PlanResult>(`${o.workDir}/${id}.json`);
  if (!first) throw new Error(`${id} is not measured yet: measure the frontier first`);
  const { prompts, labels } = qualityPrompts(o.evaluator, o.prompts);
  const fd = [first.quality.fd];
  for (let k = 1; k <= sets; k++) {
    const images = await generateImages(o, prompts, steps, "none", k * o.prompts);
    const { features, predicted } = await o.evaluator.embed(images);
    fd.push(o.evaluator.score(features, predicted, labels).fd);
    o.log?.(`${id}, seed set ${k}: FD ${fd[k].toFixed(3)}`);
  }
  await writeFileAtomic(path, JSON.stringify({ plan: id, prompts: o.prompts, fd }) + "\n");
  return { plan: id, fd };
}

/** Per-plan and per-segment timings of one interleaved run ({@link timePlans}). */
export interface PlanTimings {
  runs: number;
  /** Median ms per image (batch of one, guided) per plan id: UNet stage and whole generation. */
  plans: Record<string, { unet: number; total: number }>;
  /** Mean ms per segment evaluation, at batch 2 (guided) and batch 1 (unguided). */
  segmentMs: { batch2: Record<string, number>; batch1: Record<string, number> };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * Times plans in one process, interleaved: after a warm-up of each, `runs` rounds in which every
 * plan makes one guided image (prompts and seeds rotate), then one unguided uncached 10-step
 * image; medians per plan, and each segment's mean latency per evaluation over these runs at
 * batch 2 (guided) and batch 1 (unguided). Plans are `{ id, steps, cache }` with `cache` "none" or
 * a schedule file path.
 */
export async function timePlans(
  p: Pipeline,
  solver: SolverName,
  plans: { id: string; steps: number; cache: string }[],
  runs: number,
  guidanceScale: number,
  log: (line: string) => void = () => {},
): Promise<PlanTimings> {
  const prompts = ["google red apple", "twitter grinning face", "google dog face"];
  const req = (steps: number, cache: string, r: number, guidance = guidanceScale) =>
    qualityRequest(
      prompts[r % prompts.length],
      r,
      { solver, guidanceScale: guidance },
      steps,
      cache,
    );
  for (const plan of plans) await p.generate(req(plan.steps, plan.cache, 0));
  // per-segment times of these runs alone (the engine's own means include every earlier batch)
  const segmentSums = () => new Map<string, { total: number; n: number }>();
  const record = (sums: Map<string, { total: number; n: number }>) => () => {
    for (const t of p.unet.timings()) {
      if (t.lastMs === undefined || t.skipped) continue;
      const s = sums.get(t.name) ?? { total: 0, n: 0 };
      s.total += t.lastMs;
      s.n++;
      sums.set(t.name, s);
    }
  };
  const means = (sums: Map<string, { total: number; n: number }>) =>
    Object.fromEntries([...sums].map(([k, s]) => [k, s.total / s.n]));
  const guided = segmentSums(), unguided = segmentSums();
  const unet = new Map(plans.map((x) => [x.id, [] as number[]]));
  const total = new Map(plans.map((x) => [x.id, [] as number[]]));
  for (let r = 0; r < runs; r++) {
    for (const plan of plans) {
      const res = await p.generate(req(plan.steps, plan.cache, r + 1), {
        onProgress: record(guided),
      });
      unet.get(plan.id)!.push(res.timings.unetMs);
      total.get(plan.id)!.push(res.timings.totalMs);
    }
    // one unguided uncached image per round: the segments' latencies at batch 1
    await p.generate(req(10, "none", r + 1, 1), { onProgress: record(unguided) });
    log(`timing: round ${r + 1}/${runs} done`);
  }
  return {
    runs,
    plans: Object.fromEntries(
      plans.map((x) => [x.id, { unet: median(unet.get(x.id)!), total: median(total.get(x.id)!) }]),
    ),
    segmentMs: { batch2: means(guided), batch1: means(unguided) },
  };
}

/** Header fields of {@link assembleFrontier} that describe the run. */
export interface FrontierRun {
  command: string;
  machine: string;
  backend: string;
  date: string;
  floor: { fd: number; kid: number };
  guidanceScale: number;
  fdSpread?: { plan: string; fd: number[] };
}

/**
 * The frontier file of one solver from its measured results (reference first), the schedules
 * they were measured with, and optional timings.
 */
export function assembleFrontier(
  p: Pipeline,
  solver: SolverName,
  results: PlanResult[],
  schedules: readonly Schedule[],
  run: FrontierRun,
  timings?: PlanTimings,
): Frontier {
  const segments = p.unet.manifest.segments.map((s) => ({
    name: s.name,
    block: s.kind === "block",
  }));
  const plans: FrontierPlan[] = results.map((r) => {
    const schedule = r.schedule === null
      ? null
      : schedules.find((s) => s.solver === solver && s.steps === r.steps && s.name === r.schedule);
    if (schedule === undefined) throw new Error(`plan ${r.id}: its schedule is not shipped`);
    if (schedule && scheduleFingerprint(schedule) !== r.scheduleSha256) {
      throw new Error(`plan ${r.id}: its schedule changed since it was measured; measure again`);
    }
    const t = timings?.plans[r.id];
    return {
      id: r.id,
      steps: r.steps,
      schedule: r.schedule,
      ...(r.scheduleSha256 ? { scheduleSha256: r.scheduleSha256 } : {}),
      skippedFraction: r.skippedFraction,
      cost: planCost(segments, r.steps, schedule),
      quality: r.quality,
      ...(t ? { measuredMs: t } : {}),
    };
  });
  return {
    format: FRONTIER_FORMAT,
    model: p.model.name,
    solver,
    segments,
    reference: results[0].id,
    prompts: {
      count: results[0].prompts,
      source: "the first held-out captions of the model's evaluation set (eval/config.json)",
      seeds: "prompt index",
      guidanceScale: run.guidanceScale,
    },
    floor: run.floor,
    ...(run.fdSpread ? { fdSpread: run.fdSpread } : {}),
    measured: {
      command: run.command,
      machine: run.machine,
      backend: run.backend,
      date: run.date,
      ...(timings ? { segmentMs: timings.segmentMs, timingRuns: timings.runs } : {}),
    },
    plans,
  };
}

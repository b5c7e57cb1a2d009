/**
 * The paper's Table 1 on our model: for each solver and step count, the uncached full-step run,
 * the uncached run with fewer steps at the cached run's latency, block caching, block caching
 * with the paper's scale-shift (fitted here on the calibration set), and with the shipped
 * scale-shift that also weighs each block's previous computed value (history form); quality
 * (FD/KID in the evaluation network's feature space against real images, category accuracy,
 * PSNR/SSIM against the full-step image of the same seed) and speed (UNet time and end-to-end
 * images per second, measured interleaved in one run). Also a
 * speed-quality curve over the shipped schedules and step counts, as SVG.
 *
 *   deno task bench caching [--prompts 256] [--configs dpm-20,ddim-20,dpm-50,ddim-50]
 *     [--curve dpm-20] [--batch 32] [--timing-runs 3] [--model models/emoji-ldm] [--name caching]
 *
 * Results: bench/results/<name>.json (rows) and bench/results/caching_curve.svg.
 *
 * @module
 */
import { defaultCalibrationPrompts, fitScaleShift } from "../lib/calibration/calibrate.ts";
import {
  type ScaleShiftTable,
  type Schedule,
  scheduleFileName,
  serializeSchedule,
} from "../lib/cache/schedule.ts";
import { writeFileAtomic } from "../lib/io/atomic.ts";
import { Evaluator, type QualityScore } from "../lib/eval/evaluator.ts";
import { speedQualitySvg } from "../lib/image/plots.ts";
import type { RgbaImage } from "../lib/image/png.ts";
import { rgba8 } from "../lib/metrics/image8.ts";
import { pairedPsnrSsim } from "../lib/metrics/psnr.ts";
import { Pipeline } from "../lib/pipeline/pipeline.ts";
import type { GenerateRequest, SolverName } from "../lib/pipeline/types.ts";
import { parseFlags } from "../lib/cli/flags.ts";
import { machineDescription } from "./machine.ts";

/** One row of bench/results/caching.json. */
export interface CachingRow {
  solver: SolverName;
  steps: number;
  /** `cache_ss`: the paper's scale-shift; `cache_ss_history`: with the history term (shipped). */
  variant: "full" | "fewer_steps" | "cache" | "cache_ss" | "cache_ss_history" | "curve";
  /** Steps actually run (fewer for `fewer_steps`). */
  steps_run: number;
  schedule: string | null;
  /** UNet-loop speedup over the uncached full-step run, measured in the same run. */
  speedup: number;
  unet_ms: number;
  e2e_ms: number;
  images_per_s: number;
  fd: number;
  kid: number;
  kid_std: number;
  accuracy: number;
  /** PSNR (dB) over the whole set against the uncached full-step images of the same seeds. */
  psnr: number;
  ssim: number;
  skipped_fraction: number;
  cache_bytes: number;
}

interface Variant {
  label: string;
  steps: number;
  cache: string;
  schedule: string | null;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Writes a copy of a schedule with another scale-shift table (or none) to a temp file. */
async function withScaleShift(s: Schedule, table?: ScaleShiftTable): Promise<string> {
  const copy: Schedule = { ...s, scaleShift: table };
  if (!table) delete copy.scaleShift;
  const path = await Deno.makeTempFile({ suffix: ".json" });
  await Deno.writeTextFile(path, serializeSchedule(copy));
  return path;
}

function request(prompt: string, seed: number, solver: SolverName, v: Variant): GenerateRequest {
  return {
    prompt,
    negativePrompt: "",
    seed,
    steps: v.steps,
    guidanceScale: 4,
    solver,
    cache: v.cache,
  };
}

/** The uncached fewer-step points of the speed-quality curve. */
function curveSteps(steps: number): Variant[] {
  const counts = [...new Set([0.4, 0.5, 0.65, 0.8].map((f) => Math.round(steps * f)))];
  return counts.map((n) => ({ label: `steps-${n}`, steps: n, cache: "none", schedule: null }));
}

/** Every shipped schedule of a configuration (with its scale-shift when shipped), as variants. */
function scheduleVariants(p: Pipeline, solver: SolverName, steps: number): Variant[] {
  return p.schedules.for(solver, steps).map((s) => ({
    label: s.name,
    steps,
    cache: s.name,
    schedule: s.name,
  }));
}

/** Median UNet and end-to-end time per image (batch of one, guided), interleaved over variants. */
async function timeVariants(
  p: Pipeline,
  solver: SolverName,
  variants: Variant[],
  runs: number,
): Promise<Map<string, { unet: number; e2e: number; skipped: number; bytes: number }>> {
  const samples = new Map(
    variants.map((
      v,
    ) => [v.label, { unet: [] as number[], e2e: [] as number[], skipped: 0, bytes: 0 }]),
  );
  const prompts = ["google red apple", "twitter grinning face", "google dog face"];
  for (const v of variants) await p.generate(request(prompts[0], 0, solver, v)); // warm-up
  for (let r = 0; r < runs; r++) {
    for (const v of variants) {
      const res = await p.generate(request(prompts[r % prompts.length], r, solver, v));
      const s = samples.get(v.label)!;
      s.unet.push(res.timings.unetMs);
      s.e2e.push(res.timings.totalMs);
      s.skipped = res.skippedFraction;
      s.bytes = res.cacheBytes;
    }
  }
  return new Map(
    [...samples].map((
      [k, s],
    ) => [k, { unet: median(s.unet), e2e: median(s.e2e), skipped: s.skipped, bytes: s.bytes }]),
  );
}

/** Generates the prompt set for one variant, in batches. */
async function generateSet(
  p: Pipeline,
  prompts: string[],
  solver: SolverName,
  v: Variant,
  batch: number,
): Promise<RgbaImage[]> {
  const out: RgbaImage[] = [];
  for (let i = 0; i < prompts.length; i += batch) {
    const reqs = prompts.slice(i, i + batch).map((prompt, k) => request(prompt, i + k, solver, v));
    for (const r of await p.generateBatch(reqs)) out.push(r.image);
  }
  return out;
}

/** Runs the benchmark; returns the rows written to bench/results/caching.json. */
export async function runCachingBench(args: string[]): Promise<CachingRow[]> {
  const { flags } = parseFlags(args, {
    prompts: "int",
    configs: "string",
    curve: "string",
    batch: "int",
    "timing-runs": "int",
    model: "string",
    out: "string",
    schedules: "string",
    name: "string",
    "timing-only": "boolean",
    timing: "string",
  });
  // Timing and quality can run as separate phases: speed ratios want a quiet machine (one
  // process), the quality sets take long and may run in parallel processes.
  const timingOnly = flags["timing-only"] === true;
  type TimingEntry = { unet: number; e2e: number; skipped: number; bytes: number };
  const timingStore: Record<string, Record<string, TimingEntry>> = flags.timing
    ? JSON.parse(await Deno.readTextFile(String(flags.timing)))
    : {};
  const measured = async (key: string, solverName: SolverName, vs: Variant[]) => {
    if (!timingOnly && timingStore[key]) return new Map(Object.entries(timingStore[key]));
    const m = await timeVariants(p, solverName, vs, runs);
    timingStore[key] = Object.fromEntries(m);
    return m;
  };
  const modelDir = String(flags.model ?? "models/emoji-ldm");
  const nPrompts = Number(flags.prompts ?? 256);
  const batch = Number(flags.batch ?? 32);
  const runs = Number(flags["timing-runs"] ?? 3);
  const configs = String(flags.configs ?? "dpm-20,ddim-20,dpm-50,ddim-50").split(",");
  const curveConfig = String(flags.curve ?? "dpm-20");
  const outDir = String(flags.out ?? "bench/results");
  await Deno.mkdir(outDir, { recursive: true });
  const p = await Pipeline.load(modelDir, { backend: "wasm", log: () => {} });
  const evaluator = await Evaluator.load(`${modelDir}/eval`);
  const captions = evaluator.holdoutCaptions;
  const prompts = Array.from({ length: nPrompts }, (_, i) => captions[i % captions.length]);
  const labels = Array.from(
    { length: nPrompts },
    (_, i) => evaluator.holdoutLabels[i % captions.length],
  );
  const floor = evaluator.floor();
  console.log(`machine: ${machineDescription()}`);
  console.log(
    `real-vs-real floor (256 held-out real images): FD ${floor.fd.toFixed(2)}, KID ${
      floor.kid.toFixed(4)
    }`,
  );
  const rows: CachingRow[] = [];
  const curves: {
    name: string;
    points: { x: number; y: number; label?: string }[];
    line?: boolean;
    dashed?: boolean;
  }[] = [];

  const quality = async (images: RgbaImage[]): Promise<QualityScore> => {
    const { features, predicted } = await evaluator.embed(images);
    return evaluator.score(features, predicted, labels);
  };

  type Timing = Awaited<ReturnType<typeof timeVariants>>;
  const rowFor = async (
    solver: SolverName,
    steps: number,
    variant: CachingRow["variant"],
    v: Variant,
    timing: Timing,
    images: RgbaImage[],
    fullImages: RgbaImage[],
  ): Promise<CachingRow> => {
    const q = await quality(images);
    const pair = pairedPsnrSsim(images.map(rgba8), fullImages.map(rgba8));
    const t = timing.get(v.label)!;
    return {
      solver,
      steps,
      variant,
      steps_run: v.steps,
      schedule: v.schedule,
      speedup: timing.get("full")!.unet / t.unet,
      unet_ms: t.unet,
      e2e_ms: t.e2e,
      images_per_s: 1000 / t.e2e,
      fd: q.fd,
      kid: q.kid,
      kid_std: q.kidStd,
      accuracy: q.accuracy ?? NaN,
      psnr: pair.psnr,
      ssim: pair.ssim,
      skipped_fraction: t.skipped,
      cache_bytes: t.bytes,
    };
  };

  for (const config of configs) {
    const [solver, stepsText] = config.split("-") as [SolverName, string];
    const steps = Number(stepsText);
    const recommended = p.schedules.recommended(solver, steps);
    if (!recommended) {
      console.log(`${config}: no shipped schedule, skipped (run deno task calibrate first)`);
      continue;
    }
    const plain = await withScaleShift(recommended);
    // the paper's form, fitted as `deno task calibrate --scale-shift-form paper` would
    const paperFit = await fitScaleShift(p, recommended, {
      prompts: await defaultCalibrationPrompts(modelDir),
      seeds: [0, 1],
      solver,
      steps,
      guidanceScale: 4,
    }, "paper");
    const paper = await withScaleShift(recommended, paperFit.table);
    const full: Variant = { label: "full", steps, cache: "none", schedule: null };
    const cache: Variant = { label: "cache", steps, cache: plain, schedule: recommended.name };
    const cacheSs: Variant = {
      label: "cache_ss",
      steps,
      cache: paper,
      schedule: `${recommended.name}+paper-ss`,
    };
    const cacheSsHistory: Variant = {
      label: "cache_ss_history",
      steps,
      cache: recommended.name,
      schedule: `${recommended.name}+ss`,
    };
    // the fewer-steps baseline at the cached run's latency: time caching first, then pick steps
    const t1 = await measured(`${config}/first`, solver, [full, cache]);
    const ratio = t1.get("full")!.unet / t1.get("cache")!.unet;
    const fewerSteps = Math.max(1, Math.round(steps / ratio));
    const fewer: Variant = {
      label: "fewer_steps",
      steps: fewerSteps,
      cache: "none",
      schedule: null,
    };
    const variants = [full, fewer, cache, cacheSs, cacheSsHistory];
    const timing = await measured(`${config}/table`, solver, variants);
    const sched = scheduleVariants(p, solver, steps);
    const fewerList = curveSteps(steps);
    const curveVariants = [full, ...sched, ...fewerList];
    if (timingOnly) {
      if (config === curveConfig) await measured(`${config}/curve`, solver, curveVariants);
      console.log(
        `${config}: timed; fewer steps at the cached latency: ${fewerSteps}; ` +
          [...timing].map(([k, t]) => `${k} ${t.unet.toFixed(0)} ms`).join(", "),
      );
      for (const f of [plain, paper]) await Deno.remove(f);
      continue;
    }
    const fullImages = await generateSet(p, prompts, solver, full, batch);
    for (const v of variants) {
      const images = v === full ? fullImages : await generateSet(p, prompts, solver, v, batch);
      const row = await rowFor(
        solver,
        steps,
        v.label as CachingRow["variant"],
        v,
        timing,
        images,
        fullImages,
      );
      rows.push(row);
      console.log(
        `${config} ${v.label.padEnd(16)} steps ${String(v.steps).padStart(2)} speedup ${
          row.speedup.toFixed(2)
        }x ` +
          `UNet ${row.unet_ms.toFixed(0)} ms  FD ${row.fd.toFixed(2)} KID ${
            row.kid.toFixed(4)
          } acc ${(row.accuracy * 100).toFixed(1)}% PSNR ${row.psnr.toFixed(2)} skipped ${
            (row.skipped_fraction * 100).toFixed(0)
          }%`,
      );
    }
    for (const f of [plain, paper]) await Deno.remove(f);

    if (config === curveConfig) {
      const ct = await measured(`${config}/curve`, solver, curveVariants);
      const point = async (v: Variant) => {
        const images = await generateSet(p, prompts, solver, v, batch);
        const row = await rowFor(solver, steps, "curve", v, ct, images, fullImages);
        rows.push(row);
        console.log(`curve ${v.label}: speedup ${row.speedup.toFixed(2)}x FD ${row.fd.toFixed(2)}`);
        return { x: row.speedup, y: row.fd, label: v.label };
      };
      type Pt = { x: number; y: number; label?: string };
      const auto: Pt[] = [], uniform: Pt[] = [], fewerPts: Pt[] = [];
      for (const v of sched) (v.label.startsWith("uniform") ? uniform : auto).push(await point(v));
      for (const v of fewerList) fewerPts.push(await point(v));
      const fullRow = rows.find((r) =>
        r.solver === solver && r.steps === steps && r.variant === "full"
      )!;
      curves.push(
        {
          name: "block caching (Eq. 7, + scale-shift with history)",
          points: auto.sort((a, b) => a.x - b.x),
          line: true,
        },
        {
          name: "uniform (every N steps, + scale-shift with history)",
          points: uniform.sort((a, b) => a.x - b.x),
          line: true,
          dashed: true,
        },
        {
          name: "fewer steps, no cache",
          points: [{ x: 1, y: fullRow.fd, label: `${steps}` }, ...fewerPts].sort((a, b) =>
            a.x - b.x
          ),
          line: true,
        },
      );
      await Deno.writeTextFile(
        `${outDir}/caching_curve.svg`,
        speedQualitySvg(curves, {
          title: `${p.model.name} ${solver}-${steps}: speed vs quality (${nPrompts} prompts, wasm)`,
          xLabel: "UNet speedup over the full-step run",
          yLabel: "FD to real images (lower is better)",
          hLines: [{ y: floor.fd, label: "real vs real" }],
        }),
      );
    }
  }
  // the measured speed and quality go into the schedule files the figures are about
  const schedulesDir = String(flags.schedules ?? `schedules/${p.model.name}`);
  for (const s of p.schedules.schedules) {
    const row = rows.find((r) =>
      r.solver === s.solver && r.steps === s.steps &&
      (r.schedule === `${s.name}+ss` || (r.variant === "curve" && r.schedule === s.name))
    );
    if (!row) continue;
    s.measured = {
      ...s.measured,
      speedup: row.speedup,
      fd: row.fd,
      kid: row.kid,
      accuracy: row.accuracy,
      psnr: row.psnr,
      prompts: nPrompts,
      backend: "wasm",
      machine: machineDescription(),
      date: new Date().toISOString().slice(0, 10),
    };
    await writeFileAtomic(
      `${schedulesDir}/${scheduleFileName(s.solver, s.steps, s.name)}`,
      serializeSchedule(s),
    );
  }
  // the timing phase writes its timings; the quality phase its rows
  const result = timingOnly ? timingStore : {
    machine: machineDescription(),
    backend: "wasm",
    model: p.model.name,
    prompts: nPrompts,
    date: new Date().toISOString(),
    floor: { fd: floor.fd, kid: floor.kid },
    rows,
  };
  await writeFileAtomic(
    `${outDir}/${flags.name ?? (timingOnly ? "caching_timing" : "caching")}.json`,
    JSON.stringify(result, null, 1) + "\n",
  );
  await evaluator.release();
  await p.release();
  return rows;
}

if (import.meta.main) await runCachingBench(Deno.args);

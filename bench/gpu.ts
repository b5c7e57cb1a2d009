/**
 * Benchmark of the serving path on a backend (WebGPU by default): the default model loaded as the
 * service loads it, then images made without cache and with each shipped schedule for one solver
 * and step count, interleaved round-robin so drift hits every plan alike. Reports the median
 * end-to-end and UNet milliseconds per image, the speedup over no cache, and the adapter.
 * bench/gpu_check.sh runs it on a GPU host (or on lavapipe, the CPU Vulkan driver, elsewhere).
 *
 *   deno run -A bench/gpu.ts [--backend webgpu|wasm|auto] [--images 5] [--batch 1]
 *     [--solver dpm --steps 10] [--model models/emoji-ldm] [--out FILE.json]
 *
 * Without --solver/--steps it uses those of the model's first shipped schedule.
 *
 * @module
 */
import { writeFileAtomic } from "../lib/io/atomic.ts";
import { parseFlags, UsageError } from "../lib/cli/flags.ts";
import { Pipeline } from "../lib/pipeline/pipeline.ts";
import type { GenerateRequest, SolverName } from "../lib/pipeline/types.ts";
import { BACKEND_CHOICES, type BackendChoice, probeWebGpu } from "../lib/runtime/backend.ts";
import { machineDescription } from "./machine.ts";
import { median } from "./stats.ts";

/** Options of {@link benchGpu}. */
export interface BenchGpuOptions {
  model: string;
  backend: BackendChoice;
  /** Measured loops per plan (after two unmeasured warm-up loops). */
  images: number;
  /** Images per denoising loop (1 = the service's path). */
  batch: number;
  solver?: SolverName;
  steps?: number;
  log?: (line: string) => void;
}

/** One plan's figures (milliseconds per image). */
export interface BenchGpuRow {
  schedule: string | null;
  skipped_fraction: number;
  e2e_ms: number;
  unet_ms: number;
  /** UNet-loop speedup over no cache (median / median). */
  unet_speedup: number;
  e2e_speedup: number;
}

/** What {@link benchGpu} measured. */
export interface BenchGpuResult {
  model: string;
  backend: string;
  adapter: string | null;
  machine: string;
  solver: SolverName;
  steps: number;
  batch: number;
  images: number;
  load_ms: number;
  rows: BenchGpuRow[];
}

/** Loads the model on the backend and measures every plan. */
export async function benchGpu(opts: BenchGpuOptions): Promise<BenchGpuResult> {
  const log = opts.log ?? console.log;
  const t0 = performance.now();
  const p = await Pipeline.load(opts.model, { backend: opts.backend, log });
  const loadMs = performance.now() - t0;
  const first = p.schedules.schedules[0];
  const solver = opts.solver ?? first?.solver ?? "dpm";
  const steps = opts.steps ?? first?.steps ?? 20;
  const plans: (string | null)[] = [null, ...p.schedules.for(solver, steps).map((s) => s.name)];
  const req = (cache: string | null, i: number): GenerateRequest[] =>
    Array.from({ length: opts.batch }, (_, b) => ({
      prompt: "a red apple",
      negativePrompt: "",
      seed: 1000 + i * opts.batch + b,
      steps,
      guidanceScale: 4,
      solver,
      cache: cache ?? "none",
    }));
  for (let w = 0; w < 2; w++) {
    for (const plan of plans) await p.generateBatch(req(plan, w));
  }
  const e2e = new Map(plans.map((x) => [x, [] as number[]]));
  const unet = new Map(plans.map((x) => [x, [] as number[]]));
  const skipped = new Map<string | null, number>();
  for (let i = 0; i < opts.images; i++) {
    for (const plan of plans) {
      const t = performance.now();
      const r = await p.generateBatch(req(plan, i));
      e2e.get(plan)!.push((performance.now() - t) / opts.batch);
      unet.get(plan)!.push(r[0].timings.unetMs / opts.batch);
      skipped.set(plan, r[0].skippedFraction);
    }
  }
  const base = { e2e: median(e2e.get(null)!), unet: median(unet.get(null)!) };
  const rows = plans.map((plan): BenchGpuRow => {
    const e = median(e2e.get(plan)!);
    const u = median(unet.get(plan)!);
    return {
      schedule: plan,
      skipped_fraction: skipped.get(plan) ?? 0,
      e2e_ms: Math.round(e * 10) / 10,
      unet_ms: Math.round(u * 10) / 10,
      unet_speedup: Math.round((base.unet / u) * 100) / 100,
      e2e_speedup: Math.round((base.e2e / e) * 100) / 100,
    };
  });
  return {
    model: p.model.name,
    backend: p.backend,
    adapter: p.backend === "webgpu" ? (await probeWebGpu()) ?? null : null,
    machine: machineDescription(),
    solver,
    steps,
    batch: opts.batch,
    images: opts.images,
    load_ms: Math.round(loadMs),
    rows,
  };
}

/** The result as a plain-text table. */
export function formatBenchGpu(r: BenchGpuResult): string {
  const head = `${r.model} on ${r.backend}${r.adapter ? ` (${r.adapter})` : ""}, ${r.solver} ` +
    `${r.steps} steps, batch ${r.batch}, median of ${r.images}; load ${r.load_ms} ms; ${r.machine}`;
  const lines = r.rows.map((x) =>
    `${(x.schedule ?? "none").padEnd(20)} skip ${
      (x.skipped_fraction * 100).toFixed(0).padStart(3)
    }%` +
    `  e2e ${x.e2e_ms.toFixed(1).padStart(8)} ms  unet ${x.unet_ms.toFixed(1).padStart(8)} ms` +
    `  speedup unet ${x.unet_speedup.toFixed(2)}x e2e ${x.e2e_speedup.toFixed(2)}x`
  );
  return [head, ...lines].join("\n");
}

if (import.meta.main) {
  const usage = "usage: deno run -A bench/gpu.ts [--backend webgpu|wasm|auto] [--images N] " +
    "[--batch N] [--solver dpm|ddim|euler] [--steps N] [--model DIR] [--out FILE.json]";
  try {
    const { flags, positional } = parseFlags(Deno.args, {
      backend: "string",
      images: "int",
      batch: "int",
      solver: "string",
      steps: "int",
      model: "string",
      out: "string",
    });
    if (positional.length) throw new UsageError(`unexpected argument ${positional[0]}`);
    const backend = (flags.backend ?? "webgpu") as BackendChoice;
    if (!BACKEND_CHOICES.includes(backend)) {
      throw new UsageError(`--backend must be one of ${BACKEND_CHOICES.join(", ")}`);
    }
    const images = (flags.images as number | undefined) ?? 5;
    const batch = (flags.batch as number | undefined) ?? 1;
    if (images < 1 || images > 1000) throw new UsageError("--images must be between 1 and 1000");
    if (batch < 1 || batch > 64) throw new UsageError("--batch must be between 1 and 64");
    const solver = flags.solver as SolverName | undefined;
    if (solver !== undefined && !["dpm", "ddim", "euler"].includes(solver)) {
      throw new UsageError("--solver must be one of dpm, ddim, euler");
    }
    const r = await benchGpu({
      model: (flags.model as string | undefined) ??
        new URL("../models/emoji-ldm", import.meta.url).pathname,
      backend,
      images,
      batch,
      solver,
      steps: flags.steps as number | undefined,
      log: (l) => console.error(l),
    });
    console.log(formatBenchGpu(r));
    if (flags.out) {
      const out = flags.out as string;
      await writeFileAtomic(out, JSON.stringify(r, null, 2) + "\n");
    }
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`${e.message}\n${usage}`);
      Deno.exit(2);
    }
    console.error(`bench/gpu.ts: ${e instanceof Error ? e.message : String(e)}`);
    Deno.exit(1);
  }
}

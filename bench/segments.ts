/**
 * Benchmark: the per-segment latencies of a block-split UNet (`UNetEngine.timings()` after each
 * evaluation) on one backend, and from them the cacheable blocks' share of the UNet time, which
 * bounds what block caching can save (`1 / (1 − share)` when every block is reused; Wimbauer et
 * al., CVPR 2024, Sec. 3). Random inputs at batch 2 (a classifier-free guidance pair), medians of
 * N evaluations after a warm-up. Used to size a model before it is trained (the architecture
 * exported with random weights), so it needs no model folder, only the split UNet.
 *
 *   deno run -A bench/segments.ts --split DIR [--reference DIR] [--backend wasm|webgpu]
 *     [--reps 10] [--warmup 2] [--batch 2] [--steps 20] [--json]
 *
 * @module
 */
import process from "node:process";
import { noPositionals, parseFlags, UsageError } from "../lib/cli/flags.ts";
import type { Backend } from "../lib/runtime/backend.ts";
import type { Tensor } from "../lib/runtime/ort.ts";
import { UNetEngine } from "../lib/unet/engine.ts";
import { machineDescription } from "./machine.ts";
import { benchBackend } from "./pipeline.ts";
import { randomInput } from "./split.ts";
import { lcg, median } from "./stats.ts";

/** Options of {@link benchSegments}. */
export interface SegmentBenchOptions {
  /** The split UNet folder (with split.json). */
  split: string;
  /** Backend (default wasm). */
  backend?: Backend;
  /** Measured evaluations (default 10). */
  reps?: number;
  /** Unmeasured evaluations first (default 2). */
  warmup?: number;
  /** Value of symbolic batch dimensions (default 2: a guided pair). */
  batch?: number;
  /** Denoising steps of the per-image estimate (default 20). */
  steps?: number;
  /**
   * Another split UNet measured in the same process, its evaluations alternating with this one's
   * (e.g. the shipped model's, whose absolute speed is known from a quiet machine), for a ratio
   * that a busy host disturbs less than either figure.
   */
  reference?: string;
}

/** One segment's figures over the measured evaluations. */
export interface SegmentRow {
  name: string;
  kind: "glue" | "block";
  medianMs: number;
  /** Its fastest run: on a busy host the least disturbed estimate of its own cost. */
  minMs: number;
  /** medianMs / the sum of every segment's medianMs. */
  share: number;
}

/** What {@link benchSegments} measured. */
export interface SegmentBenchResult {
  bench: "segments";
  date: string;
  machine: string;
  split: string;
  backend: Backend;
  batch: number;
  reps: number;
  segments: SegmentRow[];
  /** Sums of the blocks' and the glue segments' medians, ms. */
  blockMs: number;
  glueMs: number;
  /** blockMs / (blockMs + glueMs): the cacheable blocks' share of the UNet time. */
  blockShare: number;
  /** The same share from every segment's fastest run (steadier on a busy host). */
  blockShareFastest: number;
  /** Median wall time of one whole evaluation, ms. */
  evaluationMs: number;
  /**
   * Median process CPU time (user + system) of one evaluation, ms: on wasm (one thread) the time
   * on one core, steadier than wall time on a host shared with other work.
   */
  evaluationCpuMs: number;
  /** steps × evaluationMs and steps × evaluationCpuMs: the UNet time of one image (one guided
   * evaluation per step). */
  steps: number;
  imageUnetMs: number;
  imageUnetCpuMs: number;
  /** The reference split's figures, when one was given. */
  reference?: {
    split: string;
    evaluationMs: number;
    evaluationCpuMs: number;
    blockShare: number;
    /** Median over paired evaluations of (this CPU ms) / (reference CPU ms). */
    cpuRatio: number;
  };
}

/**
 * Per-segment medians and shares from per-evaluation latencies: `runs[r][i]` is segment `i`'s ms in
 * evaluation `r`. Throws when a run's length differs from the segment list's.
 */
export function summarizeSegments(
  segments: { name: string; kind: "glue" | "block" }[],
  runs: number[][],
): {
  rows: SegmentRow[];
  blockMs: number;
  glueMs: number;
  blockShare: number;
  blockShareFastest: number;
} {
  if (runs.length === 0) throw new Error("summarizeSegments: no runs");
  for (const r of runs) {
    if (r.length !== segments.length) {
      throw new Error(
        `summarizeSegments: a run has ${r.length} latencies, ${segments.length} segments`,
      );
    }
  }
  const medians = segments.map((_, i) => median(runs.map((r) => r[i])));
  const minima = segments.map((_, i) => Math.min(...runs.map((r) => r[i])));
  const total = medians.reduce((a, b) => a + b, 0);
  const rows = segments.map((s, i) => ({
    name: s.name,
    kind: s.kind,
    medianMs: medians[i],
    minMs: minima[i],
    share: total > 0 ? medians[i] / total : 0,
  }));
  const blockMs = rows.filter((r) => r.kind === "block").reduce((a, r) => a + r.medianMs, 0);
  const minTotal = minima.reduce((a, b) => a + b, 0);
  const blockMin = rows.filter((r) => r.kind === "block").reduce((a, r) => a + r.minMs, 0);
  return {
    rows,
    blockMs,
    glueMs: total - blockMs,
    blockShare: total > 0 ? blockMs / total : 0,
    blockShareFastest: minTotal > 0 ? blockMin / minTotal : 0,
  };
}

/** One loaded split UNet with fixed random inputs, and what its measured evaluations took. */
interface Subject {
  engine: UNetEngine;
  feeds: Record<string, Tensor>;
  runs: number[][];
  totals: number[];
  cpu: number[];
}

async function subject(split: string, backend: Backend, batch: number): Promise<Subject> {
  const engine = await UNetEngine.load(split, { backend, log: () => {} });
  const next = lcg(12345);
  const feeds: Record<string, Tensor> = {};
  for (const spec of engine.inputs) {
    const dims = spec.shape.map((d) => typeof d === "number" ? d : batch);
    feeds[spec.name] = randomInput(spec, dims, next);
  }
  return { engine, feeds, runs: [], totals: [], cpu: [] };
}

async function evaluate(s: Subject, measured: boolean): Promise<void> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const out = await s.engine.run(s.feeds);
  const ms = performance.now() - t0;
  const c = process.cpuUsage(c0);
  for (const t of Object.values(out)) t.dispose();
  if (!measured) return;
  s.totals.push(ms);
  s.cpu.push((c.user + c.system) / 1000);
  s.runs.push(s.engine.timings().map((t) => t.lastMs ?? 0));
}

/**
 * Runs the split UNet `reps` times (alternating with the reference split's evaluations when one is
 * given) and reports its segments' latencies.
 */
export async function benchSegments(opts: SegmentBenchOptions): Promise<SegmentBenchResult> {
  const backend = opts.backend ?? "wasm";
  const reps = opts.reps ?? 10, warmup = opts.warmup ?? 2, batch = opts.batch ?? 2;
  const steps = opts.steps ?? 20;
  const subjects: Subject[] = [];
  try {
    subjects.push(await subject(opts.split, backend, batch));
    if (opts.reference) subjects.push(await subject(opts.reference, backend, batch));
    for (let i = 0; i < warmup + reps; i++) {
      // alternate which runs first, so a slow drift in host load hits both alike
      const order = i % 2 ? [...subjects].reverse() : subjects;
      for (const s of order) await evaluate(s, i >= warmup);
    }
    const [main, ref] = subjects;
    const segments = main.engine.timings().map((t) => ({ name: t.name, kind: t.kind }));
    const sum = summarizeSegments(segments, main.runs);
    const evaluationMs = median(main.totals), evaluationCpuMs = median(main.cpu);
    const result: SegmentBenchResult = {
      bench: "segments",
      date: new Date().toISOString(),
      machine: machineDescription(),
      split: opts.split,
      backend: main.engine.backend,
      batch,
      reps,
      segments: sum.rows,
      blockMs: sum.blockMs,
      glueMs: sum.glueMs,
      blockShare: sum.blockShare,
      blockShareFastest: sum.blockShareFastest,
      evaluationMs,
      evaluationCpuMs,
      steps,
      imageUnetMs: steps * evaluationMs,
      imageUnetCpuMs: steps * evaluationCpuMs,
    };
    if (ref) {
      result.reference = {
        split: opts.reference!,
        evaluationMs: median(ref.totals),
        evaluationCpuMs: median(ref.cpu),
        blockShare: summarizeSegments(
          ref.engine.timings().map((t) => ({ name: t.name, kind: t.kind })),
          ref.runs,
        ).blockShare,
        cpuRatio: median(main.cpu.map((c, i) => c / ref.cpu[i])),
      };
    }
    return result;
  } finally {
    for (const s of subjects) await s.engine.release();
  }
}

/** A table of a {@link benchSegments} result. */
export function formatSegmentBench(r: SegmentBenchResult): string {
  const lines = [
    `segments of ${r.split} on ${r.backend}, batch ${r.batch}, medians of ${r.reps} evaluations (${r.machine})`,
    `  ${"segment".padEnd(36)} ${"kind".padEnd(5)} ${"median ms".padStart(9)} ${
      "min ms".padStart(8)
    } ${"share".padStart(6)}`,
  ];
  for (const s of r.segments) {
    lines.push(
      `  ${s.name.padEnd(36)} ${s.kind.padEnd(5)} ${s.medianMs.toFixed(2).padStart(9)} ${
        s.minMs.toFixed(2).padStart(8)
      } ${(100 * s.share).toFixed(1).padStart(5)}%`,
    );
  }
  lines.push(
    `  blocks ${r.blockMs.toFixed(1)} ms, glue ${r.glueMs.toFixed(1)} ms: blocks' share ${
      (100 * r.blockShare).toFixed(1)
    }% (from the fastest runs ${(100 * r.blockShareFastest).toFixed(1)}%)`,
    `  one evaluation ${r.evaluationMs.toFixed(1)} ms wall, ${
      r.evaluationCpuMs.toFixed(1)
    } ms CPU; ${r.steps} steps: UNet ${r.imageUnetMs.toFixed(0)} ms wall, ${
      r.imageUnetCpuMs.toFixed(0)
    } ms CPU per image`,
  );
  if (r.reference) {
    lines.push(
      `  reference ${r.reference.split}: one evaluation ${
        r.reference.evaluationMs.toFixed(1)
      } ms wall, ${r.reference.evaluationCpuMs.toFixed(1)} ms CPU, blocks' share ${
        (100 * r.reference.blockShare).toFixed(1)
      }%; CPU ratio (paired medians) ${r.reference.cpuRatio.toFixed(3)}`,
    );
  }
  return lines.join("\n");
}

/** Parses the bench's flags; throws {@link UsageError} naming the bad flag. */
export function segmentBenchOptions(args: string[]): SegmentBenchOptions & { json: boolean } {
  const { flags, positional } = parseFlags(args, {
    split: "string",
    backend: "string",
    reps: "int",
    warmup: "int",
    batch: "int",
    steps: "int",
    reference: "string",
    json: "boolean",
  });
  noPositionals(positional);
  if (!flags.split) throw new UsageError("--split is required (a split UNet folder)");
  for (const [name, min] of [["reps", 1], ["warmup", 0], ["batch", 1], ["steps", 1]] as const) {
    const v = flags[name] as number | undefined;
    if (v !== undefined && v < min) throw new UsageError(`--${name} must be at least ${min}`);
  }
  return {
    split: String(flags.split),
    backend: benchBackend(flags.backend),
    reps: flags.reps as number | undefined,
    warmup: flags.warmup as number | undefined,
    batch: flags.batch as number | undefined,
    steps: flags.steps as number | undefined,
    reference: flags.reference as string | undefined,
    json: flags.json === true,
  };
}

if (import.meta.main) {
  try {
    const { json, ...opts } = segmentBenchOptions(Deno.args);
    const r = await benchSegments(opts);
    console.log(json ? JSON.stringify(r, null, 1) : formatSegmentBench(r));
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(
        `${e.message}\nusage: deno run -A bench/segments.ts --split DIR [--reference DIR] ` +
          `[--backend wasm|webgpu] [--reps 10] [--warmup 2] [--batch 2] [--steps 20] [--json]`,
      );
      Deno.exit(2);
    }
    throw e;
  }
}

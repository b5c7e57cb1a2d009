/**
 * Benchmark: one full, uncached UNet evaluation as a single monolithic session vs. the
 * block-split UNet, on the same backend in the same process. Repetitions are interleaved
 * (alternating which runs first) and each side's median is taken; the ratio is split/monolithic.
 * Goal: the split UNet costs at most 3% more than the monolithic session on wasm.
 *
 * A third side, `coarse`, is the same model split with only `mid_block.attentions.0` cacheable (3
 * segments instead of 15) and run by the same engine with the same options (static shapes, and on
 * WebGPU captured replays): what fewer segment boundaries buy when nothing else changes.
 *
 *   deno run -A bench/split.ts [--model m.onnx] [--split dir] [--reps 30] [--backend wasm]
 *     [--batch 2] [--latent 64]
 *
 * The inputs take the model's real sizes: the export's fixed latent size, else `sample_size` of
 * the `config.json` beside it (`--latent` overrides), batch 2, 77 text tokens where symbolic.
 *
 * @module
 */

import process from "node:process";
import { noPositionals, parseFlags, UsageError } from "../lib/cli/flags.ts";
import { decodeModel } from "../lib/onnx/model.ts";
import { EXPORT_CONFIG, splitModel } from "../lib/onnx/split.ts";
import { type Backend, resolveBackend } from "../lib/runtime/backend.ts";
import { createSession, serialized } from "../lib/runtime/session.ts";
import { ort, type Tensor } from "../lib/runtime/ort.ts";
import { numericTensor } from "../lib/runtime/tensors.ts";
import { UNetEngine } from "../lib/unet/engine.ts";
import type { TensorSpec } from "../lib/unet/split_manifest.ts";
import { type LatentShape, sizeSupport } from "../lib/model/sizes.ts";
import { unetInputShapes } from "../lib/model/unet_inputs.ts";
import { benchBackend } from "./pipeline.ts";
import { lcg, median } from "./stats.ts";

/** Options of {@link benchSplit}. */
export interface BenchSplitOptions {
  /** Monolithic ONNX model (default: the test fixture). */
  model?: string;
  /** An existing split folder of that model; split into a temporary folder when absent. */
  split?: string;
  /** Measured repetitions per side (default 30). */
  reps?: number;
  /** Unmeasured warm-up runs per side (default 3). */
  warmup?: number;
  /** Backend (default wasm, the goal's backend). */
  backend?: Backend;
  /** UNet batch (default 2: a CFG pair). */
  batch?: number;
  /**
   * Latent height and width (default: the model's native latent size, from the export's fixed
   * dims or the `config.json` beside it, as `lib/model/sizes.ts` reads a folder).
   */
  latent?: LatentShape;
  /** Text tokens where the export leaves them symbolic (default 77, CLIP's). */
  sequence?: number;
  log?: (line: string) => void;
}

/** What {@link benchSplit} measured (milliseconds). */
export interface BenchSplitResult {
  model: string;
  backend: Backend;
  reps: number;
  segments: number;
  blocks: number;
  monolithicMs: number;
  splitMs: number;
  /** splitMs / monolithicMs. */
  ratio: number;
  /** Median ms and CPU ms of the coarse plan (3 segments, see the module doc) and its segments. */
  coarseMs: number;
  coarseCpuMs: number;
  coarseSegments: number;
  /**
   * Median of the per-repetition ratios split/monolithic (each pair runs back to back), which
   * cancels slow changes in host load better than the ratio of medians.
   */
  pairedRatio: number;
  /** (ratio − 1) · 100. */
  overheadPct: number;
  /** Fastest single runs (less sensitive to a busy host than medians). */
  monolithicMinMs: number;
  splitMinMs: number;
  /**
   * Median process CPU time per evaluation (user + system, all threads). On a host shared with
   * other work this is the steadier figure: waiting for the CPU does not count.
   */
  monolithicCpuMs: number;
  splitCpuMs: number;
  /** splitCpuMs / monolithicCpuMs. */
  cpuRatio: number;
  monolithicRuns: number[];
  splitRuns: number[];
}

/**
 * A deterministic input for a UNet input spec of `dims`: floats come from `next`, the timestep
 * (any of its contracts) is a mid-schedule 500.
 */
export function randomInput(spec: TensorSpec, dims: number[], next: () => number): Tensor {
  const n = dims.reduce((a, b) => a * b, 1);
  if (spec.name !== "timestep" && spec.dtype === "float32") {
    return new ort.Tensor("float32", Float32Array.from({ length: n }, next), dims);
  }
  // the timestep (any of its contracts): a mid-schedule value
  return numericTensor(new Array(n).fill(500), dims, spec.dtype);
}

/** The native latent size of a UNet export: its fixed dims, else `config.json` beside it. */
async function nativeLatent(model: string, inputs: TensorSpec[]): Promise<LatentShape> {
  const dir = model.includes("/") ? model.slice(0, model.lastIndexOf("/")) : ".";
  let unetConfig: Record<string, unknown> | undefined;
  try {
    unetConfig = JSON.parse(await Deno.readTextFile(`${dir}/${EXPORT_CONFIG}`));
  } catch { /* a fixed-size export needs none */ }
  const sample = inputs.find((i) => i.name === "sample");
  const fixed = (i: number) =>
    typeof sample?.shape[i] === "number" ? sample.shape[i] as number : null;
  const s = sizeSupport({
    latentHeight: fixed(2),
    latentWidth: fixed(3),
    unetConfig,
    hasVae: false,
  });
  return { height: s.native.height, width: s.native.width };
}

/** Measures monolithic vs. split evaluation time of one model. */
export async function benchSplit(opts: BenchSplitOptions = {}): Promise<BenchSplitResult> {
  const log = opts.log ?? console.log;
  const model = opts.model ?? new URL("../tests/fixtures/tiny_unet.onnx", import.meta.url).pathname;
  const reps = opts.reps ?? 30;
  const warmup = opts.warmup ?? 3;
  const backend = opts.backend ?? "wasm";
  await resolveBackend(backend, log);
  const tmp = await Deno.makeTempDir({ prefix: "bench-split-" });
  let splitDir = opts.split;
  if (!splitDir) {
    splitDir = `${tmp}/split`;
    await splitModel(model, { out: splitDir });
  }
  const coarseDir = `${tmp}/coarse`;
  await splitModel(model, { out: coarseDir, blockPattern: "^mid_block\\.attentions\\.0$" });
  try {
    const engine = await UNetEngine.load(splitDir, { backend, log: () => {} });
    const coarse = await UNetEngine.load(coarseDir, { backend, log: () => {} });
    const modelBytes = await Deno.readFile(model);
    const dir = model.includes("/") ? model.slice(0, model.lastIndexOf("/")) : ".";
    const external = await externalFilesOf(dir, modelBytes);
    const mono = await createSession(modelBytes, backend, { externalData: external });
    const next = lcg(12345);
    const latent = opts.latent ?? await nativeLatent(model, engine.inputs);
    const shapes = unetInputShapes(engine.inputs, {
      batch: opts.batch ?? 2,
      latentHeight: latent.height,
      latentWidth: latent.width,
      channels: 4,
      sequence: opts.sequence ?? 77,
    });
    log(
      `inputs: ${[...shapes].map(([name, dims]) => `${name} [${dims.join(", ")}]`).join(", ")}`,
    );
    const feeds: Record<string, Tensor> = {};
    for (const spec of engine.inputs) {
      feeds[spec.name] = randomInput(spec, shapes.get(spec.name)!, next);
    }
    const timed = async (fn: () => Promise<void>, wall: number[], cpu: number[]) => {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      await fn();
      wall.push(performance.now() - t0);
      const c = process.cpuUsage(c0);
      cpu.push((c.user + c.system) / 1000);
    };
    const m: number[] = [], s: number[] = [], mc: number[] = [], sc: number[] = [];
    const k: number[] = [], kc: number[] = [];
    const runMono = () =>
      timed(
        () =>
          serialized(async () => {
            const out = await mono.run(feeds);
            for (const t of Object.values(out)) t.dispose();
          }),
        m,
        mc,
      );
    const runSplit = () =>
      timed(
        async () => {
          const out = await engine.run(feeds);
          for (const t of Object.values(out)) t.dispose();
        },
        s,
        sc,
      );
    const runCoarse = () =>
      timed(
        async () => {
          const out = await coarse.run(feeds);
          for (const t of Object.values(out)) t.dispose();
        },
        k,
        kc,
      );
    for (let i = 0; i < warmup; i++) await runMono(), await runSplit(), await runCoarse();
    for (const list of [m, s, mc, sc, k, kc]) list.length = 0;
    for (let i = 0; i < reps; i++) {
      if (i % 2 === 0) await runMono(), await runSplit(), await runCoarse();
      else await runCoarse(), await runSplit(), await runMono();
    }
    const result: BenchSplitResult = {
      model,
      backend,
      reps,
      segments: engine.manifest.segments.length,
      blocks: engine.blocks.length,
      monolithicMs: median(m),
      splitMs: median(s),
      ratio: median(s) / median(m),
      coarseMs: median(k),
      coarseCpuMs: median(kc),
      coarseSegments: coarse.manifest.segments.length,
      pairedRatio: median(s.map((x, i) => x / m[i])),
      overheadPct: (median(s) / median(m) - 1) * 100,
      monolithicMinMs: Math.min(...m),
      splitMinMs: Math.min(...s),
      monolithicCpuMs: median(mc),
      splitCpuMs: median(sc),
      cpuRatio: median(sc) / median(mc),
      monolithicRuns: m,
      splitRuns: s,
    };
    await engine.release();
    await coarse.release();
    await mono.release();
    return result;
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

/** The external data files a model's tensors name, read for ORT (`externalData`). */
async function externalFilesOf(
  dir: string,
  model: Uint8Array,
): Promise<{ path: string; data: Uint8Array }[]> {
  const m = decodeModel(model);
  const locations = new Set<string>();
  for (const t of m.graph.initializer) {
    const loc = t.externalData?.find((e) => e.key === "location")?.value;
    if (t.dataLocation === 1 && loc) locations.add(loc);
  }
  const out = [];
  for (const loc of locations) out.push({ path: loc, data: await Deno.readFile(`${dir}/${loc}`) });
  return out;
}

/** A short human-readable report of a {@link benchSplit} result. */
export function formatBenchSplit(r: BenchSplitResult): string {
  const pct = (x: number) => `${x >= 0 ? "+" : ""}${x.toFixed(1)}%`;
  return [
    `split vs monolithic UNet evaluation on ${r.backend}: ${r.model}`,
    `  ${r.segments} segments (${r.blocks} cacheable blocks), ${r.reps} interleaved repetitions`,
    `  median wall time: monolithic ${r.monolithicMs.toFixed(2)} ms, split ${
      r.splitMs.toFixed(2)
    } ms, ` +
    `ratio ${r.ratio.toFixed(3)} (${pct(r.overheadPct)}; goal <= +3%)`,
    `  median CPU time:  monolithic ${r.monolithicCpuMs.toFixed(2)} ms, split ${
      r.splitCpuMs.toFixed(2)
    } ms, ` +
    `ratio ${r.cpuRatio.toFixed(3)} (${pct((r.cpuRatio - 1) * 100)})`,
    `  median of per-repetition ratios: ${r.pairedRatio.toFixed(3)} (${
      pct((r.pairedRatio - 1) * 100)
    })`,
    `  fastest run:      monolithic ${r.monolithicMinMs.toFixed(2)} ms, split ${
      r.splitMinMs.toFixed(2)
    } ms ` +
    `(${pct((r.splitMinMs / r.monolithicMinMs - 1) * 100)})`,
    `  coarse plan (${r.coarseSegments} segments, same engine): ${r.coarseMs.toFixed(2)} ms, ` +
    `CPU ${r.coarseCpuMs.toFixed(2)} ms (split/coarse ${(r.splitMs / r.coarseMs).toFixed(3)})`,
  ].join("\n");
}

/**
 * The benchmark's flags (`--model`, `--split`, `--reps`, `--backend`, `--batch`, `--latent`) as
 * {@link BenchSplitOptions}; throws {@link UsageError} naming the bad flag.
 */
export function splitBenchOptions(args: string[]): BenchSplitOptions {
  const { flags, positional } = parseFlags(args, {
    model: "string",
    split: "string",
    reps: "int",
    backend: "string",
    batch: "int",
    latent: "int",
  });
  noPositionals(positional);
  const latent = flags.latent as number | undefined;
  return {
    model: flags.model as string | undefined,
    split: flags.split as string | undefined,
    reps: flags.reps as number | undefined,
    backend: benchBackend(flags.backend),
    batch: flags.batch as number | undefined,
    latent: latent === undefined ? undefined : { height: latent, width: latent },
  };
}

if (import.meta.main) {
  try {
    console.log(formatBenchSplit(await benchSplit(splitBenchOptions(Deno.args))));
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(
      `${e.message}\nusage: deno run -A bench/split.ts [--model m.onnx] [--split dir] [--reps 30] ` +
        `[--backend wasm|webgpu] [--batch 2] [--latent 64]`,
    );
    Deno.exit(2);
  }
}

/**
 * `deno task bench gpu`: the UNet engine's fast paths against the previous configuration, on one
 * backend, every variant loaded in this process and measured interleaved (round-robin, starting
 * variant rotated each round) so drift hits all alike.
 *
 * Per variant:
 * - ms per UNet evaluation (one guided image: batch 2; `Pipeline.evalUNet`, so the upload of the
 *   latent, the read-back of the output and guidance are in), median;
 * - on WebGPU, API calls per evaluation: compute dispatches, `writeBuffer` calls and bytes,
 *   submits, read-backs (`mapAsync`), buffer copies and bind groups, counted by wrapping the WebGPU
 *   prototypes in this process (bench/gpu_calls.ts; works on lavapipe, counts do not depend on the
 *   adapter's speed);
 * - the optimized graphs' node count per execution provider (bench/gpu_nodes.ts; `--nodes=false`
 *   skips it): what runs per evaluation once onnxruntime has folded what it can;
 * - with `--images N` (N > 0): ms per image end to end and UNet ms per evaluation, uncached and
 *   with a shipped schedule (`--schedule`, default the one that skips ~60% of block evaluations).
 *
 * Variants (`--variants`, comma-separated; default all that apply to the backend):
 * - `before`: symbolic shapes, 8-bit weights dequantized on every run, no graph capture (the
 *   engine's configuration before issue #13);
 * - `static`: static shapes only; `float32`: load-time dequantization only;
 * - `static+float32`: both (the wasm default);
 * - WebGPU: `static+float16` (float16 mixed precision), `captured` (static + float32 + graph
 *   capture: the WebGPU default), `captured+float16`.
 *
 *   deno task bench gpu [--backend webgpu|wasm (default: webgpu where there is an adapter)] [--evals 5] [--rounds 3] [--images 0]
 *     [--steps 20] [--solver dpm] [--schedule NAME] [--variants a,b] [--nodes=false] [--model DIR]
 *     [--out FILE]
 *
 * @module
 */
import process from "node:process";
import { noPositionals, parseFlags, UsageError } from "../lib/cli/flags.ts";
import { writeFileAtomic } from "../lib/io/atomic.ts";
import { type Embeddings, Pipeline } from "../lib/pipeline/pipeline.ts";
import type { SolverName } from "../lib/pipeline/types.ts";
import { type Backend, probeWebGpu } from "../lib/runtime/backend.ts";
import { createSolver } from "../lib/solvers/mod.ts";
import { SOLVERS } from "../lib/solvers/solver.ts";
import { gaussianNoise } from "../lib/solvers/noise.ts";
import type { EngineOptions } from "../lib/unet/engine.ts";
import { countGpuCalls, type GpuCallCounter, type GpuCalls } from "./gpu_calls.ts";
import { type NodeCounts, optimizedNodeCounts } from "./gpu_nodes.ts";
import { machineDescription } from "./machine.ts";
import { median } from "./stats.ts";

type EngineVariant = Omit<EngineOptions, "backend" | "log">;

/** The engine configurations the benchmark knows, by name. */
export const ENGINE_VARIANTS: Record<string, { options: EngineVariant; webgpuOnly?: true }> = {
  before: { options: { staticShapes: false, weights: "stored", graphCapture: false } },
  static: { options: { staticShapes: true, weights: "stored", graphCapture: false } },
  float32: { options: { staticShapes: false, weights: "float32", graphCapture: false } },
  "static+float32": { options: { staticShapes: true, weights: "float32", graphCapture: false } },
  "static+float16": {
    options: { staticShapes: true, weights: "float16", graphCapture: false },
    webgpuOnly: true,
  },
  captured: {
    options: { staticShapes: true, weights: "float32", graphCapture: true },
    webgpuOnly: true,
  },
  "captured+float16": {
    options: { staticShapes: true, weights: "float16", graphCapture: true },
    webgpuOnly: true,
  },
};

/** Options of {@link benchEngine}. */
export interface BenchEngineOptions {
  model: string;
  backend: Backend;
  variants: string[];
  /** Timed evaluations per variant per round. */
  evals: number;
  rounds: number;
  /** Images per plan per round (0: none). */
  images: number;
  steps: number;
  solver: SolverName;
  /** Shipped schedule for the cached image (default: the one skipping closest to 60%). */
  schedule?: string;
  /** Also count the optimized graphs' nodes per execution provider (child processes). */
  nodes: boolean;
  log?: (line: string) => void;
}

/** One variant's figures. */
export interface BenchEngineRow {
  variant: string;
  options: EngineVariant;
  /** Segments captured / segments, per session set alive after the run. */
  captured: string;
  /** Median ms per UNet evaluation (batch 2). */
  eval_ms: number;
  /** Fastest evaluation. */
  eval_min_ms: number;
  /**
   * Median process CPU time per evaluation (user + system, all threads: lavapipe's included). On a
   * shared host the steadier figure: waiting for a core does not count.
   */
  eval_cpu_ms: number;
  /** WebGPU calls per evaluation (WebGPU only). */
  calls?: GpuCalls;
  /** Nodes of the optimized segment graphs per execution provider, summed (bench/gpu_nodes.ts). */
  optimized_nodes?: NodeCounts;
  /**
   * Median ms per image and per UNet evaluation within an image, and process CPU ms per image
   * (images > 0), uncached and with the schedule.
   */
  image_ms?: number;
  image_eval_ms?: number;
  image_cpu_ms?: number;
  cached_image_ms?: number;
  cached_image_eval_ms?: number;
  cached_image_cpu_ms?: number;
}

/** What {@link benchEngine} measured. */
export interface BenchEngineResult {
  bench: "gpu";
  date: string;
  model: string;
  backend: Backend;
  adapter: string | null;
  machine: string;
  solver: SolverName;
  steps: number;
  schedule: string | null;
  evals: number;
  rounds: number;
  images: number;
  rows: BenchEngineRow[];
}

const round1 = (x: number) => Math.round(x * 10) / 10;

/** Loads every variant of the model on the backend and measures them interleaved. */
export async function benchEngine(opts: BenchEngineOptions): Promise<BenchEngineResult> {
  const log = opts.log ?? console.error;
  const counter: GpuCallCounter | undefined = opts.backend === "webgpu"
    ? countGpuCalls()
    : undefined;
  const loaded: { name: string; p: Pipeline; emb: Embeddings }[] = [];
  try {
    for (const name of opts.variants) {
      const v = ENGINE_VARIANTS[name];
      log(`loading ${name}`);
      const p = await Pipeline.load(opts.model, {
        backend: opts.backend,
        log: (l) => log(`  ${l}`),
        engine: v.options,
      });
      const emb = await p.encodePrompts(["a red apple"], [""], true);
      loaded.push({ name, p, emb });
    }
    const first = loaded[0].p;
    const solver = createSolver(opts.solver, first.model.scheduler, opts.steps);
    const shipped = first.schedules.for(opts.solver, opts.steps);
    const schedule = opts.images === 0 ? null : opts.schedule ??
      [...shipped].sort((a, b) =>
        Math.abs(a.skippedFraction - 0.6) - Math.abs(b.skippedFraction - 0.6)
      )[0]?.name ?? null;
    const latent = gaussianNoise(1, first.latentLength);
    const evalTimes = new Map(loaded.map((l) => [l.name, [] as number[]]));
    const evalCpu = new Map(loaded.map((l) => [l.name, [] as number[]]));
    const calls = new Map<string, GpuCalls>();
    type ImageTimes = Record<"none" | "noneUnet" | "noneCpu" | "c" | "cUnet" | "cCpu", number[]>;
    const images = new Map<string, ImageTimes>(loaded.map((l) => [l.name, {
      none: [],
      noneUnet: [],
      noneCpu: [],
      c: [],
      cUnet: [],
      cCpu: [],
    }]));
    const evaluate = (l: (typeof loaded)[0], k: number) =>
      // a fresh latent array each time, as the solver hands one per step
      l.p.evalUNet(latent.slice(), solver.timesteps[k % opts.steps], l.emb, undefined, 4);
    const image = (l: (typeof loaded)[0], cache: string, seed: number) =>
      l.p.generate({
        prompt: "a red apple",
        negativePrompt: "",
        seed,
        steps: opts.steps,
        guidanceScale: 4,
        solver: opts.solver,
        cache,
      });
    // warm-up: shader compilation, capture, first-run allocations
    for (const l of loaded) {
      for (let k = 0; k < 2; k++) await evaluate(l, k);
      if (opts.images > 0) {
        await image(l, "none", 0);
        if (schedule) await image(l, schedule, 0);
      }
    }
    for (let r = 0; r < opts.rounds; r++) {
      log(`round ${r + 1}/${opts.rounds}`);
      for (let j = 0; j < loaded.length; j++) {
        const l = loaded[(j + r) % loaded.length];
        counter?.reset();
        for (let k = 0; k < opts.evals; k++) {
          const t0 = performance.now();
          const c0 = process.cpuUsage();
          await evaluate(l, k);
          const c1 = process.cpuUsage(c0);
          evalTimes.get(l.name)!.push(performance.now() - t0);
          evalCpu.get(l.name)!.push((c1.user + c1.system) / 1000);
        }
        if (counter) {
          const c = counter.read();
          const per = Object.fromEntries(
            Object.entries(c).map(([key, n]) => [key, n / opts.evals]),
          ) as unknown as GpuCalls;
          // counts are identical round to round; the last round's are reported
          calls.set(l.name, per);
        }
        for (let i = 0; i < opts.images; i++) {
          const seed = 100 + r * opts.images + i;
          const m = images.get(l.name)!;
          for (const [cache, key] of [["none", "none"], [schedule, "c"]] as const) {
            if (!cache) continue;
            const t0 = performance.now();
            const c0 = process.cpuUsage();
            const res = await image(l, cache, seed);
            const c1 = process.cpuUsage(c0);
            m[key].push(performance.now() - t0);
            m[`${key}Unet`].push(res.timings.unetMs / opts.steps);
            m[`${key}Cpu`].push((c1.user + c1.system) / 1000);
          }
        }
      }
    }
    const nodes = new Map<string, NodeCounts>();
    if (opts.nodes) {
      for (const l of loaded) {
        const status = l.p.unet.status();
        const key = `${status.weights}/${status.staticShapes}`;
        if (!nodes.has(key)) {
          log(`counting optimized nodes (${key})`);
          nodes.set(
            key,
            await optimizedNodeCounts(
              l.p.model.unetDir,
              opts.backend,
              status.weights,
              status.staticShapes,
            ),
          );
        }
      }
    }
    const rows = loaded.map((l): BenchEngineRow => {
      const times = evalTimes.get(l.name)!;
      const status = l.p.unet.status();
      const row: BenchEngineRow = {
        variant: l.name,
        options: ENGINE_VARIANTS[l.name].options,
        captured: status.shapes.map((s) => `${s.key}: ${s.captured}/${s.segments}`).join("; "),
        eval_ms: round1(median(times)),
        eval_min_ms: round1(Math.min(...times)),
        eval_cpu_ms: round1(median(evalCpu.get(l.name)!)),
      };
      const n = nodes.get(`${status.weights}/${status.staticShapes}`);
      if (n) row.optimized_nodes = n;
      const c = calls.get(l.name);
      if (c) row.calls = c;
      if (opts.images > 0) {
        const m = images.get(l.name)!;
        row.image_ms = round1(median(m.none));
        row.image_eval_ms = round1(median(m.noneUnet));
        row.image_cpu_ms = round1(median(m.noneCpu));
        if (schedule) {
          row.cached_image_ms = round1(median(m.c));
          row.cached_image_eval_ms = round1(median(m.cUnet));
          row.cached_image_cpu_ms = round1(median(m.cCpu));
        }
      }
      return row;
    });
    return {
      bench: "gpu",
      date: new Date().toISOString(),
      model: first.model.name,
      backend: opts.backend,
      adapter: opts.backend === "webgpu" ? (await probeWebGpu()) ?? null : null,
      machine: machineDescription(),
      solver: opts.solver,
      steps: opts.steps,
      schedule,
      evals: opts.evals,
      rounds: opts.rounds,
      images: opts.images,
      rows,
    };
  } finally {
    for (const l of loaded) {
      l.emb.tensor.dispose();
      await l.p.release();
    }
    counter?.stop();
  }
}

/** The result as a Markdown table. */
export function formatBenchEngine(r: BenchEngineResult): string {
  const gpu = r.backend === "webgpu";
  const imgs = r.images > 0;
  const head = [
    "variant",
    "ms/eval",
    "min",
    "CPU ms/eval",
    ...(r.rows.some((x) => x.optimized_nodes) ? ["graph nodes (EP)"] : []),
    ...(gpu ? ["dispatches", "writeBuffer", "bytes", "submits", "read-backs", "copies"] : []),
    ...(imgs
      ? [
        "ms/image",
        "CPU ms/image",
        "ms/eval in image",
        `ms/image ${r.schedule}`,
        "CPU ms/image cached",
        "ms/eval cached",
      ]
      : []),
    ...(gpu ? ["captured"] : []),
  ];
  const lines = r.rows.map((x) => {
    const c = x.calls;
    const cells = [
      x.variant,
      x.eval_ms.toFixed(1),
      x.eval_min_ms.toFixed(1),
      x.eval_cpu_ms.toFixed(1),
      ...(r.rows.some((y) => y.optimized_nodes)
        ? [
          Object.entries(x.optimized_nodes ?? {}).map(([ep, n]) =>
            `${n} ${ep.replace("ExecutionProvider", "")}`
          ).join(", ") || "—",
        ]
        : []),
      ...(gpu && c
        ? [c.dispatches, c.writeBuffers, c.writeBytes, c.submits, c.readBacks, c.copies].map((n) =>
          String(Math.round(n * 10) / 10)
        )
        : []),
      ...(imgs
        ? [
          x.image_ms,
          x.image_cpu_ms,
          x.image_eval_ms,
          x.cached_image_ms,
          x.cached_image_cpu_ms,
          x.cached_image_eval_ms,
        ].map((n) => n === undefined ? "—" : n.toFixed(1))
        : []),
      ...(gpu ? [x.captured] : []),
    ];
    return `| ${cells.join(" | ")} |`;
  });
  return [
    `${r.model} on ${r.backend}${r.adapter ? ` (${r.adapter})` : ""}; one guided image per ` +
    `evaluation (batch 2); medians of ${r.rounds} interleaved rounds × ${r.evals} evaluations` +
    (imgs ? ` and ${r.rounds} × ${r.images} images (${r.solver} ${r.steps} steps)` : "") +
    `; ${r.machine}`,
    "",
    `| ${head.join(" | ")} |`,
    `| ${head.map(() => "---").join(" | ")} |`,
    ...lines,
  ].join("\n");
}

/** Parses the benchmark's flags (throws {@link UsageError}). */
export function benchEngineOptions(
  args: string[],
  defaultBackend: Backend = "webgpu",
): BenchEngineOptions & { out?: string } {
  const { flags, positional } = parseFlags(args, {
    backend: "string",
    evals: "int",
    rounds: "int",
    images: "int",
    steps: "int",
    solver: "string",
    schedule: "string",
    variants: "string",
    nodes: "boolean",
    model: "string",
    out: "string",
  });
  noPositionals(positional);
  const backend = String(flags.backend ?? defaultBackend);
  if (backend !== "webgpu" && backend !== "wasm") {
    throw new UsageError(`--backend must be webgpu or wasm, got "${backend}"`);
  }
  const known = Object.keys(ENGINE_VARIANTS).filter((k) =>
    backend === "webgpu" || !ENGINE_VARIANTS[k].webgpuOnly
  );
  const variants = flags.variants === undefined
    ? known
    : String(flags.variants).split(",").map((s) => s.trim()).filter((s) => s);
  for (const v of variants) {
    if (!known.includes(v)) {
      throw new UsageError(
        `--variants: unknown variant "${v}" on ${backend} (${known.join(", ")})`,
      );
    }
  }
  if (variants.length === 0) throw new UsageError("--variants names no variant");
  const int = (name: string, fallback: number, min: number, max: number) => {
    const v = (flags[name] as number | undefined) ?? fallback;
    if (v < min || v > max) throw new UsageError(`--${name} must be between ${min} and ${max}`);
    return v;
  };
  const solver = String(flags.solver ?? "dpm") as SolverName;
  if (!SOLVERS.includes(solver)) {
    throw new UsageError("--solver must be one of dpm, ddim, euler");
  }
  return {
    model: (flags.model as string | undefined) ??
      new URL("../models/emoji-ldm", import.meta.url).pathname,
    backend,
    variants,
    evals: int("evals", 5, 1, 1000),
    rounds: int("rounds", 3, 1, 100),
    images: int("images", 0, 0, 100),
    steps: int("steps", 20, 1, 1000),
    solver,
    schedule: flags.schedule as string | undefined,
    nodes: flags.nodes !== false,
    out: flags.out as string | undefined,
  };
}

/**
 * `deno task bench gpu …`: runs, prints the table, writes the JSON (default
 * `bench/results/gpu_<backend>.json`). Without `--backend`: WebGPU where there is an adapter.
 */
export async function runBenchEngine(args: string[]): Promise<void> {
  const { out, ...opts } = benchEngineOptions(args, (await probeWebGpu()) ? "webgpu" : "wasm");
  const r = await benchEngine(opts);
  console.log(formatBenchEngine(r));
  const path = out ?? new URL(`./results/gpu_${r.backend}.json`, import.meta.url).pathname;
  await writeFileAtomic(path, JSON.stringify(r, null, 1) + "\n");
  console.log(`written to ${path}`);
}

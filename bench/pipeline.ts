/**
 * Benchmark: end-to-end prompt → PNG on one backend (default wasm) for the default model at 20
 * steps with classifier-free guidance, per solver (default dpm and ddim, uncached): images per
 * second and the time of each stage (text encoder, UNet, decoder), medians of N runs after a
 * warm-up, the solvers' runs interleaved. Each run is also predicted beforehand by the service's
 * generator, so the report says how well the planner's predictions match reality.
 *
 *   deno run -A bench/pipeline.ts [--runs 5] [--warmup 1] [--steps 20] [--guidance 4]
 *     [--solvers dpm,ddim] [--backend wasm] [--model models/emoji-ldm] [--json]
 *
 * @module
 */
import { writeFileAtomic } from "../lib/io/atomic.ts";
import { parseFlags, UsageError } from "../lib/cli/flags.ts";
import { Pipeline } from "../lib/pipeline/pipeline.ts";
import { SOLVERS } from "../lib/pipeline/request.ts";
import { PipelineGenerator } from "../lib/pipeline/service.ts";
import { isGuided } from "../lib/solvers/guidance.ts";
import type { GenerateRequest, SolverName } from "../lib/pipeline/types.ts";
import { type Backend, BACKEND_CHOICES } from "../lib/runtime/backend.ts";
import { machineDescription } from "./machine.ts";
import { median } from "./stats.ts";

/** Options of {@link benchPipeline}. */
export interface PipelineBenchOptions {
  /** Model folder (default the shipped models/emoji-ldm). */
  modelDir?: string;
  /** Backend (default wasm). */
  backend?: Backend;
  /** Denoising steps (default 20). */
  steps?: number;
  /** Guidance scale (default 4: guided, a CFG batch of 2). */
  guidance?: number;
  /** Solvers, each one row (default dpm and ddim). */
  solvers?: SolverName[];
  /** Measured runs per solver (default 5). */
  runs?: number;
  /** Unmeasured runs per solver first (default 1). */
  warmup?: number;
  log?: (line: string) => void;
}

/** Median stage times of one configuration, in ms. */
export interface StageMedians {
  textEncoderMs: number;
  unetMs: number;
  decoderMs: number;
  totalMs: number;
}

/** One configuration's figures. */
export interface PipelineBenchRow {
  solver: SolverName;
  steps: number;
  guidance: number;
  runs: number;
  /** 1000 / median total ms (one image at a time). */
  imagesPerSecond: number;
  median: StageMedians;
  /** Median UNet time per step. */
  unetPerStepMs: number;
  /** Median of (predicted before the run) / (measured total); 1 = exact. */
  predictedOverActual: number;
  /** Every measured run's total ms. */
  totalsMs: number[];
}

/** What {@link benchPipeline} measured. */
export interface PipelineBenchResult {
  bench: "pipeline";
  date: string;
  machine: string;
  model: string;
  backend: Backend;
  rows: PipelineBenchRow[];
}

const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

const PROMPTS = ["google red apple", "twitter grinning face", "apple red heart"];

/** Measures end-to-end generation (see the module doc). */
export async function benchPipeline(opts: PipelineBenchOptions = {}): Promise<PipelineBenchResult> {
  const log = opts.log ?? console.log;
  const modelDir = opts.modelDir ?? new URL("../models/emoji-ldm", import.meta.url).pathname;
  const backend = opts.backend ?? "wasm";
  const steps = opts.steps ?? 20;
  const guidance = opts.guidance ?? 4;
  const solvers = opts.solvers ?? ["dpm", "ddim"];
  const runs = opts.runs ?? 5;
  const warmup = opts.warmup ?? 1;
  if (runs < 1) throw new Error("runs must be at least 1");
  const pipeline = await Pipeline.load(modelDir, { backend, log: () => {} });
  const gen = new PipelineGenerator([pipeline]);
  const model = pipeline.model.name;
  try {
    log(`pipeline bench: ${model} on ${pipeline.backend}, ${steps} steps, guidance ${guidance}`);
    const req = (solver: SolverName, i: number): GenerateRequest => ({
      prompt: PROMPTS[i % PROMPTS.length],
      negativePrompt: "",
      seed: 1000 + i,
      steps,
      guidanceScale: guidance,
      solver,
      cache: "none",
    });
    for (let i = 0; i < warmup; i++) {
      for (const s of solvers) await gen.generate(model, req(s, i));
    }
    const samples = new Map<SolverName, { t: StageMedians; ratio: number }[]>();
    for (const s of solvers) samples.set(s, []);
    for (let i = 0; i < runs; i++) {
      // alternate the order so slow drift of a shared host hits every solver alike
      const order = i % 2 ? [...solvers].reverse() : solvers;
      for (const s of order) {
        const predicted = gen.predictMs(model, {
          steps,
          solver: s,
          schedule: null,
          guided: isGuided(guidance),
        });
        const r = await gen.generate(model, req(s, i));
        samples.get(s)!.push({ t: r.timings, ratio: predicted / r.timings.totalMs });
        log(`  ${s} run ${i + 1}/${runs}: ${r.timings.totalMs.toFixed(0)} ms`);
      }
    }
    const rows = solvers.map((solver): PipelineBenchRow => {
      const xs = samples.get(solver)!;
      const med = (k: keyof StageMedians) => median(xs.map((x) => x.t[k]));
      const m: StageMedians = {
        textEncoderMs: round(med("textEncoderMs")),
        unetMs: round(med("unetMs")),
        decoderMs: round(med("decoderMs")),
        totalMs: round(med("totalMs")),
      };
      return {
        solver,
        steps,
        guidance,
        runs,
        imagesPerSecond: round(1000 / med("totalMs"), 3),
        median: m,
        unetPerStepMs: round(med("unetMs") / steps),
        predictedOverActual: round(median(xs.map((x) => x.ratio)), 3),
        totalsMs: xs.map((x) => round(x.t.totalMs)),
      };
    });
    return {
      bench: "pipeline",
      date: new Date().toISOString(),
      machine: machineDescription(),
      model,
      backend: pipeline.backend,
      rows,
    };
  } finally {
    await gen.release();
  }
}

/** The figures as a Markdown table. */
export function formatPipelineBench(r: PipelineBenchResult): string {
  return [
    `End to end on ${r.backend}, ${r.model}, ${r.machine} (medians of ${r.rows[0]?.runs} runs):`,
    "",
    "| solver | steps | guidance | images/s | text encoder | UNet | UNet/step | decoder | total | predicted/actual |",
    "|---|---|---|---|---|---|---|---|---|---|",
    ...r.rows.map((x) =>
      `| ${x.solver} | ${x.steps} | ${x.guidance} | ${x.imagesPerSecond} | ${x.median.textEncoderMs} ms | ${x.median.unetMs} ms | ${x.unetPerStepMs} ms | ${x.median.decoderMs} ms | ${x.median.totalMs} ms | ${x.predictedOverActual} |`
    ),
  ].join("\n");
}

/** Parses the bench's flags (`--runs`, `--warmup`, `--steps`, `--guidance`, `--solvers`, `--backend`, `--model`). */
export function pipelineBenchOptions(args: string[]): PipelineBenchOptions & { json: boolean } {
  const { flags, positional } = parseFlags(args, {
    runs: "int",
    warmup: "int",
    steps: "int",
    guidance: "number",
    solvers: "string",
    backend: "string",
    model: "string",
    json: "boolean",
  });
  if (positional.length) throw new UsageError(`unexpected argument "${positional[0]}"`);
  const backend = benchBackend(flags.backend);
  const solvers = flags.solvers === undefined
    ? undefined
    : String(flags.solvers).split(",").map((s) => s.trim());
  for (const s of solvers ?? []) {
    if (!SOLVERS.includes(s as SolverName)) {
      throw new UsageError(`--solvers: unknown solver "${s}" (use ${SOLVERS.join(", ")})`);
    }
  }
  const runs = flags.runs as number | undefined;
  if (runs !== undefined && runs < 1) throw new UsageError("--runs must be at least 1");
  const steps = flags.steps as number | undefined;
  if (steps !== undefined && (steps < 1 || steps > 100)) {
    throw new UsageError("--steps must be in 1..100");
  }
  return {
    runs,
    warmup: flags.warmup as number | undefined,
    steps,
    guidance: flags.guidance as number | undefined,
    solvers: solvers as SolverName[] | undefined,
    backend: backend as Backend | undefined,
    modelDir: flags.model as string | undefined,
    json: flags.json === true,
  };
}

/** A benchmark's `--backend` flag: wasm or webgpu (a benchmark names its backend; no auto). */
export function benchBackend(value: unknown): Backend | undefined {
  if (value === undefined) return undefined;
  const backend = String(value);
  if (backend === "auto" || !BACKEND_CHOICES.includes(backend as Backend)) {
    throw new UsageError(`--backend must be wasm or webgpu, got "${backend}"`);
  }
  return backend as Backend;
}

/** Writes `<dir>/<name>.json` (creating the folder) and returns its path. */
export async function writeBenchResult(name: string, dir: string, value: unknown): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  const path = `${dir}/${name}.json`;
  await writeFileAtomic(path, JSON.stringify(value, null, 1) + "\n");
  return path;
}

if (import.meta.main) {
  try {
    const { json, ...opts } = pipelineBenchOptions(Deno.args);
    const r = await benchPipeline(opts);
    const path = await writeBenchResult(
      "pipeline",
      new URL("./results", import.meta.url).pathname,
      r,
    );
    console.log(json ? JSON.stringify(r, null, 2) : formatPipelineBench(r));
    console.log(`written to ${path}`);
  } catch (e) {
    console.error(`bench pipeline: ${(e as Error).message}`);
    Deno.exit(e instanceof UsageError ? 2 : 1);
  }
}

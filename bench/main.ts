/**
 * `deno task bench [split|pipeline|caching|load|gpu|all] [flags]`: runs the named benchmarks, prints a
 * table of each and writes `bench/results/<name>.json`. Flags go to the one benchmark named (see
 * each file's doc and {@link USAGE}); `all` takes none. With no name it runs split and pipeline as
 * a quick check and writes their results to `bench/results/local/` (git-ignored), so the committed
 * results the README quotes are replaced only by a run that names its benchmark.
 *
 * - split: block-split plan vs monolithic UNet (bench/split.ts; flags --model, --split, --reps,
 *   --backend, --batch, --latent; inputs at the model's native latent size).
 * - pipeline: end-to-end images/s and stage times at 20 guided steps (bench/pipeline.ts).
 * - caching: the paper's Table 1 on our model (bench/caching.ts; writes its own results).
 * - load: the service in-process with its generation workers under concurrent requests with
 *   deadlines, per worker count and client concurrency (bench/load.ts; flags --workers 1,2,
 *   --concurrency 1,2,4, --requests (per cell), --deadline-ms, --time-limit-ms, --steps,
 *   --backend).
 * - gpu: the UNet engine's fast paths (static shapes, load-time dequantization, graph capture)
 *   against the previous configuration, ms and WebGPU API calls per evaluation
 *   (bench/gpu_engine.ts; flags --backend, --evals, --rounds, --images, --variants, …).
 *
 * @module
 */
import { noPositionals, parseFlags, UsageError, usageMessage } from "../lib/cli/flags.ts";
import {
  benchBackend,
  benchPipeline,
  formatPipelineBench,
  pipelineBenchOptions,
  writeBenchResult,
} from "./pipeline.ts";

/** The benchmarks by name, in the order `all` runs them. */
export const BENCHES = ["split", "pipeline", "caching", "load", "gpu"] as const;

/** A benchmark's name. */
export type BenchName = typeof BENCHES[number];

/** Where results go: the committed folder when a benchmark is named, else a git-ignored one. */
export const RESULTS_DIR = new URL("./results", import.meta.url).pathname;
export const LOCAL_RESULTS_DIR = `${RESULTS_DIR}/local`;

/** The `--help` text. */
export const USAGE =
  `usage: deno task bench [split|pipeline|caching|load|gpu|all] [flags for the one named]

With no name: split and pipeline, results in bench/results/local/ (git-ignored).
A named benchmark writes bench/results/<name>.json (the committed results the README quotes).

  split     block-split UNet vs monolithic UNet
            --model FILE.onnx --split DIR --reps N [20] --backend wasm|webgpu [wasm]
  pipeline  end-to-end images/s and stage times
            --runs N --warmup N --steps N [20] --guidance X --solvers LIST --backend B --model DIR --json
  caching   the paper's Table 1 on our model (see bench/caching.ts)
            --prompts N [256] --configs LIST --curve CONFIG --batch N --timing-runs N --model DIR
            --out DIR [bench/results] --schedules DIR --name NAME [caching] --timing-only --timing FILE
  load      the service in-process with its generation workers, under concurrent requests with
            deadlines, per worker count and client concurrency
            --workers LIST [1,2] --concurrency LIST [1,2,4] --requests N (per cell) [12]
            --deadline-ms MS [10000] --time-limit-ms MS [120000] --steps N --backend B [wasm]
  gpu       the UNet engine's fast paths against the previous configuration (see bench/gpu_engine.ts)
            --backend wasm|webgpu --evals N --rounds N --images N --variants LIST
  -h, --help  this text`;

/**
 * Which benchmarks a command line asks for, the flags for them, and where their results go
 * (`named`: a benchmark was named, so the committed results folder).
 */
export function selectBenches(
  args: string[],
): { names: BenchName[]; flags: string[]; named: boolean; resultsDir: string } {
  const names: BenchName[] = [];
  let i = 0;
  for (; i < args.length && !args[i].startsWith("-"); i++) {
    const a = args[i];
    if (a === "all") names.push(...BENCHES);
    else if ((BENCHES as readonly string[]).includes(a)) names.push(a as BenchName);
    else {
      throw new UsageError(`unknown benchmark "${a}" (use ${BENCHES.join(", ")} or all)`, true);
    }
  }
  const flags = args.slice(i);
  const named = names.length > 0;
  const unique = [...new Set(named ? names : (["split", "pipeline"] as BenchName[]))];
  if (flags.length && !named) {
    throw new UsageError(
      `unknown flag ${flags[0]}: with no benchmark named, bench takes no flags ` +
        "(flags go to one named benchmark, e.g. bench pipeline --runs 3)",
      true,
    );
  }
  if (flags.length && unique.length !== 1) {
    throw new UsageError(
      "flags go to one benchmark: name exactly one (e.g. bench pipeline --runs 3)",
      true,
    );
  }
  return { names: unique, flags, named, resultsDir: named ? RESULTS_DIR : LOCAL_RESULTS_DIR };
}

async function runSplit(args: string[], dir: string): Promise<void> {
  const { benchSplit, splitBenchOptions } = await import("./split.ts");
  const opts = splitBenchOptions(args);
  const { machineDescription } = await import("./machine.ts");
  const r = await benchSplit({ ...opts, log: () => {} });
  const path = await writeBenchResult("split", dir, {
    bench: "split",
    date: new Date().toISOString(),
    machine: machineDescription(),
    ...r,
  });
  console.log(
    [
      `Block-split plan vs monolithic UNet on ${r.backend} (${r.model}; medians of ${r.reps} interleaved runs):`,
      "",
      `| segments | blocks | monolithic | split | ratio | overhead | coarse (${r.coarseSegments} segments) |`,
      "|---|---|---|---|---|---|---|",
      `| ${r.segments} | ${r.blocks} | ${r.monolithicMs.toFixed(2)} ms | ${
        r.splitMs.toFixed(2)
      } ms | ${r.ratio.toFixed(3)} | ${r.overheadPct >= 0 ? "+" : ""}${
        r.overheadPct.toFixed(1)
      }% | ${r.coarseMs.toFixed(2)} ms |`,
      `written to ${path}`,
    ].join("\n"),
  );
}

async function runPipeline(args: string[], dir: string): Promise<void> {
  const { json, ...opts } = pipelineBenchOptions(args);
  const r = await benchPipeline({ ...opts, log: () => {} });
  const path = await writeBenchResult("pipeline", dir, r);
  console.log(json ? JSON.stringify(r, null, 2) : formatPipelineBench(r));
  console.log(`written to ${path}`);
}

async function runCaching(args: string[]): Promise<void> {
  const { runCachingBench } = await import("./caching.ts");
  await runCachingBench(args);
}

async function runLoadBench(args: string[], dir: string): Promise<void> {
  const { formatLoadGrid, intList, loadOptions, runLoadGrid } = await import("./load.ts");
  const { machineDescription } = await import("./machine.ts");
  const { flags, positional } = parseFlags(args, {
    requests: "int",
    workers: "string",
    concurrency: "string",
    "deadline-ms": "int",
    "time-limit-ms": "int",
    steps: "int",
    backend: "string",
  });
  noPositionals(positional);
  const backend = benchBackend(flags.backend ?? Deno.env.get("BACKEND")) ?? "wasm";
  const rows = await runLoadGrid({
    ...loadOptions({ requests: 12, ...flags }),
    workers: intList("workers", flags.workers, [1, 2]),
    concurrency: intList("concurrency", flags.concurrency, [1, 2, 4]),
    modelsDir: Deno.env.get("MODELS_DIR") ?? new URL("../models", import.meta.url).pathname,
    backend,
    log: (l) => console.log(l),
  });
  const path = await writeBenchResult("load", dir, {
    bench: "load",
    date: new Date().toISOString(),
    machine: machineDescription(),
    backend,
    rows,
  });
  console.log(formatLoadGrid(rows));
  console.log(`written to ${path}`);
}

async function runGpu(args: string[]): Promise<void> {
  const { runBenchEngine } = await import("./gpu_engine.ts");
  await runBenchEngine(args);
}

const RUNNERS: Record<BenchName, (args: string[], dir: string) => Promise<void>> = {
  split: runSplit,
  pipeline: runPipeline,
  caching: runCaching,
  load: runLoadBench,
  gpu: runGpu,
};

/** Runs the benchmarks a command line names; resolves with the exit code. */
export async function benchCommand(args: string[]): Promise<number> {
  try {
    if (args.includes("--help") || args.includes("-h")) {
      console.log(USAGE);
      return 0;
    }
    const { names, flags, named, resultsDir } = selectBenches(args);
    if (!named) {
      console.log(`no benchmark named: running split and pipeline, results in ${resultsDir}/`);
    }
    for (const name of names) {
      console.log(`\n== bench ${name} ==`);
      await RUNNERS[name](flags, resultsDir);
    }
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(usageMessage("bench", USAGE, e));
      return 2;
    }
    console.error(`bench: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await benchCommand(Deno.args));

/**
 * `deno task bench [split|pipeline|caching|load|all] [flags]`: runs the named benchmarks (default
 * split and pipeline), prints a table of each and writes `bench/results/<name>.json`. Flags go to
 * the one benchmark named (see each file's doc); `all` takes none.
 *
 * - split: block-split plan vs monolithic UNet (bench/split.ts; flags --model, --split, --reps,
 *   --backend, --batch, --latent; inputs at the model's native latent size).
 * - pipeline: end-to-end images/s and stage times at 20 guided steps (bench/pipeline.ts).
 * - caching: the paper's Table 1 on our model (bench/caching.ts; writes its own results).
 * - load: the service in-process under concurrent requests with deadlines (bench/load.ts; flags
 *   --requests, --concurrency, --deadline-ms, --time-limit-ms, --steps, --backend).
 *
 * @module
 */
import { parseFlags, UsageError } from "../lib/cli/flags.ts";
import { silentLogger } from "../lib/io/log.ts";
import {
  benchBackend,
  benchPipeline,
  formatPipelineBench,
  pipelineBenchOptions,
  writeBenchResult,
} from "./pipeline.ts";

/** The benchmarks by name, in the order `all` runs them. */
export const BENCHES = ["split", "pipeline", "caching", "load"] as const;

/** A benchmark's name. */
export type BenchName = typeof BENCHES[number];

/** Which benchmarks a command line asks for, and the flags for them. */
export function selectBenches(args: string[]): { names: BenchName[]; flags: string[] } {
  const names: BenchName[] = [];
  let i = 0;
  for (; i < args.length && !args[i].startsWith("--"); i++) {
    const a = args[i];
    if (a === "all") names.push(...BENCHES);
    else if ((BENCHES as readonly string[]).includes(a)) names.push(a as BenchName);
    else throw new UsageError(`unknown benchmark "${a}" (use ${BENCHES.join(", ")} or all)`);
  }
  const flags = args.slice(i);
  const unique = [...new Set(names.length ? names : (["split", "pipeline"] as BenchName[]))];
  if (flags.length && unique.length !== 1) {
    throw new UsageError(
      "flags go to one benchmark: name exactly one (e.g. bench pipeline --runs 3)",
    );
  }
  return { names: unique, flags };
}

async function runSplit(args: string[]): Promise<void> {
  const { benchSplit } = await import("./split.ts");
  const { flags, positional } = parseFlags(args, {
    model: "string",
    split: "string",
    reps: "int",
    backend: "string",
    batch: "int",
    latent: "int",
  });
  if (positional.length) throw new UsageError(`unexpected argument "${positional[0]}"`);
  const backend = benchBackend(flags.backend);
  const latent = flags.latent as number | undefined;
  const { machineDescription } = await import("./machine.ts");
  const r = await benchSplit({
    model: flags.model as string | undefined,
    split: flags.split as string | undefined,
    reps: flags.reps as number | undefined,
    backend,
    batch: flags.batch as number | undefined,
    latent: latent === undefined ? undefined : { height: latent, width: latent },
    log: () => {},
  });
  const path = await writeBenchResult("split", {
    bench: "split",
    date: new Date().toISOString(),
    machine: machineDescription(),
    ...r,
  });
  console.log(
    [
      `Block-split plan vs monolithic UNet on ${r.backend} (${r.model}; medians of ${r.reps} interleaved runs):`,
      "",
      "| segments | blocks | monolithic | split | ratio | overhead |",
      "|---|---|---|---|---|---|",
      `| ${r.segments} | ${r.blocks} | ${r.monolithicMs.toFixed(2)} ms | ${
        r.splitMs.toFixed(2)
      } ms | ${r.ratio.toFixed(3)} | ${r.overheadPct >= 0 ? "+" : ""}${
        r.overheadPct.toFixed(1)
      }% |`,
      `written to ${path}`,
    ].join("\n"),
  );
}

async function runPipeline(args: string[]): Promise<void> {
  const { json, ...opts } = pipelineBenchOptions(args);
  const r = await benchPipeline({ ...opts, log: () => {} });
  const path = await writeBenchResult("pipeline", r);
  console.log(json ? JSON.stringify(r, null, 2) : formatPipelineBench(r));
  console.log(`written to ${path}`);
}

async function runCaching(args: string[]): Promise<void> {
  const { runCachingBench } = await import("./caching.ts");
  await runCachingBench(args);
}

async function runLoadBench(args: string[]): Promise<void> {
  const { formatLoadReport, loadOptions, runLoadInProcess } = await import("./load.ts");
  const { loadGenerator } = await import("../lib/pipeline/service.ts");
  const { warmUp } = await import("../main.ts");
  const { machineDescription } = await import("./machine.ts");
  const { flags, positional } = parseFlags(args, {
    requests: "int",
    concurrency: "int",
    "deadline-ms": "int",
    "time-limit-ms": "int",
    steps: "int",
    backend: "string",
  });
  if (positional.length) throw new UsageError(`unexpected argument "${positional[0]}"`);
  const generator = await loadGenerator(
    Deno.env.get("MODELS_DIR") ?? new URL("../models", import.meta.url).pathname,
    String(flags.backend ?? Deno.env.get("BACKEND") ?? "wasm"),
    () => {},
  );
  try {
    await warmUp(generator, silentLogger);
    const opts = loadOptions(flags);
    const r = await runLoadInProcess(generator, opts);
    const path = await writeBenchResult("load", {
      bench: "load",
      date: new Date().toISOString(),
      machine: machineDescription(),
      backend: generator.models()[0].backend,
      ...r,
    });
    console.log(formatLoadReport(r));
    console.log(`written to ${path}`);
  } finally {
    await generator.release();
  }
}

const RUNNERS: Record<BenchName, (args: string[]) => Promise<void>> = {
  split: runSplit,
  pipeline: runPipeline,
  caching: runCaching,
  load: runLoadBench,
};

/** Runs the benchmarks a command line names; resolves with the exit code. */
export async function benchCommand(args: string[]): Promise<number> {
  try {
    const { names, flags } = selectBenches(args);
    for (const name of names) {
      console.log(`\n== bench ${name} ==`);
      await RUNNERS[name](flags);
    }
    return 0;
  } catch (e) {
    console.error(`bench: ${e instanceof Error ? e.message : String(e)}`);
    return e instanceof UsageError ? 2 : 1;
  }
}

if (import.meta.main) Deno.exit(await benchCommand(Deno.args));

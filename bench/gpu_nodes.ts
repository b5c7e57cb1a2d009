/**
 * Counts the nodes of the optimized segment graphs, per execution provider, the way the engine
 * would create its sessions (weights format, static shapes or not): what runs on every evaluation
 * after onnxruntime's own graph optimizations (constant folding, fusions). onnxruntime-web writes
 * no optimized model file that JavaScript can read, but at verbose log level it reports, per
 * session, "All nodes placed on [EP]. Number of nodes: N" (or one such line per EP). A child
 * process creates the sessions with that log level and the parent adds up the lines from its
 * standard error.
 *
 *   deno run -A bench/gpu_nodes.ts [--backend webgpu|wasm] [--weights stored|float32|float16]
 *     [--static] [--model DIR]     prints {"WebGpuExecutionProvider": N, …} summed over segments
 *
 * @module
 */
import { parseFlags, UsageError } from "../lib/cli/flags.ts";
import { dequantizeModelBytes } from "../lib/onnx/dequantize.ts";
import { ort, ortWasm } from "../lib/runtime/ort.ts";
import type { Backend } from "../lib/runtime/backend.ts";
import { readSplitManifest, WEIGHT_FORMATS, type WeightFormat } from "../lib/unet/engine.ts";

/** Optimized node count per execution provider, summed over a split folder's segments. */
export type NodeCounts = Record<string, number>;

/** Adds up the "placed on [EP]. Number of nodes: N" lines of onnxruntime's verbose log. */
export function parsePlacements(log: string): NodeCounts {
  const out: NodeCounts = {};
  for (const m of log.matchAll(/placed on \[(\w+)\]\. Number of nodes: (\d+)/g)) {
    out[m[1]] = (out[m[1]] ?? 0) + Number(m[2]);
  }
  return out;
}

/**
 * The optimized node counts of `unetDir`'s segments on `backend` with the given weights and shapes
 * (static: `batch` = 2), from a child process (see the module doc).
 */
export async function optimizedNodeCounts(
  unetDir: string,
  backend: Backend,
  weights: WeightFormat,
  staticShapes: boolean,
): Promise<NodeCounts> {
  const args = [
    "run",
    "-A",
    new URL(import.meta.url).pathname,
    "--child",
    "--model",
    unetDir,
    "--backend",
    backend,
    "--weights",
    weights,
    ...(staticShapes ? ["--static"] : []),
  ];
  const out = await new Deno.Command(Deno.execPath(), { args, stdout: "null", stderr: "piped" })
    .output();
  const log = new TextDecoder().decode(out.stderr);
  if (!out.success) {
    throw new Error(`gpu_nodes child failed: ${log.split("\n").filter((l) => l).slice(-3)}`);
  }
  return parsePlacements(log);
}

async function child(unetDir: string, backend: Backend, weights: WeightFormat, fixed: boolean) {
  const manifest = await readSplitManifest(unetDir);
  const build = backend === "wasm" ? await ortWasm() : ort;
  build.env.logLevel = "verbose";
  for (const seg of manifest.segments) {
    let model: Uint8Array = await Deno.readFile(`${unetDir}/${seg.file}`);
    const externalData = await Promise.all(
      (seg.externalData ?? []).map(async (x) => ({
        path: x.file,
        data: await Deno.readFile(`${unetDir}/${x.file}`),
      })),
    );
    // as the engine: segments with external weights keep them as stored
    if (weights !== "stored" && !externalData.length) {
      model = dequantizeModelBytes(model, weights).bytes;
    }
    const session = await build.InferenceSession.create(model, {
      executionProviders: [{ name: backend }],
      graphOptimizationLevel: "all",
      logSeverityLevel: 0,
      logVerbosityLevel: 0,
      externalData,
      ...(fixed ? { freeDimensionOverrides: { batch: 2 } } : {}),
    });
    await session.release();
  }
}

if (import.meta.main) {
  try {
    const { flags } = parseFlags(Deno.args, {
      child: "boolean",
      static: "boolean",
      backend: "string",
      weights: "string",
      model: "string",
    });
    const backend = String(flags.backend ?? "webgpu") as Backend;
    if (backend !== "webgpu" && backend !== "wasm") {
      throw new UsageError("--backend must be webgpu or wasm");
    }
    const weights = String(flags.weights ?? "stored") as WeightFormat;
    if (!WEIGHT_FORMATS.includes(weights)) {
      throw new UsageError(`--weights must be one of ${WEIGHT_FORMATS.join(", ")}`);
    }
    const dir = (flags.model as string | undefined) ??
      new URL("../models/emoji-ldm/unet", import.meta.url).pathname;
    if (flags.child) await child(dir, backend, weights, !!flags.static);
    else {
      console.log(
        JSON.stringify(await optimizedNodeCounts(dir, backend, weights, !!flags.static)),
      );
    }
  } catch (e) {
    console.error(`bench/gpu_nodes.ts: ${e instanceof Error ? e.message : String(e)}`);
    Deno.exit(e instanceof UsageError ? 2 : 1);
  }
}

/**
 * The memory estimate (lib/model/memory.ts) against onnxruntime-web's real wasm heap: loads a model
 * folder on wasm and, for each size in increasing order, makes one image (1 step, guided, uncached)
 * and reads the size of the runtime's WebAssembly memory, which only grows, so after each image it
 * is that plan's high-water mark. Prints estimate vs measured per size and writes
 * `bench/results/memory.json` (with `--out`, elsewhere).
 *
 *   deno run -A bench/memory.ts --model DIR [--sizes 64,128] [--images 1] [--out FILE]
 *
 * The heap is read through bench/wasm_heap.ts (imported before onnxruntime-web loads), so this runs
 * in its own process.
 *
 * @module
 */
import { wasmHeapBytes } from "./wasm_heap.ts";
import { parseArgs } from "node:util";

/** One size's figures (bytes). */
export interface MemoryRow {
  width: number;
  height: number;
  images: number;
  estimateBytes: number;
  weightsBytes: number;
  activationBytes: number;
  peakAt: string;
  measuredBytes: number;
  /** measured / estimate. */
  ratio: number;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      model: { type: "string" },
      sizes: { type: "string" },
      images: { type: "string", default: "1" },
      out: { type: "string", default: "bench/results/memory.json" },
    },
  });
  if (!values.model) {
    console.error("usage: deno run -A bench/memory.ts --model DIR [--sizes 64,128] [--images 1]");
    Deno.exit(2);
  }
  const { Pipeline } = await import("../lib/pipeline/pipeline.ts");
  const { machineDescription } = await import("./machine.ts");
  const p = await Pipeline.load(values.model, { backend: "wasm", log: () => {} });
  const native = p.model.sizes.native.width;
  const sizes = (values.sizes ?? String(native)).split(",").map(Number).sort((a, b) => a - b);
  const images = Number(values.images);
  const rows: MemoryRow[] = [];
  for (const side of sizes) {
    const e = p.estimateMemory(p.latentShape({ width: side, height: side }), images, true);
    await p.generateBatch(
      Array.from({ length: images }, (_, i) => ({
        prompt: "a photo of an astronaut riding a horse",
        negativePrompt: "",
        seed: i,
        steps: 1,
        guidanceScale: 4,
        solver: "euler" as const,
        cache: "none",
        width: side,
        height: side,
      })),
    );
    const measured = wasmHeapBytes();
    rows.push({
      width: side,
      height: side,
      images,
      estimateBytes: e.totalBytes,
      weightsBytes: e.weightsBytes,
      activationBytes: e.activationBytes,
      peakAt: e.peakAt,
      measuredBytes: measured,
      ratio: measured / e.totalBytes,
    });
  }
  await p.release();
  const mib = (b: number) => (b / 2 ** 20).toFixed(0);
  console.log(
    `wasm heap of ${p.model.name} (${p.model.split.precision}), ${images} guided image(s):`,
  );
  console.log(
    "| size | estimate MiB | (weights + activations at) | measured MiB | measured/estimate |",
  );
  console.log("|---|---|---|---|---|");
  for (const r of rows) {
    console.log(
      `| ${r.width}x${r.height} | ${mib(r.estimateBytes)} | ${mib(r.weightsBytes)} + ${
        mib(r.activationBytes)
      } at ${r.peakAt} | ${mib(r.measuredBytes)} | ${r.ratio.toFixed(2)} |`,
    );
  }
  const json = {
    bench: "memory",
    date: new Date().toISOString(),
    machine: machineDescription(),
    model: p.model.name,
    precision: p.model.split.precision,
    rows,
  };
  await Deno.writeTextFile(values.out!, JSON.stringify(json, null, 1) + "\n");
}

/**
 * One block-split UNet's evaluation time and memory at a latent size, without the rest of a model
 * folder: for UNets too big to run beside a monolithic copy (SD-1.5: 3.4 GB of fp32 weights).
 * Loads the split folder, runs uncached evaluations of random inputs (the timestep as the export
 * declares it) and reports the median wall time, the wasm heap's high-water mark (wasm) and the
 * memory estimate of lib/model/memory.ts for the same plan, with each evaluation's process CPU
 * time (the steadier figure where other work shares the host). Writes `bench/results/unet_eval.json`
 * (`--out` elsewhere).
 *
 *   deno run -A bench/unet_eval.ts --split DIR [--latent 64] [--batch 2] [--reps 3]
 *     [--backend wasm] [--out FILE]
 *
 * @module
 */
import { wasmHeapBytes } from "./wasm_heap.ts";
import { parseArgs } from "node:util";
import process from "node:process";
import { lcg } from "./stats.ts";

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      split: { type: "string" },
      latent: { type: "string", default: "64" },
      batch: { type: "string", default: "2" },
      reps: { type: "string", default: "3" },
      backend: { type: "string", default: "wasm" },
      out: { type: "string", default: "bench/results/unet_eval.json" },
    },
  });
  if (!values.split) {
    console.error("usage: deno run -A bench/unet_eval.ts --split DIR [--latent 64] [--batch 2]");
    Deno.exit(2);
  }
  const { UNetEngine, readSplitManifest } = await import("../lib/unet/engine.ts");
  const { unetInputContract, unetInputShapes, timestepTensor } = await import(
    "../lib/model/unet_inputs.ts"
  );
  const { estimateMemory, readMemoryProfile } = await import("../lib/model/memory.ts");
  const { ort } = await import("../lib/runtime/ort.ts");
  const { machineDescription } = await import("./machine.ts");
  type Backend = "wasm" | "webgpu";
  const backend = values.backend as Backend;
  const dir = values.split;
  const latent = Number(values.latent), batch = Number(values.batch), reps = Number(values.reps);
  const manifest = await readSplitManifest(dir);
  const contract = unetInputContract(manifest.inputs, manifest.outputs);
  const profile = await readMemoryProfile({
    textEncoderFile: null,
    unetDir: dir,
    split: manifest,
    vaeDecoderFile: null,
  });
  const estimate = estimateMemory(profile, {
    images: batch,
    guided: false,
    latent: { height: latent, width: latent },
    sequence: 77,
    latentChannels: 4,
  }, backend);
  const t0 = performance.now();
  const engine = await UNetEngine.load(dir, { backend, log: () => {} });
  const loadMs = performance.now() - t0;
  const shapes = unetInputShapes(manifest.inputs, {
    batch,
    latentHeight: latent,
    latentWidth: latent,
    channels: 4,
    sequence: 77,
  });
  const rnd = lcg(1);
  const random = (name: string) => {
    const dims = shapes.get(name)!;
    return new ort.Tensor(
      "float32",
      Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, rnd),
      dims,
    );
  };
  const runs: number[] = [], cpu: number[] = [];
  for (let i = 0; i < reps; i++) {
    const feeds = {
      sample: random("sample"),
      timestep: timestepTensor(contract.timestep, 500, batch),
      encoder_hidden_states: random("encoder_hidden_states"),
    };
    const c0 = process.cpuUsage();
    const t = performance.now();
    const out = await engine.run(feeds);
    runs.push(performance.now() - t);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
    for (const v of Object.values(out)) v.dispose();
    console.log(
      `evaluation ${i + 1}: ${(runs[i] / 1000).toFixed(1)} s wall, ${
        (cpu[i] / 1000).toFixed(1)
      } s CPU`,
    );
  }
  await engine.release();
  const sorted = [...runs].sort((a, b) => a - b);
  const gib = (b: number) => (b / 2 ** 30).toFixed(2);
  const result = {
    bench: "unet_eval",
    date: new Date().toISOString(),
    machine: machineDescription(),
    split: dir,
    precision: manifest.precision,
    segments: manifest.segments.length,
    backend,
    latent,
    batch,
    loadMs,
    runsMs: runs,
    medianMs: sorted[sorted.length >> 1],
    /** Process CPU time per evaluation (steadier than wall time on a shared host). */
    cpuMs: cpu,
    heapBytes: backend === "wasm" ? wasmHeapBytes() : undefined,
    estimate,
  };
  console.log(
    `${manifest.precision} split (${manifest.segments.length} segments) on ${backend}, latent ` +
      `${latent}x${latent}, batch ${batch}: load ${(loadMs / 1000).toFixed(1)} s, median ` +
      `${(result.medianMs / 1000).toFixed(1)} s per evaluation; estimate ${
        gib(estimate.totalBytes)
      } GiB ` +
      `(weights ${gib(estimate.weightsBytes)} + activations ${gib(estimate.activationBytes)} at ` +
      `${estimate.peakAt})` +
      (result.heapBytes ? `, measured wasm heap ${gib(result.heapBytes)} GiB` : ""),
  );
  await Deno.writeTextFile(values.out!, JSON.stringify(result, null, 1) + "\n");
}

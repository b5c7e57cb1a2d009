/**
 * Where an fp16 plan's error comes from, per segment and per latent size: runs the fp32 split of a
 * UNet export segment by segment at each latent size, feeds every segment's fp32 inputs to the same
 * segment of the fp16 split too, and reports each segment's own error (max absolute difference of
 * its outputs against the fp32 segment's, on the same backend) and the end-to-end error of the fp16
 * plan run on its own. A segment whose error grows with the latent size is where fp16 loses
 * precision with the number of positions (attention sums over h·w of them).
 *
 *   deno run -A bench/fp16_drift.ts --model unet/model.onnx [--latents 16,64] [--backend webgpu]
 *     [--out bench/results/fp16_drift.json]
 *
 * Both splits are made into a temporary folder with `splitModel` (the fp16 one with the
 * quantizer as it is in lib/onnx/quantize.ts).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { splitModel } from "../lib/onnx/split.ts";
import { type Backend, resolveBackend } from "../lib/runtime/backend.ts";
import { createSession, serialized } from "../lib/runtime/session.ts";
import { ort, type Session, type Tensor } from "../lib/runtime/ort.ts";
import { toFloat32 } from "../lib/runtime/tensors.ts";
import { unetInputShapes } from "../lib/model/unet_inputs.ts";
import type { SplitManifest } from "../lib/unet/split_manifest.ts";
import { machineDescription } from "./machine.ts";
import { randomInput } from "./split.ts";
import { lcg } from "./stats.ts";

/** One segment's error at one latent size. */
export interface SegmentDrift {
  segment: string;
  kind: "glue" | "block";
  /** Max |fp16 − fp32| over the segment's float outputs, fed identical fp32 inputs. */
  maxAbs: number;
  /** Max |fp32 output|, for scale. */
  scale: number;
}

/** The figures at one latent size. */
export interface DriftResult {
  latent: number;
  segments: SegmentDrift[];
  /** The fp16 plan run on its own against the fp32 plan: max abs difference of the UNet output. */
  endToEndMaxAbs: number;
  outputScale: number;
}

async function loadSplit(dir: string, backend: Backend): Promise<{
  manifest: SplitManifest;
  sessions: Session[];
}> {
  const manifest = JSON.parse(await Deno.readTextFile(`${dir}/split.json`)) as SplitManifest;
  const sessions: Session[] = [];
  for (const s of manifest.segments) {
    const externalData = [];
    for (const x of s.externalData ?? []) {
      externalData.push({ path: x.file, data: await Deno.readFile(`${dir}/${x.file}`) });
    }
    sessions.push(
      await createSession(await Deno.readFile(`${dir}/${s.file}`), backend, {
        externalData,
      }),
    );
  }
  return { manifest, sessions };
}

function maxAbs(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function maxOf(a: Float32Array): number {
  let m = 0;
  for (const v of a) m = Math.max(m, Math.abs(v));
  return m;
}

/** Copies a CPU tensor (sessions may not share a fed tensor's buffer across runs). */
function cpuTensor(t: Tensor, data: Float32Array | BigInt64Array): Tensor {
  return new ort.Tensor(t.type as "float32", data as Float32Array, t.dims);
}

/** Runs the fp32 and fp16 splits of `model` at each latent size on `backend`. */
export async function fp16Drift(
  model: string,
  latents: number[],
  backend: Backend,
  log: (line: string) => void = console.log,
): Promise<DriftResult[]> {
  await resolveBackend(backend, log);
  const tmp = await Deno.makeTempDir({ prefix: "fp16-drift-" });
  try {
    await splitModel(model, { out: `${tmp}/fp32` });
    await splitModel(model, { out: `${tmp}/fp16`, precision: "fp16" });
    const full = await loadSplit(`${tmp}/fp32`, backend);
    const half = await loadSplit(`${tmp}/fp16`, backend);
    const results: DriftResult[] = [];
    for (const latent of latents) {
      const rnd = lcg(7);
      const shapes = unetInputShapes(full.manifest.inputs, {
        batch: 2,
        latentHeight: latent,
        latentWidth: latent,
        channels: 4,
        sequence: 77,
      });
      const inputs = new Map<string, Tensor>();
      for (const spec of full.manifest.inputs) {
        inputs.set(spec.name, randomInput(spec, shapes.get(spec.name)!, rnd));
      }
      // fp32 plan segment by segment; each fp16 segment gets the same fp32 inputs
      const values = new Map(inputs);
      const halfValues = new Map(inputs);
      const segments: SegmentDrift[] = [];
      for (const [i, seg] of full.manifest.segments.entries()) {
        const feed = (from: Map<string, Tensor>) =>
          Object.fromEntries(seg.inputs.map((t) => [t.name, from.get(t.name)!]));
        const a = await serialized(() => full.sessions[i].run(feed(values)));
        const b = await serialized(() => half.sessions[i].run(feed(values)));
        const c = await serialized(() => half.sessions[i].run(feed(halfValues)));
        let err = 0, scale = 0;
        for (const o of seg.outputs) {
          const fa = await toFloat32(a[o.name]), fb = await toFloat32(b[o.name]);
          err = Math.max(err, maxAbs(fa, fb));
          scale = Math.max(scale, maxOf(fa));
          values.set(o.name, cpuTensor(a[o.name], fa));
          halfValues.set(o.name, cpuTensor(c[o.name], await toFloat32(c[o.name])));
        }
        segments.push({ segment: seg.name, kind: seg.kind, maxAbs: err, scale });
      }
      const out = full.manifest.outputs[0].name;
      const fa = await toFloat32(values.get(out)!), fc = await toFloat32(halfValues.get(out)!);
      results.push({ latent, segments, endToEndMaxAbs: maxAbs(fa, fc), outputScale: maxOf(fa) });
      log(
        `latent ${latent}: fp16 plan vs fp32 plan max abs ${maxAbs(fa, fc).toExponential(2)} ` +
          `(output max ${maxOf(fa).toFixed(2)})`,
      );
    }
    for (const s of [...full.sessions, ...half.sessions]) await s.release();
    return results;
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      model: { type: "string" },
      latents: { type: "string", default: "16,64" },
      backend: { type: "string", default: "webgpu" },
      out: { type: "string", default: "bench/results/fp16_drift.json" },
    },
  });
  if (!values.model) {
    console.error(
      "usage: deno run -A bench/fp16_drift.ts --model unet/model.onnx [--latents 16,64]",
    );
    Deno.exit(2);
  }
  const latents = values.latents!.split(",").map(Number);
  const results = await fp16Drift(values.model, latents, values.backend as Backend);
  const names = results[0].segments.map((s) => s.segment);
  console.log(`| segment | ${latents.map((l) => `${l}x${l}: max abs (scale)`).join(" | ")} |`);
  console.log(`|---|${latents.map(() => "---").join("|")}|`);
  names.forEach((name, i) => {
    const cells = results.map((r) =>
      `${r.segments[i].maxAbs.toExponential(1)} (${r.segments[i].scale.toFixed(1)})`
    );
    console.log(`| ${name} | ${cells.join(" | ")} |`);
  });
  await Deno.writeTextFile(
    values.out!,
    JSON.stringify(
      {
        bench: "fp16_drift",
        date: new Date().toISOString(),
        machine: machineDescription(),
        model: values.model,
        backend: values.backend,
        results,
      },
      null,
      1,
    ) + "\n",
  );
}

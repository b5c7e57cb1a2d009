/**
 * How much memory a plan needs on a backend, estimated before anything runs, so that a plan that
 * cannot fit is refused with its cause and the way out instead of failing inside onnxruntime
 * (`std::bad_alloc` on wasm, with no hint).
 *
 *     total = base + Σ resident weights + max(largest model file, activation peak)
 *
 * - **Resident weights** (text encoder, every UNet segment, VAE decoder) as each backend
 *   materializes them. wasm computes in float32: onnxruntime's CPU provider folds the Casts it
 *   puts around float16 weights into float32 copies, so an fp16 plan holds 4 bytes per weight on
 *   wasm (as fp32), while int8/uint8 weights stay 1 byte (`DequantizeLinear` runs per evaluation).
 *   WebGPU holds them as stored.
 * - **Activation peak**: the largest set of tensors alive at once, from a walk over every graph in
 *   run order with concrete shapes (`inferGraph` at the plan's batch, latent size and sequence
 *   length): the engine's held boundary tensors (skip connections, the text embeddings) plus, inside
 *   the running segment, each node's outputs from when they are made until their last reader.
 *   float16 activations count 4 bytes on wasm (computed in float32) and 2 on WebGPU. The
 *   attention scores dominate at large sizes: `batch · heads · (h·w)² · 4` bytes per tensor (SD-1.5
 *   at 512 px, batch 2: 1 GiB each, and softmax makes a second).
 * - The wasm heap only grows (WebAssembly memory is never returned), so the load-time copy of the
 *   largest model file and the run-time activations share the same high-water mark; `base` is what
 *   the runtime takes before any model.
 *
 * Checked against onnxruntime-web's WebAssembly memory size (`bench/memory.ts`,
 * `bench/unet_eval.ts`): the measured heap was 0.97–1.10 times the estimate, from the SD-shaped test
 * fixture to an SD-1.5-sized folder at 512 px (estimate 3.51 GiB, measured 3.72 GiB; the README's
 * table), hence {@link HEAP_HEADROOM}.
 *
 * @module
 */
import type { Backend } from "../runtime/backend.ts";
import { inferGraph } from "../onnx/infer.ts";
import {
  DataType,
  decodeModel,
  encodeModel,
  type Graph,
  type Model,
  type TensorProto,
} from "../onnx/model.ts";
import { elementCount, elemSize } from "../onnx/tensor.ts";
import type { SplitManifest } from "../unet/split_manifest.ts";
import type { LatentShape } from "./sizes.ts";
import { unetInputShapes } from "./unet_inputs.ts";

/** onnxruntime-web's wasm heap: one 32-bit WebAssembly memory for every session of a process. */
export const WASM_HEAP_LIMIT = 4 * 2 ** 30;
/** What the wasm runtime holds before any model (measured: 16 MiB). */
export const WASM_BASE_BYTES = 16 * 2 ** 20;
/** Share of the limit a plan may use (the rest covers allocator fragmentation). */
export const HEAP_HEADROOM = 0.9;

/** Weight bytes of a graph as stored, by element type. */
export interface WeightBytes {
  float32: number;
  float16: number;
  /** int8 and uint8 (quantized weights). */
  int8: number;
  other: number;
}

/** One ONNX graph, weights dropped, ready for activation walks. */
export interface GraphProfile {
  name: string;
  /** The graph with large initializers' payloads removed (shapes and small constants kept). */
  graph: Graph;
  weights: WeightBytes;
  /** Size of the model file(s) in bytes (copied into the heap while its session is created). */
  fileBytes: number;
}

/** Everything a memory estimate needs about a loaded model folder. */
export interface MemoryProfile {
  /** null when only the UNet is profiled (bench/unet_eval.ts). */
  textEncoder: GraphProfile | null;
  /** UNet segments in run order. */
  segments: GraphProfile[];
  vaeDecoder: GraphProfile | null;
  manifest: SplitManifest;
}

/** What one generation's plan looks like to the estimate. */
export interface PlanShape {
  /** Images made together (each is 2 UNet samples with guidance). */
  images: number;
  guided: boolean;
  latent: LatentShape;
  /** Text tokens per prompt (the tokenizer's padded length). */
  sequence: number;
  latentChannels: number;
}

/** The estimate, in bytes. */
export interface MemoryEstimate {
  backend: Backend;
  weightsBytes: number;
  activationBytes: number;
  /** Where the activation peak is (a UNet segment, `text_encoder` or `vae_decoder`). */
  peakAt: string;
  /** The largest single activation tensor. */
  largestTensor: { name: string; bytes: number };
  totalBytes: number;
  /** The backend's known limit (the wasm heap); undefined where none is known (WebGPU). */
  limitBytes?: number;
  fits: boolean;
}

/** A plan that does not fit its backend's memory; the message gives the cause and the way out. */
export class PlanMemoryError extends Error {
  constructor(readonly estimate: MemoryEstimate, message: string) {
    super(message);
    this.name = "PlanMemoryError";
  }
}

const SMALL = 64;

function stripped(t: TensorProto): TensorProto {
  if (elementCount(t.dims) <= SMALL) return t;
  return { name: t.name, dims: t.dims, dataType: t.dataType };
}

/**
 * Weight bytes by type, and the graph without large payloads. The graph is re-encoded, so it
 * keeps no view into the (large) buffer it was decoded from.
 */
export function profileGraph(name: string, model: Model, fileBytes: number): GraphProfile {
  const graph = model.graph;
  const weights: WeightBytes = { float32: 0, float16: 0, int8: 0, other: 0 };
  for (const t of graph.initializer) {
    const bytes = elementCount(t.dims) * elemSize(t.dataType);
    if (t.dataType === DataType.FLOAT) weights.float32 += bytes;
    else if (t.dataType === DataType.FLOAT16) weights.float16 += bytes;
    else if (t.dataType === DataType.INT8 || t.dataType === DataType.UINT8) weights.int8 += bytes;
    else weights.other += bytes;
  }
  const node = graph.node.map((n) =>
    n.attribute.some((a) => a.t)
      ? { ...n, attribute: n.attribute.map((a) => (a.t ? { ...a, t: stripped(a.t) } : a)) }
      : n
  );
  const lite: Model = {
    ...model,
    graph: { ...graph, node, initializer: graph.initializer.map(stripped) },
  };
  return { name, graph: decodeModel(encodeModel(lite)).graph, weights, fileBytes };
}

async function readProfile(
  name: string,
  path: string,
  extra: string[] = [],
): Promise<GraphProfile> {
  const bytes = await Deno.readFile(path);
  let fileBytes = bytes.length;
  for (const f of extra) fileBytes += (await Deno.stat(f)).size;
  return profileGraph(name, decodeModel(bytes), fileBytes);
}

/**
 * Reads the graphs of a model folder's text encoder, UNet segments and VAE decoder (a null text
 * encoder file: the UNet and VAE alone).
 */
export async function readMemoryProfile(model: {
  textEncoderFile: string | null;
  unetDir: string;
  split: SplitManifest;
  vaeDecoderFile: string | null;
}): Promise<MemoryProfile> {
  const segments: GraphProfile[] = [];
  for (const s of model.split.segments) {
    const extra = (s.externalData ?? []).map((x) => `${model.unetDir}/${x.file}`);
    segments.push(await readProfile(s.name, `${model.unetDir}/${s.file}`, extra));
  }
  return {
    textEncoder: model.textEncoderFile
      ? await readProfile("text_encoder", model.textEncoderFile)
      : null,
    segments,
    vaeDecoder: model.vaeDecoderFile
      ? await readProfile("vae_decoder", model.vaeDecoderFile)
      : null,
    manifest: model.split,
  };
}

/** Weight bytes a backend holds for weights stored as `w` (see the module doc). */
export function residentWeightBytes(w: WeightBytes, backend: Backend): number {
  const half = backend === "wasm" ? 2 * w.float16 : w.float16;
  return w.float32 + half + w.int8 + w.other;
}

type Shape = number[];

interface Walk {
  /** Peak bytes alive inside the graph (its inputs included). */
  peak: number;
  largest: { name: string; bytes: number };
  /** Concrete shapes and element types of the graph's outputs. */
  outputs: Map<string, { shape: Shape; elemType: number }>;
}

/**
 * Walks one graph with concrete input shapes: every tensor lives from the node that makes it to
 * its last reader (inputs and outputs for the whole run). Bytes per element: the type's size,
 * float16 counted as `halfBytes`. Tensors whose shape inference cannot derive count 0.
 */
export function walkGraph(
  g: Graph,
  inputs: Map<string, { shape: Shape; elemType: number }>,
  halfBytes: number,
): Walk {
  const concrete: Graph = {
    ...g,
    input: g.input.map((v) => {
      const c = inputs.get(v.name);
      const elemType = c?.elemType ?? v.type?.tensor?.elemType ?? 0;
      return c
        ? {
          name: v.name,
          type: { tensor: { elemType, shape: c.shape.map((d) => ({ value: d })) } },
        }
        : v;
    }),
    output: g.output.map((v) => ({ name: v.name })),
    valueInfo: [],
  };
  const info = inferGraph(concrete);
  const inits = new Set(g.initializer.map((t) => t.name));
  const bytesOf = (name: string): number => {
    const t = info.get(name);
    if (!t?.shape || t.shape.some((d) => typeof d !== "number")) return 0;
    const size = t.elemType === DataType.FLOAT16 ? halfBytes : elemSize(t.elemType);
    return elementCount(t.shape as number[]) * size;
  };
  const lastUse = new Map<string, number>();
  g.node.forEach((n, i) => {
    for (const x of n.input) if (x) lastUse.set(x, i);
  });
  const keep = new Set([...g.input.map((v) => v.name), ...g.output.map((v) => v.name)]);
  // a node of constants only (DequantizeLinear of an int8 weight) runs when its output is first
  // read, not where the file lists it (the quantizer puts them all first)
  const constant = new Set(inits);
  const deferred = new Set<string>();
  for (const n of g.node) {
    if (n.input.every((x) => !x || constant.has(x))) {
      for (const o of n.output) if (o) constant.add(o), deferred.add(o);
    }
  }
  let live = 0;
  for (const v of g.input) if (!inits.has(v.name)) live += bytesOf(v.name);
  let peak = live;
  let largest = { name: "", bytes: 0 };
  const alive = new Map<string, number>();
  const allocate = (o: string) => {
    const b = bytesOf(o);
    alive.set(o, b);
    live += b;
    if (b > largest.bytes) largest = { name: o, bytes: b };
  };
  g.node.forEach((n, i) => {
    for (const x of n.input) if (deferred.has(x) && !alive.has(x)) allocate(x);
    for (const o of n.output) if (o && !deferred.has(o)) allocate(o);
    if (live > peak) peak = live;
    for (const x of new Set(n.input)) {
      if (lastUse.get(x) === i && alive.has(x) && !keep.has(x)) {
        live -= alive.get(x)!;
        alive.delete(x);
      }
    }
    for (const o of n.output) {
      if (o && !deferred.has(o) && !lastUse.has(o) && !keep.has(o) && alive.has(o)) {
        live -= alive.get(o)!;
        alive.delete(o);
      }
    }
  });
  const outputs = new Map<string, { shape: Shape; elemType: number }>();
  for (const v of g.output) {
    const t = info.get(v.name);
    if (t?.shape && t.shape.every((d) => typeof d === "number")) {
      outputs.set(v.name, { shape: t.shape as number[], elemType: t.elemType });
    }
  }
  return { peak, largest, outputs };
}

const ELEM: Record<string, number> = {
  float32: DataType.FLOAT,
  float16: DataType.FLOAT16,
  int64: DataType.INT64,
  int32: DataType.INT32,
};

/**
 * The activation peak of one generation: the text encoder at 2·images (or images) × sequence,
 * every UNet segment in order with the engine's held boundary tensors, the VAE decoder at
 * images × latent. Returns bytes, where, and the largest tensor.
 */
export function activationPeak(
  profile: MemoryProfile,
  plan: PlanShape,
  backend: Backend,
): { bytes: number; at: string; largest: { name: string; bytes: number } } {
  const half = backend === "wasm" ? 4 : 2;
  const n = plan.images * (plan.guided ? 2 : 1);
  let best = { bytes: 0, at: "", largest: { name: "", bytes: 0 } };
  const consider = (at: string, bytes: number, largest: { name: string; bytes: number }) => {
    if (bytes > best.bytes) best = { bytes, at, largest };
  };
  const te = profile.textEncoder;
  const ids = te?.graph.input.find((v) => !te.graph.initializer.some((t) => t.name === v.name));
  if (te && ids) {
    const w = walkGraph(
      te.graph,
      new Map([[ids.name, { shape: [n, plan.sequence], elemType: DataType.INT64 }]]),
      half,
    );
    consider("text_encoder", w.peak, w.largest);
  }
  // the engine: boundary tensors by name, alive until the last segment that reads them
  const shapes = new Map<string, { shape: Shape; elemType: number }>();
  const dims = unetInputShapes(profile.manifest.inputs, {
    batch: n,
    latentHeight: plan.latent.height,
    latentWidth: plan.latent.width,
    channels: plan.latentChannels,
    sequence: plan.sequence,
  });
  for (const spec of profile.manifest.inputs) {
    shapes.set(spec.name, { shape: dims.get(spec.name)!, elemType: ELEM[spec.dtype] ?? 0 });
  }
  const segs = profile.manifest.segments;
  const lastUse = new Map<string, number>();
  segs.forEach((s, i) => s.inputs.forEach((t) => lastUse.set(t.name, i)));
  const outputs = new Set(profile.manifest.outputs.map((o) => o.name));
  const held = new Map<string, number>();
  const bytes = (shape: Shape, elemType: number) =>
    elementCount(shape) * (elemType === DataType.FLOAT16 ? half : elemSize(elemType));
  for (const [name, s] of shapes) held.set(name, bytes(s.shape, s.elemType));
  segs.forEach((seg, i) => {
    const g = profile.segments[i].graph;
    const inputs = new Map<string, { shape: Shape; elemType: number }>();
    for (const t of seg.inputs) {
      const s = shapes.get(t.name);
      if (s) inputs.set(t.name, s);
    }
    const w = walkGraph(g, inputs, half);
    let others = 0;
    for (const [name, b] of held) if (!seg.inputs.some((t) => t.name === name)) others += b;
    consider(seg.name, others + w.peak, w.largest);
    for (const [name, s] of w.outputs) {
      shapes.set(name, s);
      held.set(name, bytes(s.shape, s.elemType));
    }
    for (const name of [...held.keys()]) {
      if ((lastUse.get(name) ?? -1) <= i && !outputs.has(name)) held.delete(name);
    }
  });
  const vae = profile.vaeDecoder;
  if (vae) {
    const z = vae.graph.input.find((v) => !vae.graph.initializer.some((t) => t.name === v.name));
    if (z) {
      const shape = [plan.images, plan.latentChannels, plan.latent.height, plan.latent.width];
      const w = walkGraph(
        vae.graph,
        new Map([[z.name, { shape, elemType: DataType.FLOAT }]]),
        half,
      );
      consider("vae_decoder", w.peak, w.largest);
    }
  }
  return best;
}

/** The memory a plan needs on `backend` (see the module doc), and whether it fits. */
export function estimateMemory(
  profile: MemoryProfile,
  plan: PlanShape,
  backend: Backend,
): MemoryEstimate {
  const graphs = [...profile.segments];
  if (profile.textEncoder) graphs.push(profile.textEncoder);
  if (profile.vaeDecoder) graphs.push(profile.vaeDecoder);
  const weightsBytes = graphs.reduce((s, g) => s + residentWeightBytes(g.weights, backend), 0);
  const largestFile = Math.max(...graphs.map((g) => g.fileBytes));
  const act = activationPeak(profile, plan, backend);
  const totalBytes = (backend === "wasm" ? WASM_BASE_BYTES : 0) + weightsBytes +
    Math.max(backend === "wasm" ? largestFile : 0, act.bytes);
  const limitBytes = backend === "wasm" ? WASM_HEAP_LIMIT : undefined;
  return {
    backend,
    weightsBytes,
    activationBytes: act.bytes,
    peakAt: act.at,
    largestTensor: act.largest,
    totalBytes,
    limitBytes,
    fits: limitBytes === undefined || totalBytes <= limitBytes * HEAP_HEADROOM,
  };
}

const gib = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;

/**
 * Throws {@link PlanMemoryError} when `estimate` does not fit, with the cause (weights and
 * activations against the limit, where the peak is) and the way out for this plan's `precision`.
 */
export function checkMemory(
  estimate: MemoryEstimate,
  what: string,
  precision: SplitManifest["precision"],
): void {
  if (estimate.fits) return;
  const e = estimate;
  const ways: string[] = [];
  if (precision === "fp32" || precision === "fp16") {
    ways.push(
      "an int8 plan (deno task split --quantize int8; wasm keeps int8 weights at 1 byte, " +
        (precision === "fp16" ? "fp16 ones are computed as fp32 there" : "a quarter of fp32") +
        ")",
    );
  }
  // a smaller plan helps only when the weights alone leave room for activations
  if (WASM_BASE_BYTES + e.weightsBytes < e.limitBytes! * HEAP_HEADROOM) {
    ways.push("a smaller size or fewer images at once");
  }
  ways.push("WebGPU (BACKEND=webgpu) on a GPU host");
  throw new PlanMemoryError(
    e,
    `${what} needs about ${gib(e.totalBytes)} on ${e.backend}, more than the ${
      gib(e.limitBytes! * HEAP_HEADROOM)
    } it can use of its ${gib(e.limitBytes!)} heap: weights ${gib(e.weightsBytes)} (${precision}` +
      `${e.backend === "wasm" && precision === "fp16" ? ", held as fp32 on wasm" : ""}), ` +
      `activations ${gib(e.activationBytes)} at ${e.peakAt} (largest tensor ${
        gib(e.largestTensor.bytes)
      }). Use ${ways.join(", or ")}.`,
  );
}

/** Activation bytes a batch may take on a backend with no known limit (WebGPU): 4 GiB. */
export const ACTIVATION_BUDGET = 4 * 2 ** 30;

/**
 * The most images, 1 … `wanted`, one UNet batch may hold: the largest count whose estimate fits
 * the backend's limit, or, where none is known (WebGPU), whose activations stay within `budget`.
 * `estimate(n)` must grow with n. Returns 1 when even one image does not fit (the run's own
 * check then refuses it with the reason).
 */
export function fittingImages(
  estimate: (images: number) => MemoryEstimate,
  wanted: number,
  budget = ACTIVATION_BUDGET,
): number {
  const fits = (n: number) => {
    const e = estimate(n);
    return e.limitBytes === undefined ? e.activationBytes <= budget : e.fits;
  };
  let lo = 1, hi = Math.max(1, Math.floor(wanted));
  if (fits(hi)) return hi;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (fits(mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}

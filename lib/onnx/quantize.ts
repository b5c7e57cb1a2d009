/**
 * Weight quantization of a (segment) model, keeping its float32 inputs and outputs so the engine
 * stays precision-agnostic. Both modes use only ops that ORT's wasm and WebGPU backends run.
 *
 * - `fp16`: mixed precision. Conv/ConvTranspose/MatMul/Gemm run in float16 (weights stored as
 *   float16), and so does everything downstream of them, except normalisations (Instance/Layer/
 *   Group/BatchNorm), range-sensitive ops (Exp, Log, Pow, Sqrt, Sin, Cos, reductions, Range) and
 *   attention's position sums (Softmax, and the MatMul of its probabilities with the values),
 *   which run in float32 behind Cast nodes. Float32 activations entering a float16 op are cast;
 *   float16 tensors leaving the model are cast back to float32. The timestep embedding (Cast of
 *   an integer, Sin/Cos) therefore stays float32 until its first Linear layer. Why attention: the
 *   probabilities·values MatMul sums over every latent position, and onnxruntime's WebGPU float16
 *   MatMul accumulates in float16, so its error grows with the image (measured on lavapipe:
 *   `bench/fp16_drift.ts`; wasm computes in float32 and does not drift).
 * - `int8` / `uint8`: weight-only quantization, per output channel, of Conv/ConvTranspose/MatMul/
 *   Gemm weights with at least 256 elements: the weight initializer is replaced by
 *   `DequantizeLinear(q, scale, zero_point, axis)` producing the same name (axis needs opset 13;
 *   older models get one scale per tensor). int8 is symmetric (zero point 0, range ±127); uint8
 *   is asymmetric (min/max per channel, zero included). Biases, norm parameters and small
 *   tensors stay float32. No ConvInteger/MatMulInteger (WebGPU does not run them).
 *
 * @module
 */

import {
  AttributeType,
  attrInt,
  DataType,
  isStd,
  type Model,
  type Node,
  onnxOpset,
  type TensorProto,
} from "./model.ts";
import { inferGraph } from "./infer.ts";
import {
  elementCount,
  float16Tensor,
  float32Tensor,
  floatValues,
  int8Tensor,
  isExternal,
} from "./tensor.ts";

/** Weight precisions the splitter offers. */
export type Precision = "fp32" | "fp16" | "int8" | "uint8";

/** Weights with fewer elements stay float32 in int8/uint8 mode. */
export const MIN_QUANTIZED_ELEMENTS = 256;

const HEAVY = new Set(["Conv", "ConvTranspose", "MatMul", "Gemm"]);

/** Ops kept in float32 in fp16 mode (accuracy or range). */
export const FP32_OPS = new Set([
  "InstanceNormalization",
  "LayerNormalization",
  "GroupNormalization",
  "BatchNormalization",
  "Exp",
  "Log",
  "Pow",
  "Sqrt",
  "Reciprocal",
  "Sin",
  "Cos",
  "Softmax",
  "LogSoftmax",
  "Range",
  "CumSum",
  "ReduceMean",
  "ReduceSum",
  "ReduceSumSquare",
  "ReduceL2",
  "ReduceLogSumExp",
  "ReduceProd",
  "TopK",
  "RandomNormal",
  "RandomNormalLike",
  "RandomUniform",
  "RandomUniformLike",
  "DequantizeLinear",
  "QuantizeLinear",
]);

/** Ops a value passes through unchanged on its way from a Softmax to the MatMul that reads it. */
const PASS_THROUGH = new Set(["Cast", "Identity", "Reshape", "Transpose", "Dropout"]);

/** Inputs that are not data and keep their float32 type in fp16 mode (op → input indices). */
const NON_DATA_INPUTS: Record<string, number[]> = { Resize: [1, 2], Upsample: [1] };

/** Returns the model with its weights at `precision` (a new model; the input is not changed). */
export function quantizeModel(model: Model, precision: Precision): Model {
  if (precision === "fp32") return model;
  for (const t of model.graph.initializer) {
    if (isExternal(t)) throw new Error(`quantize: tensor ${t.name} is external; load it first`);
  }
  switch (precision) {
    case "fp16":
      return toFloat16(model);
    case "int8":
    case "uint8":
      return quantizeWeights(model, precision);
  }
}

// ---------------------------------------------------------------------------------------------
// int8 / uint8 weight-only

/** Per-channel quantization of a float array viewed as [channels along `axis`]. */
export function quantizePerChannel(
  values: Float32Array,
  dims: number[],
  axis: number,
  signed: boolean,
): { q: Int8Array | Uint8Array; scale: Float32Array; zeroPoint: Int8Array | Uint8Array } {
  const channels = axis < 0 ? 1 : dims[axis];
  const inner = axis < 0 ? values.length : elementCount(dims.slice(axis + 1));
  const channelOf = (i: number) => (axis < 0 ? 0 : Math.floor(i / inner) % channels);
  const lo = new Float32Array(channels).fill(0);
  const hi = new Float32Array(channels).fill(0);
  for (let i = 0; i < values.length; i++) {
    const c = channelOf(i), v = values[i];
    if (v < lo[c]) lo[c] = v;
    if (v > hi[c]) hi[c] = v;
  }
  const scale = new Float32Array(channels);
  const zeroPoint = signed ? new Int8Array(channels) : new Uint8Array(channels);
  for (let c = 0; c < channels; c++) {
    if (signed) {
      const m = Math.max(-lo[c], hi[c]);
      scale[c] = m > 0 ? m / 127 : 1;
    } else {
      const range = hi[c] - lo[c];
      scale[c] = range > 0 ? range / 255 : 1;
      zeroPoint[c] = Math.max(0, Math.min(255, Math.round(-lo[c] / scale[c])));
    }
  }
  const q = signed ? new Int8Array(values.length) : new Uint8Array(values.length);
  const qmin = signed ? -127 : 0, qmax = signed ? 127 : 255;
  for (let i = 0; i < values.length; i++) {
    const c = channelOf(i);
    q[i] = Math.max(qmin, Math.min(qmax, Math.round(values[i] / scale[c]) + zeroPoint[c]));
  }
  return { q, scale, zeroPoint };
}

function quantizeWeights(model: Model, precision: "int8" | "uint8"): Model {
  const g = model.graph;
  const perAxis = onnxOpset(model) >= 13;
  const consumers = new Map<string, { node: Node; index: number }[]>();
  for (const n of g.node) {
    n.input.forEach((name, index) => {
      if (!name) return;
      let list = consumers.get(name);
      if (!list) consumers.set(name, list = []);
      list.push({ node: n, index });
    });
  }
  // weight axis of a heavy-op weight input, or undefined when the use is not a weight
  const weightAxis = (n: Node, index: number, rank: number): number | undefined => {
    if (!isStd(n) || index !== 1) return undefined;
    switch (n.opType) {
      case "Conv":
        return 0;
      case "ConvTranspose":
        return 1;
      case "MatMul":
        return rank >= 2 ? rank - 1 : undefined;
      case "Gemm":
        return attrInt(n, "transB", 0) ? 0 : 1;
    }
    return undefined;
  };
  // all uses of a tensor, following Identity copies
  const usesOf = (name: string): { node: Node; index: number }[] => {
    const out: { node: Node; index: number }[] = [];
    for (const u of consumers.get(name) ?? []) {
      if (isStd(u.node) && u.node.opType === "Identity") out.push(...usesOf(u.node.output[0]));
      else out.push(u);
    }
    return out;
  };
  const graphOutputs = new Set(g.output.map((v) => v.name));

  const newInits: TensorProto[] = [];
  const dqNodes: Node[] = [];
  const replaced = new Set<string>();
  for (const t of g.initializer) {
    if (t.dataType !== DataType.FLOAT || elementCount(t.dims) < MIN_QUANTIZED_ELEMENTS) continue;
    if (graphOutputs.has(t.name)) continue;
    const uses = usesOf(t.name);
    if (uses.length === 0) continue;
    const axes = uses.map((u) => weightAxis(u.node, u.index, t.dims.length));
    if (axes.some((a) => a === undefined) || new Set(axes).size !== 1) continue;
    const axis = perAxis ? axes[0]! : -1;
    const { q, scale, zeroPoint } = quantizePerChannel(
      floatValues(t),
      t.dims,
      axis,
      precision === "int8",
    );
    const base = t.name;
    const scaleDims = axis < 0 ? [] : [scale.length];
    newInits.push(
      int8Tensor(`${base}__q`, t.dims, q),
      float32Tensor(`${base}__scale`, scaleDims, scale),
      int8Tensor(`${base}__zero_point`, scaleDims, zeroPoint),
    );
    const attribute = axis < 0 ? [] : [{ name: "axis", type: AttributeType.INT, i: BigInt(axis) }];
    dqNodes.push({
      name: `${base}__DequantizeLinear`,
      opType: "DequantizeLinear",
      domain: "",
      input: [`${base}__q`, `${base}__scale`, `${base}__zero_point`],
      output: [base],
      attribute,
    });
    replaced.add(base);
  }
  return {
    ...model,
    graph: {
      ...g,
      initializer: [...g.initializer.filter((t) => !replaced.has(t.name)), ...newInits],
      node: [...dqNodes, ...g.node],
    },
  };
}

// ---------------------------------------------------------------------------------------------
// fp16

function toFloat16(model: Model): Model {
  const g = model.graph;
  if (g.node.some((n) => n.attribute.some((a) => a.g || a.graphs))) {
    throw new Error("fp16 conversion does not support control-flow nodes (If/Loop/Scan)");
  }
  const info = inferGraph(g);
  const isFloat = (name: string) => info.get(name)?.elemType === DataType.FLOAT;
  const inits = new Map(g.initializer.map((t) => [t.name, t]));
  const producer = new Map<string, Node>();
  for (const n of g.node) for (const o of n.output) if (o) producer.set(o, n);
  const graphOutputs = new Set(g.output.map((v) => v.name));

  // constant float tensors (initializers, Constant nodes, Identity of those): convertible
  const constTensor = (name: string): TensorProto | undefined => {
    const t = inits.get(name);
    if (t) return t;
    const p = producer.get(name);
    if (!p || !isStd(p)) return undefined;
    if (p.opType === "Identity") return constTensor(p.input[0]);
    if (p.opType === "Constant") {
      const a = p.attribute[0];
      if (a?.t) return { ...a.t, name };
      if (a?.name === "value_float") return float32Tensor(name, [], Float32Array.of(a.f ?? 0));
      if (a?.name === "value_floats") {
        return float32Tensor(name, [a.floats!.length], Float32Array.from(a.floats!));
      }
    }
    return undefined;
  };

  const half = new Map<string, string>(); // tensor → name of its float16 version
  const full = new Map<string, string>(); // tensor → name of its float32 version
  const out: Node[] = [];
  const extraInits: TensorProto[] = [];
  let castCount = 0;
  const cast = (from: string, to: string, type: number) => {
    out.push({
      name: `fp16_cast_${castCount++}`,
      opType: "Cast",
      domain: "",
      input: [from],
      output: [to],
      attribute: [{ name: "to", type: AttributeType.INT, i: BigInt(type) }],
    });
  };
  const asHalf = (name: string): string => {
    const h = half.get(name);
    if (h) return h;
    const c = constTensor(name);
    const target = `${name}__fp16`;
    if (c && c.dataType === DataType.FLOAT) {
      extraInits.push(float16Tensor(target, c.dims, floatValues(c)));
    } else {
      cast(full.get(name) ?? name, target, DataType.FLOAT16);
    }
    half.set(name, target);
    return target;
  };
  const asFull = (name: string): string => {
    const f = full.get(name);
    if (f) return f;
    const target = `${name}__fp32`;
    cast(half.get(name)!, target, DataType.FLOAT);
    full.set(name, target);
    return target;
  };

  // attention probabilities · values: a MatMul reading a Softmax output sums over positions
  const fromSoftmax = (name: string): boolean => {
    let p = producer.get(name);
    while (p && isStd(p) && PASS_THROUGH.has(p.opType)) p = producer.get(p.input[0]);
    return p !== undefined && isStd(p) && p.opType === "Softmax";
  };
  const producedHalf = new Set<string>();
  for (const n of g.node) {
    const std = isStd(n);
    const nonData = NON_DATA_INPUTS[n.opType] ?? [];
    const floatIn = n.input.map((x, i) => x !== "" && isFloat(x) && !nonData.includes(i));
    const anyHalfIn = n.input.some((x, i) => floatIn[i] && producedHalf.has(x));
    const isConstNode = std &&
      (n.opType === "Constant" ||
        (n.opType === "Identity" && constTensor(n.input[0]) !== undefined));
    const positionSum = n.opType === "MatMul" && n.input.some(fromSoftmax);
    const runHalf = std && !isConstNode && !FP32_OPS.has(n.opType) && !positionSum &&
      (HEAVY.has(n.opType) || anyHalfIn);
    const input = n.input.map((x, i) => {
      if (x === "") return x;
      if (runHalf && floatIn[i]) return asHalf(x);
      return producedHalf.has(x) ? asFull(x) : x;
    });
    if (!runHalf) {
      out.push(input.every((x, i) => x === n.input[i]) ? n : { ...n, input });
      for (const o of n.output) if (o) full.set(o, o);
      continue;
    }
    let attribute = n.attribute;
    if (n.opType === "Cast" && attrInt(n, "to", 0) === DataType.FLOAT) {
      attribute = n.attribute.map((
        a,
      ) => (a.name === "to" ? { ...a, i: BigInt(DataType.FLOAT16) } : a));
    }
    const renamed: [string, string][] = [];
    const output = n.output.map((o) => {
      if (!o) return o;
      if (!isFloat(o)) {
        full.set(o, o);
        return o;
      }
      producedHalf.add(o);
      if (graphOutputs.has(o)) {
        renamed.push([o, `${o}__fp16`]);
        half.set(o, `${o}__fp16`);
        return `${o}__fp16`;
      }
      half.set(o, o);
      return o;
    });
    out.push({ ...n, input, output, attribute });
    for (const [o, h] of renamed) {
      cast(h, o, DataType.FLOAT);
      full.set(o, o);
    }
  }

  // drop what nothing reads any more (original float32 weights, Constant nodes)
  const read = new Set<string>([...out.flatMap((n) => n.input), ...graphOutputs]);
  let nodes = out;
  for (;;) {
    const kept = nodes.filter((n) =>
      !(isStd(n) && (n.opType === "Constant" || n.opType === "Identity") &&
        n.output.every((o) => !read.has(o)))
    );
    if (kept.length === nodes.length) break;
    nodes = kept;
    read.clear();
    for (const x of [...nodes.flatMap((n) => n.input), ...graphOutputs]) read.add(x);
  }
  const initializer = [...g.initializer, ...extraInits].filter((t) => read.has(t.name));
  return {
    ...model,
    graph: {
      ...g,
      node: nodes,
      initializer,
      valueInfo: g.valueInfo.filter((v) => v.type?.tensor?.elemType !== DataType.FLOAT),
    },
  };
}

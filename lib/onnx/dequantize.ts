/**
 * Load-time dequantization: every `DequantizeLinear` whose inputs are all initializers (the
 * weight-only int8/uint8 form `lib/onnx/quantize.ts` writes) is replaced by the float initializer
 * it computes, `y = (q − zero_point) · scale` (ONNX operator DequantizeLinear, opset 10–21:
 * per tensor, or per channel along `axis`, default 1; blocked quantization is left alone). The
 * 8-bit weights stay the on-disk format (download size matters at the edge); the sessions get float
 * weights, so no `DequantizeLinear` kernel runs per evaluation (132 of them per evaluation of the
 * default model's int8 UNet, and ~12% of its wasm time).
 *
 * Optionally the result is then converted to float16 mixed precision (`quantizeModel(…, "fp16")`:
 * float16 weights and compute, float32 norms and segment boundaries), for WebGPU adapters with
 * `shader-f16`.
 *
 * The serving path imports this one module of `lib/onnx/` (the rest is offline graph surgery): the
 * engine rewrites the segment bytes in memory before it creates its sessions, because the point is
 * to keep the shipped files small and the per-evaluation graph free of dequantization. It works on
 * bytes already checked against `split.json`; nothing is written to disk.
 *
 * @module
 */

import {
  attrInt,
  DataType,
  decodeModel,
  encodeModel,
  isStd,
  type Model,
  type Node,
} from "./model.ts";
import { quantizeModel } from "./quantize.ts";
import {
  elementCount,
  float32Tensor,
  floatValues,
  inlineBytes,
  isExternal,
  rawTensor,
} from "./tensor.ts";

/** What the float weights should be after dequantization. */
export type DequantizeTarget = "float32" | "float16";

/** How many `DequantizeLinear` nodes were folded, and how many stayed (non-constant inputs). */
export interface DequantizeStats {
  folded: number;
  kept: number;
}

/** The signed/unsigned 8-bit (or 16/32-bit integer) values of an inline tensor, as numbers. */
function quantizedValues(bytes: Uint8Array, dataType: number, n: number): ArrayLike<number> {
  const b = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  switch (dataType) {
    case DataType.INT8:
      return new Int8Array(b.buffer, b.byteOffset, n);
    case DataType.UINT8:
      return new Uint8Array(b.buffer, b.byteOffset, n);
    case DataType.INT16:
      return new Int16Array(b.buffer, b.byteOffset, n);
    case DataType.UINT16:
      return new Uint16Array(b.buffer, b.byteOffset, n);
    case DataType.INT32:
      return new Int32Array(b.buffer, b.byteOffset, n);
    default:
      throw new Error(`DequantizeLinear input of data type ${dataType} is not supported`);
  }
}

/**
 * Folds every constant `DequantizeLinear` of `model` into a float initializer of the scale's type
 * (a new model; the input is not changed). Inputs that are graph inputs or node outputs, or that
 * live in external data, leave the node as it is (counted in `kept`). Initializers only the folded
 * nodes read are dropped.
 */
export function foldDequantizeLinear(model: Model): { model: Model; stats: DequantizeStats } {
  const g = model.graph;
  const inits = new Map(g.initializer.map((t) => [t.name, t]));
  const graphInputs = new Set(g.input.map((v) => v.name));
  const stats: DequantizeStats = { folded: 0, kept: 0 };
  const folded = new Map<string, ReturnType<typeof rawTensor>>();
  const nodes: Node[] = [];
  for (const n of g.node) {
    if (!isStd(n) || n.opType !== "DequantizeLinear") {
      nodes.push(n);
      continue;
    }
    const [xName, sName, zName] = n.input;
    const x = inits.get(xName), s = inits.get(sName), z = zName ? inits.get(zName) : undefined;
    const constant = x && s && (!zName || z) &&
      ![xName, sName, zName].some((v) => v && graphInputs.has(v)) &&
      ![x, s, z].some((t) => t && isExternal(t));
    const blocked = attrInt(n, "block_size", 0) > 0;
    if (!constant || blocked || !x || !s) {
      stats.kept++;
      nodes.push(n);
      continue;
    }
    const count = elementCount(x.dims);
    const q = quantizedValues(inlineBytes(x), x.dataType, count);
    const scale = floatValues(s);
    const zero = z ? quantizedValues(inlineBytes(z), z.dataType, elementCount(z.dims)) : undefined;
    const perChannel = s.dims.length === 1 && x.dims.length > 0 && scale.length > 1;
    let axis = attrInt(n, "axis", 1);
    if (axis < 0) axis += x.dims.length;
    if (perChannel && x.dims[axis] !== scale.length) {
      throw new Error(
        `DequantizeLinear ${n.name}: ${scale.length} scales for axis ${axis} of [${x.dims}]`,
      );
    }
    const inner = perChannel ? elementCount(x.dims.slice(axis + 1)) : count;
    const channels = perChannel ? scale.length : 1;
    const y = new Float32Array(count);
    for (let i = 0; i < count; i++) {
      const c = perChannel ? Math.floor(i / inner) % channels : 0;
      y[i] = (q[i] - (zero ? zero[c] : 0)) * scale[c];
    }
    const name = n.output[0];
    folded.set(
      name,
      s.dataType === DataType.FLOAT16
        ? rawTensor(name, DataType.FLOAT16, x.dims, new Uint8Array(Float16Array.from(y).buffer))
        : float32Tensor(name, x.dims, y),
    );
    stats.folded++;
  }
  if (stats.folded === 0) return { model, stats };
  const read = new Set([...nodes.flatMap((n) => n.input), ...g.output.map((v) => v.name)]);
  const initializer = [
    ...g.initializer.filter((t) => read.has(t.name) && !folded.has(t.name)),
    ...folded.values(),
  ];
  return { model: { ...model, graph: { ...g, node: nodes, initializer } }, stats };
}

/**
 * Rewrites ONNX model bytes whose weights are 8-bit (`DequantizeLinear` on initializers) into bytes
 * with float weights: float32, or float16 mixed precision for `target: "float16"`. Returns the
 * bytes unchanged (same object) when the model has no constant `DequantizeLinear`. Throws
 * `OnnxFormatError` on bytes that are not an ONNX model.
 */
export function dequantizeModelBytes(
  bytes: Uint8Array,
  target: DequantizeTarget = "float32",
): { bytes: Uint8Array; stats: DequantizeStats } {
  const { model, stats } = foldDequantizeLinear(decodeModel(bytes));
  if (stats.folded === 0) return { bytes, stats };
  const out = target === "float16" ? quantizeModel(model, "fp16") : model;
  return { bytes: encodeModel(out), stats };
}

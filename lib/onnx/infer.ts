/**
 * Best-effort static type and shape inference over an ONNX graph, for the tensors the splitter
 * cuts (exports from the TorchScript exporter usually carry no `value_info`). Element types are
 * propagated exactly for the ops a diffusion UNet uses (and "same as first input" otherwise);
 * shapes are propagated symbolically (`"batch"` stays `"batch"`) through elementwise ops, Conv,
 * MatMul/Gemm, Concat, Resize, Transpose, and Reshape/Unsqueeze/Squeeze/Slice/Gather fed by
 * small integer tensors whose values are known (from constants and `Shape`). A dimension that
 * cannot be derived is `"?"`; a rank that cannot be derived leaves the shape `undefined`.
 *
 * @module
 */

import {
  attrInt,
  attrInts,
  DataType,
  getAttr,
  type Graph,
  isStd,
  type Node,
  type TensorProto,
} from "./model.ts";
import { elementCount, floatValues, intValues, isExternal } from "./tensor.ts";

/** A dimension: a size, a symbolic name, or `"?"` when unknown. */
export type Dim = number | string;

/** What inference knows about a tensor. */
export interface TensorInfo {
  elemType: number;
  shape?: Dim[];
  /** Values of small integer tensors (shapes being computed), symbolic where needed. */
  value?: Dim[];
}

const UNKNOWN: Dim = "?";

const SAME_SHAPE = new Set([
  "Relu",
  "Sigmoid",
  "Tanh",
  "Erf",
  "Exp",
  "Log",
  "Sqrt",
  "Neg",
  "Abs",
  "Cast",
  "CastLike",
  "Softmax",
  "LogSoftmax",
  "LayerNormalization",
  "InstanceNormalization",
  "GroupNormalization",
  "BatchNormalization",
  "Identity",
  "Dropout",
  "Gelu",
  "Sin",
  "Cos",
  "Reciprocal",
  "Floor",
  "Ceil",
  "Not",
  "Clip",
  "LeakyRelu",
  "HardSigmoid",
  "Softplus",
  "Mish",
  "Elu",
  "Selu",
  "HardSwish",
  "Round",
  "Sign",
  "IsNaN",
  "IsInf",
  "QuantizeLinear",
  "DequantizeLinear",
  "SimplifiedLayerNormalization",
]);

const BROADCAST = new Set([
  "Add",
  "Sub",
  "Mul",
  "Div",
  "Pow",
  "Equal",
  "Where",
  "And",
  "Or",
  "Xor",
  "Less",
  "Greater",
  "LessOrEqual",
  "GreaterOrEqual",
  "Max",
  "Min",
  "Mod",
  "PRelu",
  "Sum",
  "Mean",
]);

const BOOL_OUT = new Set([
  "Equal",
  "Less",
  "Greater",
  "LessOrEqual",
  "GreaterOrEqual",
  "Not",
  "And",
  "Or",
  "Xor",
  "IsNaN",
  "IsInf",
]);

const INT64_OUT = new Set(["Shape", "Size", "NonZero", "ArgMax", "ArgMin"]);

/** Infers element types and shapes of every tensor of a graph (inputs, initializers, nodes). */
export function inferGraph(g: Graph): Map<string, TensorInfo> {
  const info = new Map<string, TensorInfo>();
  const fromValueInfo = (name: string, t: Graph["input"][number]["type"]) => {
    const tt = t?.tensor;
    if (!tt) return;
    info.set(name, {
      elemType: tt.elemType,
      shape: tt.shape?.map((d) => d.value ?? d.param ?? UNKNOWN),
    });
  };
  for (const t of g.initializer) {
    info.set(t.name, constantInfo(t));
  }
  for (const v of g.input) if (!info.has(v.name)) fromValueInfo(v.name, v.type);
  const declared = new Map<string, TensorInfo>();
  for (const v of [...g.valueInfo, ...g.output]) {
    const tt = v.type?.tensor;
    if (tt) {
      declared.set(v.name, {
        elemType: tt.elemType,
        shape: tt.shape?.map((d) => d.value ?? d.param ?? UNKNOWN),
      });
    }
  }
  for (const node of g.node) {
    let outs: TensorInfo[];
    try {
      outs = inferNode(node, (name) => info.get(name));
    } catch {
      outs = [];
    }
    node.output.forEach((name, k) => {
      if (!name) return;
      const d = declared.get(name);
      const inferred = outs[k];
      if (d) {
        // declared types win; keep an inferred value and fill unknown dims from inference
        const shape = d.shape ?? inferred?.shape;
        info.set(name, {
          elemType: d.elemType || inferred?.elemType || 0,
          shape,
          value: inferred?.value,
        });
      } else if (inferred) info.set(name, inferred);
    });
  }
  return info;
}

function isIntType(t: number): boolean {
  return t === DataType.INT64 || t === DataType.INT32;
}

function isNum(d: Dim | undefined): d is number {
  return typeof d === "number";
}

function broadcast(shapes: (Dim[] | undefined)[]): Dim[] | undefined {
  if (shapes.some((s) => s === undefined)) return undefined;
  const rank = Math.max(...shapes.map((s) => s!.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let d: Dim = 1;
    for (const s of shapes) {
      const x = s![s!.length - rank + i];
      if (x === undefined || x === 1) continue;
      if (d === 1) d = x;
      else if (d !== x) {
        if (isNum(d) && !isNum(x)) continue;
        if (isNum(x) && !isNum(d)) d = x;
        else d = UNKNOWN;
      }
    }
    out.push(d);
  }
  return out;
}

/** Symbolic product: numeric factor times a multiset of symbol names. */
interface Product {
  num: number;
  syms: string[];
  unknown: boolean;
}

function product(dims: Dim[]): Product {
  const p: Product = { num: 1, syms: [], unknown: false };
  for (const d of dims) {
    if (isNum(d)) p.num *= d;
    else if (d === UNKNOWN) p.unknown = true;
    else p.syms.push(d);
  }
  return p;
}

/** total / part when it is a whole dimension, else "?". */
function divide(total: Product, part: Product): Dim {
  if (total.unknown || part.unknown) return UNKNOWN;
  const syms = [...total.syms];
  for (const s of part.syms) {
    const i = syms.indexOf(s);
    if (i < 0) return UNKNOWN;
    syms.splice(i, 1);
  }
  if (part.num === 0 || total.num % part.num !== 0) return UNKNOWN;
  const n = total.num / part.num;
  if (syms.length === 0) return n;
  if (syms.length === 1 && n === 1) return syms[0];
  return UNKNOWN;
}

function arith(op: string, a: Dim, b: Dim, float: boolean): Dim {
  if (isNum(a) && isNum(b)) {
    if (op === "Div" && float) return a / b;
    switch (op) {
      case "Add":
        return a + b;
      case "Sub":
        return a - b;
      case "Mul":
        return a * b;
      case "Div":
        return Math.trunc(a / b);
    }
  }
  if (op === "Mul" && a === 1) return b;
  if ((op === "Mul" || op === "Div") && b === 1) return a;
  if ((op === "Add" || op === "Sub") && b === 0) return a;
  return UNKNOWN;
}

/** Values of elementwise ops on small known tensors (shape arithmetic). */
function elementwiseValue(
  op: string,
  vals: (Dim[] | undefined)[],
  float: boolean,
): Dim[] | undefined {
  if (vals.length < 2 || vals.some((v) => v === undefined)) return undefined;
  const vs = vals as Dim[][];
  const n = Math.max(...vs.map((v) => v.length));
  if (vs.some((v) => v.length !== n && v.length !== 1)) return undefined;
  const at = (v: Dim[], i: number) => v[v.length === 1 ? 0 : i];
  const out: Dim[] = [];
  for (let i = 0; i < n; i++) {
    const a = at(vs[0], i), b = at(vs[1], i);
    if (op === "Equal") {
      if (a === UNKNOWN || b === UNKNOWN) out.push(UNKNOWN);
      else if (a === b) out.push(1);
      // symbolic dimensions are sizes: never negative
      else if (isNum(a) && isNum(b)) out.push(0);
      else out.push((isNum(a) && a < 0) || (isNum(b) && b < 0) ? 0 : UNKNOWN);
    } else if (op === "Where") {
      out.push(a === 1 ? b : a === 0 ? at(vs[2], i) : UNKNOWN);
    } else if (op === "Add" || op === "Sub" || op === "Mul" || op === "Div") {
      out.push(arith(op, a, b, float));
    } else return undefined;
  }
  return out;
}

function normAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

/** Infers the outputs of one node from its inputs' infos. */
function inferNode(node: Node, get: (name: string) => TensorInfo | undefined): TensorInfo[] {
  const ins = node.input.map((n) => (n ? get(n) : undefined));
  const x = ins[0];
  const op = isStd(node) ? node.opType : `${node.domain}:${node.opType}`;
  const constInts = (i: number): Dim[] | undefined => ins[i]?.value;

  // element type
  let elemType = x?.elemType ?? 0;
  if (op === "Cast") elemType = attrInt(node, "to", 0);
  else if (op === "CastLike") elemType = ins[1]?.elemType ?? 0;
  else if (INT64_OUT.has(op)) elemType = DataType.INT64;
  else if (BOOL_OUT.has(op)) elemType = DataType.BOOL;
  else if (op === "Where") elemType = ins[1]?.elemType ?? 0;
  else if (op === "DequantizeLinear") elemType = ins[1]?.elemType ?? DataType.FLOAT;
  else if (op === "QuantizeLinear") elemType = ins[2]?.elemType ?? DataType.UINT8;
  else if (op === "ConstantOfShape") {
    elemType = getAttr(node, "value")?.t?.dataType ?? DataType.FLOAT;
  } else if (op === "Constant") {
    const a = node.attribute[0];
    if (a?.t) return [constantInfo(a.t)];
    if (a?.name === "value_float" || a?.name === "value_floats") {
      return [{
        elemType: DataType.FLOAT,
        shape: a.name === "value_float" ? [] : [a.floats?.length ?? 0],
      }];
    }
    if (a?.name === "value_int") {
      return [{ elemType: DataType.INT64, shape: [], value: [Number(a.i)] }];
    }
    if (a?.name === "value_ints") {
      const v = (a.ints ?? []).map(Number);
      return [{ elemType: DataType.INT64, shape: [v.length], value: v }];
    }
    return [{ elemType: 0 }];
  }

  const s = x?.shape;
  let shape: Dim[] | undefined;
  let value: Dim[] | undefined;
  if (SAME_SHAPE.has(op)) {
    shape = s;
    if (op === "Cast" || op === "Identity") value = x?.value;
  } else if (BROADCAST.has(op)) {
    shape = broadcast(ins.map((i) => i?.shape));
    value = elementwiseValue(op, ins.map((i) => i?.value), !isIntType(elemType));
  } else {
    switch (op) {
      case "Shape": {
        if (s) {
          const start = attrInt(node, "start", 0), end = attrInt(node, "end", s.length);
          value = s.slice(
            normAxis(start, s.length),
            normAxis(Math.min(end, s.length), s.length) || s.length,
          );
          shape = [value.length];
        }
        break;
      }
      case "Size":
        shape = [];
        if (s) {
          const p = product(s);
          value = [!p.unknown && p.syms.length === 0 ? p.num : UNKNOWN];
        }
        break;
      case "Conv":
      case "ConvTranspose":
        shape = convShape(node, s, ins[1]?.shape, op === "ConvTranspose");
        break;
      case "Gemm": {
        const a = s, b = ins[1]?.shape;
        if (a && b && a.length === 2 && b.length === 2) {
          const m = attrInt(node, "transA", 0) ? a[1] : a[0];
          const n = attrInt(node, "transB", 0) ? b[0] : b[1];
          shape = [m, n];
        }
        break;
      }
      case "MatMul": {
        const a = s, b = ins[1]?.shape;
        if (a && b && a.length >= 2 && b.length >= 2) {
          const batch = broadcast([a.slice(0, -2), b.slice(0, -2)]);
          if (batch) shape = [...batch, a[a.length - 2], b[b.length - 1]];
        } else if (a && b && b.length === 1) shape = a.slice(0, -1);
        break;
      }
      case "Transpose": {
        if (s) {
          const perm = attrInts(node, "perm") ?? s.map((_, i) => s.length - 1 - i);
          shape = perm.map((p) => s[p]);
        }
        break;
      }
      case "Concat": {
        const shapes = ins.map((i) => i?.shape);
        if (shapes.every((q) => q !== undefined) && shapes.length > 0) {
          const rank = shapes[0]!.length;
          const axis = normAxis(attrInt(node, "axis", 0), rank);
          shape = [...shapes[0]!];
          const p = shapes.map((q) => q![axis]);
          shape[axis] = p.every(isNum) ? p.reduce((a, b) => a + (b as number), 0) : UNKNOWN;
          for (let d = 0; d < rank; d++) {
            if (d !== axis) shape[d] = broadcast(shapes.map((q) => [q![d]]))?.[0] ?? UNKNOWN;
          }
        }
        if (ins.every((i) => i?.value)) value = ins.flatMap((i) => i!.value!);
        break;
      }
      case "Unsqueeze": {
        const axes = attrInts(node, "axes") ?? constInts(1)?.map(Number);
        if (s && axes) {
          const rank = s.length + axes.length;
          const ax = axes.map((a) => normAxis(a, rank));
          shape = [];
          let k = 0;
          for (let d = 0; d < rank; d++) shape.push(ax.includes(d) ? 1 : s[k++]);
        }
        value = x?.value;
        break;
      }
      case "Squeeze": {
        const axes = attrInts(node, "axes") ?? constInts(1)?.map(Number);
        if (s) {
          const ax = axes?.map((a) => normAxis(a, s.length));
          shape = s.filter((d, i) => (ax ? !ax.includes(i) : d !== 1));
        }
        value = x?.value;
        break;
      }
      case "Reshape": {
        const target = constInts(1);
        if (target) {
          const allowZero = attrInt(node, "allowzero", 0) === 1;
          const out = target.map((d, i) => (d === 0 && !allowZero ? (s?.[i] ?? UNKNOWN) : d));
          const neg = out.indexOf(-1);
          if (neg >= 0) {
            out[neg] = s ? divide(product(s), product(out.filter((_, i) => i !== neg))) : UNKNOWN;
          }
          shape = out;
        }
        value = x?.value;
        break;
      }
      case "Flatten": {
        if (s) {
          const axis = normAxis(attrInt(node, "axis", 1), s.length);
          const a = product(s.slice(0, axis)), b = product(s.slice(axis));
          const dim = (p: Product) => divide(p, { num: 1, syms: [], unknown: false });
          shape = [dim(a), dim(b)];
        }
        break;
      }
      case "Gather": {
        const idx = ins[1];
        if (s && idx?.shape) {
          const axis = normAxis(attrInt(node, "axis", 0), s.length);
          shape = [...s.slice(0, axis), ...idx.shape, ...s.slice(axis + 1)];
        }
        if (x?.value && idx?.value && (x.shape?.length ?? 1) === 1) {
          value = idx.value.map((
            i,
          ) => (isNum(i) ? x.value![i < 0 ? i + x.value!.length : i] ?? UNKNOWN : UNKNOWN));
        }
        break;
      }
      case "Slice": {
        const starts = constInts(1), ends = constInts(2);
        const axes = constInts(3) ?? starts?.map((_, i) => i);
        const steps = constInts(4);
        if (s && starts && ends && axes) {
          shape = [...s];
          axes.forEach((a, k) => {
            const ax = normAxis(Number(a), s.length);
            const d = s[ax];
            const st = Number(starts[k]), en = Number(ends[k]), step = steps ? Number(steps[k]) : 1;
            if (isNum(d) && step === 1) {
              const clamp = (v: number) => Math.max(0, Math.min(d, v < 0 ? v + d : v));
              shape![ax] = Math.max(0, clamp(en) - clamp(st));
            } else if (step === 1 && st === 0 && en >= 2 ** 31) shape![ax] = d;
            else shape![ax] = UNKNOWN;
          });
          if (x?.value && s.length === 1 && isNum(s[0])) {
            const st = Number(starts[0]), en = Number(ends[0]);
            const n = x.value.length;
            const c = (v: number) => Math.max(0, Math.min(n, v < 0 ? v + n : v));
            if ((!steps || Number(steps[0]) === 1)) value = x.value.slice(c(st), c(en));
          }
        }
        break;
      }
      case "Expand": {
        const target = constInts(1);
        if (s && target) shape = broadcast([s, target]);
        break;
      }
      case "ConstantOfShape": {
        const target = constInts(0);
        if (target) {
          shape = target;
          const t = getAttr(node, "value")?.t;
          const n = target.every(isNum) ? target.reduce((a, b) => a * (b as number), 1) : -1;
          if (n >= 0 && n <= 64) {
            const fill = t ? constantInfo(t).value?.[0] : 0;
            if (fill !== undefined) value = new Array(n).fill(fill);
          }
        }
        break;
      }
      case "Range":
        shape = [UNKNOWN];
        break;
      case "Resize":
      case "Upsample": {
        const scales = constInts(op === "Upsample" ? 1 : 2);
        const sizes = op === "Resize" ? constInts(3) : undefined;
        if (sizes && sizes.length > 0) shape = sizes;
        else if (s && scales && scales.length === s.length) {
          shape = s.map((d, i) => {
            const f = scales[i];
            if (f === 1) return d;
            return isNum(d) && isNum(f) ? Math.floor(d * f) : UNKNOWN;
          });
        } else if (s) shape = s.map(() => UNKNOWN);
        break;
      }
      case "ReduceMean":
      case "ReduceSum":
      case "ReduceMax":
      case "ReduceMin":
      case "ReduceProd":
      case "ReduceL2":
      case "ReduceSumSquare": {
        const axes = attrInts(node, "axes") ?? constInts(1)?.map(Number);
        const keep = attrInt(node, "keepdims", 1) === 1;
        if (s && axes) {
          const ax = axes.map((a) => normAxis(a, s.length));
          shape = keep
            ? s.map((d, i) => (ax.includes(i) ? 1 : d))
            : s.filter((_, i) => !ax.includes(i));
        }
        break;
      }
      case "Split": {
        // outputs: equal split unless sizes known
        return node.output.map(() => ({ elemType, shape: s?.map(() => UNKNOWN) }));
      }
    }
  }
  return [{ elemType, shape, value }, ...node.output.slice(1).map(() => ({ elemType }))];
}

function constantInfo(t: TensorProto): TensorInfo {
  const ti: TensorInfo = { elemType: t.dataType, shape: [...t.dims] };
  if (!isExternal(t) && elementCount(t.dims) <= 64) {
    try {
      if (isIntType(t.dataType)) ti.value = intValues(t);
      else if (t.dataType === DataType.FLOAT) ti.value = Array.from(floatValues(t));
    } catch { /* no value */ }
  }
  return ti;
}

function convShape(
  node: Node,
  s: Dim[] | undefined,
  w: Dim[] | undefined,
  transpose: boolean,
): Dim[] | undefined {
  if (!s || s.length < 3) return undefined;
  const spatial = s.length - 2;
  const group = attrInt(node, "group", 1);
  const channels = w ? (transpose ? (isNum(w[1]) ? w[1] * group : UNKNOWN) : w[0]) : UNKNOWN;
  const kernel = attrInts(node, "kernel_shape") ?? w?.slice(2).map((d) => (isNum(d) ? d : NaN));
  const strides = attrInts(node, "strides") ?? new Array(spatial).fill(1);
  const dil = attrInts(node, "dilations") ?? new Array(spatial).fill(1);
  const pads = attrInts(node, "pads") ?? new Array(spatial * 2).fill(0);
  const autoPad = new TextDecoder().decode(getAttr(node, "auto_pad")?.s ?? new Uint8Array());
  const out: Dim[] = [s[0], channels];
  for (let i = 0; i < spatial; i++) {
    const d = s[2 + i];
    const k = kernel?.[i];
    if (!isNum(d) || k === undefined || Number.isNaN(k)) {
      out.push(UNKNOWN);
      continue;
    }
    if (transpose) {
      const outPad = attrInts(node, "output_padding")?.[i] ?? 0;
      out.push(
        strides[i] * (d - 1) + outPad + ((k - 1) * dil[i] + 1) - pads[i] - pads[i + spatial],
      );
    } else if (autoPad === "SAME_UPPER" || autoPad === "SAME_LOWER") {
      out.push(Math.ceil(d / strides[i]));
    } else {
      out.push(
        Math.floor((d + pads[i] + pads[i + spatial] - dil[i] * (k - 1) - 1) / strides[i]) + 1,
      );
    }
  }
  return out;
}

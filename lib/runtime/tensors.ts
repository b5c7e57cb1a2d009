/**
 * Tensor helpers over onnxruntime-web: building input tensors of the dtype a model expects, and
 * reading any tensor (CPU or GPU buffer, float32 or float16) back as a Float32Array.
 *
 * @module
 */

import { ort, type Tensor } from "./ort.ts";

/** A float32 tensor over `data` (no copy). */
export function float32Tensor(data: Float32Array, dims: readonly number[]): Tensor {
  return new ort.Tensor("float32", data, dims);
}

/** An int64 tensor from numbers. */
export function int64Tensor(values: readonly number[], dims: readonly number[]): Tensor {
  return new ort.Tensor("int64", BigInt64Array.from(values, (v) => BigInt(Math.round(v))), dims);
}

/**
 * A tensor of numbers in the element type a model input wants (`int64`, `int32`, `float32`,
 * `float16`): for the timestep, which exports declare as int64 or float.
 */
export function numericTensor(
  values: readonly number[],
  dims: readonly number[],
  dtype: string,
): Tensor {
  switch (dtype) {
    case "int64":
      return int64Tensor(values, dims);
    case "int32":
      return new ort.Tensor("int32", Int32Array.from(values, Math.round), dims);
    case "float32":
      return new ort.Tensor("float32", Float32Array.from(values), dims);
    case "float16":
      return new ort.Tensor("float16", new Uint16Array(Float16Array.from(values).buffer), dims);
    default:
      throw new Error(`cannot build a ${dtype} tensor from numbers`);
  }
}

/** Reads a tensor's values as float32, downloading from the GPU when needed. */
export async function toFloat32(t: Tensor): Promise<Float32Array> {
  const data = t.location === "cpu" || t.location === "cpu-pinned" ? t.data : await t.getData();
  if (data instanceof Float32Array) return data;
  if (data instanceof Float16Array || data instanceof Float64Array) return Float32Array.from(data);
  if (data instanceof Uint16Array && t.type === "float16") {
    return Float32Array.from(new Float16Array(data.buffer, data.byteOffset, data.length));
  }
  throw new Error(`tensor of type ${t.type} is not a float tensor`);
}

/** A CPU copy of any tensor (GPU buffers are downloaded; CPU tensors are returned as is). */
export async function toCpu(t: Tensor): Promise<Tensor> {
  if (t.location === "cpu" || t.location === "cpu-pinned") return t;
  const data = await t.getData();
  return new ort.Tensor(t.type, data as Float32Array, t.dims);
}

/** A tensor of zeros with the given type (float32, float16, int64 or int32) and dims (on the CPU). */
export function zeros(type: string, dims: readonly number[]): Tensor {
  const n = dims.reduce((a, b) => a * b, 1);
  switch (type) {
    case "float32":
      return new ort.Tensor("float32", new Float32Array(n), dims);
    case "float16":
      return new ort.Tensor("float16", new Uint16Array(n), dims);
    case "int64":
      return new ort.Tensor("int64", new BigInt64Array(n), dims);
    case "int32":
      return new ort.Tensor("int32", new Int32Array(n), dims);
    default:
      throw new Error(`cannot make a zero ${type} tensor`);
  }
}

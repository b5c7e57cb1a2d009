/**
 * Reading and building ONNX tensor payloads: element sizes, little-endian bytes of any inline
 * tensor, float views for quantization, and constructors for the tensors the graph tools add.
 *
 * @module
 */

import { DataType, type TensorProto } from "./model.ts";

/** Bytes per element of an ONNX data type (0 for strings and unknown types). */
export function elemSize(dataType: number): number {
  switch (dataType) {
    case DataType.FLOAT:
    case DataType.INT32:
    case DataType.UINT32:
      return 4;
    case DataType.UINT8:
    case DataType.INT8:
    case DataType.BOOL:
      return 1;
    case DataType.UINT16:
    case DataType.INT16:
    case DataType.FLOAT16:
    case DataType.BFLOAT16:
      return 2;
    case DataType.INT64:
    case DataType.UINT64:
    case DataType.DOUBLE:
    case DataType.COMPLEX64:
      return 8;
    case DataType.COMPLEX128:
      return 16;
    default:
      return 0;
  }
}

/** Number of elements of a shape (1 for a scalar). */
export function elementCount(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

/** True when the tensor's bytes live in an external file. */
export function isExternal(t: TensorProto): boolean {
  return t.dataLocation === 1;
}

/** Size in bytes of a tensor's payload (inline or external; strings count their bytes). */
export function payloadSize(t: TensorProto): number {
  if (t.stringData) return t.stringData.reduce((s, b) => s + b.length, 0);
  return elementCount(t.dims) * elemSize(t.dataType);
}

/**
 * The little-endian bytes of an inline numeric tensor, whichever field holds them. Typed fields
 * are converted as ONNX defines them (float16/bool/int8/… live in `int32_data`).
 */
export function inlineBytes(t: TensorProto): Uint8Array {
  if (isExternal(t)) throw new Error(`tensor ${t.name}: data is external; load it first`);
  if (t.rawData) return t.rawData;
  const n = elementCount(t.dims);
  const size = elemSize(t.dataType);
  const out = new Uint8Array(n * size);
  const view = new DataView(out.buffer);
  const src = t.floatData ?? t.int32Data ?? t.int64Data ?? t.doubleData ?? t.uint64Data;
  if (!src) {
    if (n === 0) return out;
    throw new Error(`tensor ${t.name}: no data`);
  }
  if (src.length !== n) throw new Error(`tensor ${t.name}: ${src.length} values for ${n} elements`);
  for (let i = 0; i < n; i++) {
    const v = src[i];
    switch (t.dataType) {
      case DataType.FLOAT:
        view.setFloat32(i * 4, v as number, true);
        break;
      case DataType.DOUBLE:
        view.setFloat64(i * 8, v as number, true);
        break;
      case DataType.INT64:
        view.setBigInt64(i * 8, v as bigint, true);
        break;
      case DataType.UINT64:
        view.setBigUint64(i * 8, v as bigint, true);
        break;
      case DataType.INT32:
        view.setInt32(i * 4, v as number, true);
        break;
      case DataType.UINT32:
        view.setUint32(i * 4, Number(v), true);
        break;
      case DataType.FLOAT16:
      case DataType.BFLOAT16:
      case DataType.UINT16:
      case DataType.INT16:
        view.setUint16(i * 2, Number(v) & 0xffff, true);
        break;
      case DataType.UINT8:
      case DataType.INT8:
      case DataType.BOOL:
        view.setUint8(i, Number(v) & 0xff);
        break;
      default:
        throw new Error(`tensor ${t.name}: unsupported data type ${t.dataType}`);
    }
  }
  return out;
}

/** An aligned copy of bytes (typed-array views need an aligned offset). */
function aligned(b: Uint8Array, align: number): ArrayBuffer {
  if (b.byteOffset % align === 0 && b.buffer instanceof ArrayBuffer) {
    return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
  }
  return b.slice().buffer;
}

/** The values of an inline float tensor (float32, float16 or double) as float32. */
export function floatValues(t: TensorProto): Float32Array {
  if (t.dataType === DataType.FLOAT && t.floatData && !t.rawData) return t.floatData;
  const bytes = inlineBytes(t);
  switch (t.dataType) {
    case DataType.FLOAT:
      return new Float32Array(aligned(bytes, 4));
    case DataType.FLOAT16:
      return Float32Array.from(new Float16Array(aligned(bytes, 2)));
    case DataType.DOUBLE:
      return Float32Array.from(new Float64Array(aligned(bytes, 8)));
    default:
      throw new Error(`tensor ${t.name}: not a float tensor (data type ${t.dataType})`);
  }
}

/** The values of an inline integer tensor (int64/int32/…) as numbers. */
export function intValues(t: TensorProto): number[] {
  const bytes = inlineBytes(t);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = elementCount(t.dims);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    switch (t.dataType) {
      case DataType.INT64:
        out.push(Number(view.getBigInt64(i * 8, true)));
        break;
      case DataType.INT32:
        out.push(view.getInt32(i * 4, true));
        break;
      case DataType.UINT8:
      case DataType.BOOL:
        out.push(view.getUint8(i));
        break;
      case DataType.INT8:
        out.push(view.getInt8(i));
        break;
      default:
        throw new Error(`tensor ${t.name}: not an integer tensor (data type ${t.dataType})`);
    }
  }
  return out;
}

/** A tensor with the given raw little-endian bytes. */
export function rawTensor(
  name: string,
  dataType: number,
  dims: number[],
  bytes: Uint8Array,
): TensorProto {
  return { name, dataType, dims: [...dims], rawData: bytes };
}

/** A float32 tensor. */
export function float32Tensor(name: string, dims: number[], data: Float32Array): TensorProto {
  return rawTensor(
    name,
    DataType.FLOAT,
    dims,
    new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  );
}

/** Largest finite float16 magnitude; values beyond it are clamped when converting. */
export const FLOAT16_MAX = 65504;

/** A float16 tensor from float32 values (round to nearest, finite values clamped to ±65504). */
export function float16Tensor(name: string, dims: number[], data: Float32Array): TensorProto {
  const h = new Float16Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    h[i] = Number.isFinite(v) ? Math.max(-FLOAT16_MAX, Math.min(FLOAT16_MAX, v)) : v;
  }
  return rawTensor(name, DataType.FLOAT16, dims, new Uint8Array(h.buffer));
}

/** An int8 or uint8 tensor. */
export function int8Tensor(
  name: string,
  dims: number[],
  data: Int8Array | Uint8Array,
): TensorProto {
  const type = data instanceof Int8Array ? DataType.INT8 : DataType.UINT8;
  return rawTensor(name, type, dims, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
}

/** ONNX data type number → the lower-case name the split manifest uses (`float32`, `int64`, …). */
export function dataTypeName(dataType: number): string {
  switch (dataType) {
    case DataType.FLOAT:
      return "float32";
    case DataType.FLOAT16:
      return "float16";
    case DataType.DOUBLE:
      return "float64";
    case DataType.INT64:
      return "int64";
    case DataType.INT32:
      return "int32";
    case DataType.INT8:
      return "int8";
    case DataType.UINT8:
      return "uint8";
    case DataType.BOOL:
      return "bool";
    case DataType.UINT16:
      return "uint16";
    case DataType.INT16:
      return "int16";
    case DataType.UINT32:
      return "uint32";
    case DataType.UINT64:
      return "uint64";
    case DataType.STRING:
      return "string";
    case DataType.BFLOAT16:
      return "bfloat16";
    default:
      return `type${dataType}`;
  }
}

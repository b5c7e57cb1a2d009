/**
 * ONNX model types and their protobuf codec (`onnx.proto`, IR version 3–10). The decoder keeps
 * every field it does not model (sparse initializers, functions, training info, …) as raw bytes
 * and the encoder writes them back, so decode → encode preserves everything ORT reads. Tensor
 * payloads (`raw_data`) are views into the decoded buffer; nothing is copied.
 *
 * 64-bit integers that can exceed 2^53 (attribute ints, `int64_data`) are `bigint`; dimensions,
 * versions and offsets are `number`.
 *
 * @module
 */

import { ProtobufError, ProtoReader, ProtoWriter, type RawField, WireType } from "./protobuf.ts";

/** ONNX `TensorProto.DataType` values. */
export const DataType = {
  UNDEFINED: 0,
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
  COMPLEX64: 14,
  COMPLEX128: 15,
  BFLOAT16: 16,
} as const;

/** ONNX `AttributeProto.AttributeType` values. */
export const AttributeType = {
  UNDEFINED: 0,
  FLOAT: 1,
  INT: 2,
  STRING: 3,
  TENSOR: 4,
  GRAPH: 5,
  FLOATS: 6,
  INTS: 7,
  STRINGS: 8,
  TENSORS: 9,
  GRAPHS: 10,
  SPARSE_TENSOR: 11,
  SPARSE_TENSORS: 12,
  TYPE_PROTO: 13,
  TYPE_PROTOS: 14,
} as const;

/** `StringStringEntryProto`. */
export interface StringEntry {
  key: string;
  value: string;
}

/** `OperatorSetIdProto`. */
export interface OperatorSetId {
  domain: string;
  version: number;
}

/** `TensorShapeProto.Dimension`: a fixed size, a symbolic name, or unknown (neither). */
export interface Dimension {
  value?: number;
  param?: string;
  denotation?: string;
  unknown?: RawField[];
}

/** `TypeProto.Tensor`. `shape` undefined means unknown rank. */
export interface TensorType {
  elemType: number;
  shape?: Dimension[];
  unknown?: RawField[];
}

/** `TypeProto`. Only tensor types are modelled; sequence/map/optional types are kept raw. */
export interface TypeProto {
  tensor?: TensorType;
  denotation?: string;
  unknown?: RawField[];
}

/** `ValueInfoProto`. */
export interface ValueInfo {
  name: string;
  type?: TypeProto;
  docString?: string;
  unknown?: RawField[];
}

/** `TensorProto`. Data is in exactly one of the data fields, or external (`dataLocation` 1). */
export interface TensorProto {
  name: string;
  dims: number[];
  dataType: number;
  rawData?: Uint8Array;
  floatData?: Float32Array;
  int32Data?: Int32Array;
  int64Data?: BigInt64Array;
  doubleData?: Float64Array;
  uint64Data?: BigUint64Array;
  stringData?: Uint8Array[];
  /** 0 = inline, 1 = external (see `externalData`). */
  dataLocation?: number;
  externalData?: StringEntry[];
  docString?: string;
  unknown?: RawField[];
}

/** `AttributeProto` with every kind; sparse tensors are kept as their encoded bytes. */
export interface Attribute {
  name: string;
  type: number;
  refAttrName?: string;
  docString?: string;
  f?: number;
  i?: bigint;
  s?: Uint8Array;
  t?: TensorProto;
  g?: Graph;
  sparseTensor?: Uint8Array;
  tp?: TypeProto;
  floats?: number[];
  ints?: bigint[];
  strings?: Uint8Array[];
  tensors?: TensorProto[];
  graphs?: Graph[];
  sparseTensors?: Uint8Array[];
  typeProtos?: TypeProto[];
  unknown?: RawField[];
}

/** `NodeProto`. */
export interface Node {
  input: string[];
  output: string[];
  name: string;
  opType: string;
  domain: string;
  attribute: Attribute[];
  docString?: string;
  unknown?: RawField[];
}

/** `GraphProto`. */
export interface Graph {
  name: string;
  node: Node[];
  initializer: TensorProto[];
  input: ValueInfo[];
  output: ValueInfo[];
  valueInfo: ValueInfo[];
  docString?: string;
  /** Sparse initializers, quantization annotations, metadata: kept verbatim. */
  unknown?: RawField[];
}

/** `ModelProto`. */
export interface Model {
  irVersion: number;
  opsetImport: OperatorSetId[];
  producerName?: string;
  producerVersion?: string;
  domain?: string;
  modelVersion?: number;
  docString?: string;
  graph: Graph;
  metadataProps: StringEntry[];
  /** Training info, local functions, …: kept verbatim. */
  unknown?: RawField[];
}

/** Thrown when bytes are not an ONNX model. */
export class OnnxFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "OnnxFormatError";
  }
}

// ---------------------------------------------------------------------------------------------
// decoding

function keep(list: RawField[] | undefined, field: number, wire: number, r: ProtoReader) {
  const out = list ?? [];
  out.push({ field, wire, bytes: r.skip(wire) });
  return out;
}

function decodeEntry(r: ProtoReader): StringEntry {
  const e: StringEntry = { key: "", value: "" };
  while (r.more()) {
    const { field, wire } = r.tag();
    if (field === 1 && wire === WireType.LengthDelimited) e.key = r.string();
    else if (field === 2 && wire === WireType.LengthDelimited) e.value = r.string();
    else r.skip(wire);
  }
  return e;
}

function decodeOpset(r: ProtoReader): OperatorSetId {
  const o: OperatorSetId = { domain: "", version: 0 };
  while (r.more()) {
    const { field, wire } = r.tag();
    if (field === 1 && wire === WireType.LengthDelimited) o.domain = r.string();
    else if (field === 2 && wire === WireType.Varint) o.version = Number(r.int64());
    else r.skip(wire);
  }
  return o;
}

function decodeDimension(r: ProtoReader): Dimension {
  const d: Dimension = {};
  while (r.more()) {
    const { field, wire } = r.tag();
    if (field === 1 && wire === WireType.Varint) d.value = Number(r.int64());
    else if (field === 2 && wire === WireType.LengthDelimited) d.param = r.string();
    else if (field === 3 && wire === WireType.LengthDelimited) d.denotation = r.string();
    else d.unknown = keep(d.unknown, field, wire, r);
  }
  return d;
}

function decodeTensorType(r: ProtoReader): TensorType {
  const t: TensorType = { elemType: 0 };
  while (r.more()) {
    const { field, wire } = r.tag();
    if (field === 1 && wire === WireType.Varint) t.elemType = r.int32();
    else if (field === 2 && wire === WireType.LengthDelimited) {
      const s = r.sub();
      const dims: Dimension[] = [];
      const extra: RawField[] = [];
      while (s.more()) {
        const tg = s.tag();
        if (tg.field === 1 && tg.wire === WireType.LengthDelimited) {
          dims.push(decodeDimension(s.sub()));
        } else extra.push({ field: tg.field, wire: tg.wire, bytes: s.skip(tg.wire) });
      }
      t.shape = dims;
    } else t.unknown = keep(t.unknown, field, wire, r);
  }
  return t;
}

function decodeType(r: ProtoReader): TypeProto {
  const t: TypeProto = {};
  while (r.more()) {
    const { field, wire } = r.tag();
    if (field === 1 && wire === WireType.LengthDelimited) t.tensor = decodeTensorType(r.sub());
    else if (field === 6 && wire === WireType.LengthDelimited) t.denotation = r.string();
    else t.unknown = keep(t.unknown, field, wire, r);
  }
  return t;
}

function decodeValueInfo(r: ProtoReader): ValueInfo {
  const v: ValueInfo = { name: "" };
  while (r.more()) {
    const { field, wire } = r.tag();
    if (field === 1 && wire === WireType.LengthDelimited) v.name = r.string();
    else if (field === 2 && wire === WireType.LengthDelimited) v.type = decodeType(r.sub());
    else if (field === 3 && wire === WireType.LengthDelimited) v.docString = r.string();
    else v.unknown = keep(v.unknown, field, wire, r);
  }
  return v;
}

/** Decodes a `TensorProto` message. */
export function decodeTensor(r: ProtoReader): TensorProto {
  const t: TensorProto = { name: "", dims: [], dataType: 0 };
  const floats: number[] = [];
  const int32s: number[] = [];
  const int64s: bigint[] = [];
  const doubles: number[] = [];
  const uint64s: bigint[] = [];
  let sawFloat = false, sawInt32 = false, sawInt64 = false, sawDouble = false, sawUint64 = false;
  while (r.more()) {
    const { field, wire } = r.tag();
    switch (field) {
      case 1: {
        const dims: bigint[] = [];
        r.repeated(wire, (x) => x.int64(), dims);
        for (const d of dims) t.dims.push(Number(d));
        break;
      }
      case 2:
        t.dataType = r.int32();
        break;
      case 4:
        sawFloat = true;
        r.repeated(wire, (x) => x.float(), floats);
        break;
      case 5:
        sawInt32 = true;
        r.repeated(wire, (x) => x.int32(), int32s);
        break;
      case 6:
        (t.stringData ??= []).push(r.bytes());
        break;
      case 7:
        sawInt64 = true;
        r.repeated(wire, (x) => x.int64(), int64s);
        break;
      case 8:
        t.name = r.string();
        break;
      case 9:
        t.rawData = r.bytes();
        break;
      case 10:
        sawDouble = true;
        r.repeated(wire, (x) => x.double(), doubles);
        break;
      case 11:
        sawUint64 = true;
        r.repeated(wire, (x) => x.uint64(), uint64s);
        break;
      case 12:
        t.docString = r.string();
        break;
      case 13:
        (t.externalData ??= []).push(decodeEntry(r.sub()));
        break;
      case 14:
        t.dataLocation = r.int32();
        break;
      default:
        t.unknown = keep(t.unknown, field, wire, r);
    }
  }
  if (sawFloat) t.floatData = Float32Array.from(floats);
  if (sawInt32) t.int32Data = Int32Array.from(int32s);
  if (sawInt64) t.int64Data = BigInt64Array.from(int64s);
  if (sawDouble) t.doubleData = Float64Array.from(doubles);
  if (sawUint64) t.uint64Data = BigUint64Array.from(uint64s);
  return t;
}

function decodeAttribute(r: ProtoReader): Attribute {
  const a: Attribute = { name: "", type: 0 };
  while (r.more()) {
    const { field, wire } = r.tag();
    switch (field) {
      case 1:
        a.name = r.string();
        break;
      case 2:
        a.f = wire === WireType.Fixed32 ? r.float() : (r.skip(wire), 0);
        break;
      case 3:
        a.i = r.int64();
        break;
      case 4:
        a.s = r.bytes();
        break;
      case 5:
        a.t = decodeTensor(r.sub());
        break;
      case 6:
        a.g = decodeGraph(r.sub());
        break;
      case 7:
        r.repeated(wire, (x) => x.float(), a.floats ??= []);
        break;
      case 8:
        r.repeated(wire, (x) => x.int64(), a.ints ??= []);
        break;
      case 9:
        (a.strings ??= []).push(r.bytes());
        break;
      case 10:
        (a.tensors ??= []).push(decodeTensor(r.sub()));
        break;
      case 11:
        (a.graphs ??= []).push(decodeGraph(r.sub()));
        break;
      case 13:
        a.docString = r.string();
        break;
      case 14:
        a.tp = decodeType(r.sub());
        break;
      case 15:
        (a.typeProtos ??= []).push(decodeType(r.sub()));
        break;
      case 20:
        a.type = r.int32();
        break;
      case 21:
        a.refAttrName = r.string();
        break;
      case 22:
        a.sparseTensor = r.bytes();
        break;
      case 23:
        (a.sparseTensors ??= []).push(r.bytes());
        break;
      default:
        a.unknown = keep(a.unknown, field, wire, r);
    }
  }
  return a;
}

function decodeNode(r: ProtoReader): Node {
  const n: Node = { input: [], output: [], name: "", opType: "", domain: "", attribute: [] };
  while (r.more()) {
    const { field, wire } = r.tag();
    if (wire !== WireType.LengthDelimited) {
      n.unknown = keep(n.unknown, field, wire, r);
      continue;
    }
    switch (field) {
      case 1:
        n.input.push(r.string());
        break;
      case 2:
        n.output.push(r.string());
        break;
      case 3:
        n.name = r.string();
        break;
      case 4:
        n.opType = r.string();
        break;
      case 5:
        n.attribute.push(decodeAttribute(r.sub()));
        break;
      case 6:
        n.docString = r.string();
        break;
      case 7:
        n.domain = r.string();
        break;
      default:
        n.unknown = keep(n.unknown, field, wire, r);
    }
  }
  return n;
}

/** Decodes a `GraphProto` message. */
export function decodeGraph(r: ProtoReader): Graph {
  const g: Graph = { name: "", node: [], initializer: [], input: [], output: [], valueInfo: [] };
  while (r.more()) {
    const { field, wire } = r.tag();
    if (wire !== WireType.LengthDelimited) {
      g.unknown = keep(g.unknown, field, wire, r);
      continue;
    }
    switch (field) {
      case 1:
        g.node.push(decodeNode(r.sub()));
        break;
      case 2:
        g.name = r.string();
        break;
      case 5:
        g.initializer.push(decodeTensor(r.sub()));
        break;
      case 10:
        g.docString = r.string();
        break;
      case 11:
        g.input.push(decodeValueInfo(r.sub()));
        break;
      case 12:
        g.output.push(decodeValueInfo(r.sub()));
        break;
      case 13:
        g.valueInfo.push(decodeValueInfo(r.sub()));
        break;
      default:
        g.unknown = keep(g.unknown, field, wire, r);
    }
  }
  return g;
}

/**
 * Decodes a serialized `ModelProto`. Throws {@link OnnxFormatError} when the bytes are not
 * protobuf, or are protobuf without an ONNX graph.
 */
export function decodeModel(bytes: Uint8Array): Model {
  let m: Model | undefined;
  let sawGraph = false;
  try {
    const r = new ProtoReader(bytes);
    const model: Model = {
      irVersion: 0,
      opsetImport: [],
      graph: { name: "", node: [], initializer: [], input: [], output: [], valueInfo: [] },
      metadataProps: [],
    };
    while (r.more()) {
      const { field, wire } = r.tag();
      const ld = wire === WireType.LengthDelimited;
      if (field === 1 && wire === WireType.Varint) model.irVersion = Number(r.int64());
      else if (field === 2 && ld) model.producerName = r.string();
      else if (field === 3 && ld) model.producerVersion = r.string();
      else if (field === 4 && ld) model.domain = r.string();
      else if (field === 5 && wire === WireType.Varint) model.modelVersion = Number(r.int64());
      else if (field === 6 && ld) model.docString = r.string();
      else if (field === 7 && ld) {
        model.graph = decodeGraph(r.sub());
        sawGraph = true;
      } else if (field === 8 && ld) model.opsetImport.push(decodeOpset(r.sub()));
      else if (field === 14 && ld) model.metadataProps.push(decodeEntry(r.sub()));
      else model.unknown = keep(model.unknown, field, wire, r);
    }
    m = model;
  } catch (e) {
    if (e instanceof ProtobufError || e instanceof RangeError) {
      throw new OnnxFormatError(`not an ONNX model (protobuf decoding failed: ${e.message})`);
    }
    throw e;
  }
  if (!sawGraph || m.irVersion <= 0 || m.opsetImport.length === 0) {
    throw new OnnxFormatError(
      "not an ONNX model (no graph, IR version or opset import found in the protobuf)",
    );
  }
  return m;
}

// ---------------------------------------------------------------------------------------------
// encoding

const LD = WireType.LengthDelimited;

function str(w: ProtoWriter, field: number, s: string | undefined): void {
  if (s !== undefined && s !== "") w.tag(field, LD).string(s);
}

function unknownOut(w: ProtoWriter, list: RawField[] | undefined): void {
  if (list) { for (const f of list) w.rawField(f); }
}

function encodeEntry(e: StringEntry): ProtoWriter {
  const w = new ProtoWriter();
  w.tag(1, LD).string(e.key);
  w.tag(2, LD).string(e.value);
  return w;
}

function encodeDimension(d: Dimension): ProtoWriter {
  const w = new ProtoWriter();
  if (d.value !== undefined) w.tag(1, WireType.Varint).int64(BigInt(d.value));
  if (d.param !== undefined) w.tag(2, LD).string(d.param);
  str(w, 3, d.denotation);
  unknownOut(w, d.unknown);
  return w;
}

function encodeType(t: TypeProto): ProtoWriter {
  const w = new ProtoWriter();
  if (t.tensor) {
    const tw = new ProtoWriter();
    tw.tag(1, WireType.Varint).int32(t.tensor.elemType);
    if (t.tensor.shape) {
      const sw = new ProtoWriter();
      for (const d of t.tensor.shape) sw.tag(1, LD).message(encodeDimension(d));
      tw.tag(2, LD).message(sw);
    }
    unknownOut(tw, t.tensor.unknown);
    w.tag(1, LD).message(tw);
  }
  str(w, 6, t.denotation);
  unknownOut(w, t.unknown);
  return w;
}

function encodeValueInfo(v: ValueInfo): ProtoWriter {
  const w = new ProtoWriter();
  w.tag(1, LD).string(v.name);
  if (v.type) w.tag(2, LD).message(encodeType(v.type));
  str(w, 3, v.docString);
  unknownOut(w, v.unknown);
  return w;
}

function packed<T>(
  w: ProtoWriter,
  field: number,
  data: ArrayLike<T>,
  one: (p: ProtoWriter, v: T) => void,
) {
  if (data.length === 0) return;
  const p = new ProtoWriter();
  for (let i = 0; i < data.length; i++) one(p, data[i]);
  w.tag(field, LD).message(p);
}

/** Encodes a `TensorProto` message (payload without tag). */
export function encodeTensor(t: TensorProto): ProtoWriter {
  const w = new ProtoWriter();
  for (const d of t.dims) w.tag(1, WireType.Varint).int64(BigInt(d));
  w.tag(2, WireType.Varint).int32(t.dataType);
  if (t.floatData) packed(w, 4, t.floatData, (p, v) => p.float(v));
  if (t.int32Data) packed(w, 5, t.int32Data, (p, v) => p.int32(v));
  if (t.stringData) { for (const s of t.stringData) w.tag(6, LD).bytes(s); }
  if (t.int64Data) packed(w, 7, t.int64Data, (p, v) => p.int64(v));
  str(w, 8, t.name);
  if (t.rawData) w.tag(9, LD).bytes(t.rawData);
  if (t.doubleData) packed(w, 10, t.doubleData, (p, v) => p.double(v));
  if (t.uint64Data) packed(w, 11, t.uint64Data, (p, v) => p.int64(v));
  str(w, 12, t.docString);
  if (t.externalData) { for (const e of t.externalData) w.tag(13, LD).message(encodeEntry(e)); }
  if (t.dataLocation !== undefined) w.tag(14, WireType.Varint).int32(t.dataLocation);
  unknownOut(w, t.unknown);
  return w;
}

function encodeAttribute(a: Attribute): ProtoWriter {
  const w = new ProtoWriter();
  w.tag(1, LD).string(a.name);
  if (a.f !== undefined) w.tag(2, WireType.Fixed32).float(a.f);
  if (a.i !== undefined) w.tag(3, WireType.Varint).int64(a.i);
  if (a.s !== undefined) w.tag(4, LD).bytes(a.s);
  if (a.t) w.tag(5, LD).message(encodeTensor(a.t));
  if (a.g) w.tag(6, LD).message(encodeGraph(a.g));
  if (a.floats) { for (const v of a.floats) w.tag(7, WireType.Fixed32).float(v); }
  if (a.ints) { for (const v of a.ints) w.tag(8, WireType.Varint).int64(v); }
  if (a.strings) { for (const s of a.strings) w.tag(9, LD).bytes(s); }
  if (a.tensors) { for (const t of a.tensors) w.tag(10, LD).message(encodeTensor(t)); }
  if (a.graphs) { for (const g of a.graphs) w.tag(11, LD).message(encodeGraph(g)); }
  str(w, 13, a.docString);
  if (a.tp) w.tag(14, LD).message(encodeType(a.tp));
  if (a.typeProtos) { for (const t of a.typeProtos) w.tag(15, LD).message(encodeType(t)); }
  w.tag(20, WireType.Varint).int32(a.type);
  str(w, 21, a.refAttrName);
  if (a.sparseTensor) w.tag(22, LD).bytes(a.sparseTensor);
  if (a.sparseTensors) { for (const s of a.sparseTensors) w.tag(23, LD).bytes(s); }
  unknownOut(w, a.unknown);
  return w;
}

function encodeNode(n: Node): ProtoWriter {
  const w = new ProtoWriter();
  for (const s of n.input) w.tag(1, LD).string(s);
  for (const s of n.output) w.tag(2, LD).string(s);
  str(w, 3, n.name);
  w.tag(4, LD).string(n.opType);
  for (const a of n.attribute) w.tag(5, LD).message(encodeAttribute(a));
  str(w, 6, n.docString);
  str(w, 7, n.domain);
  unknownOut(w, n.unknown);
  return w;
}

/** Encodes a `GraphProto` message (payload without tag). */
export function encodeGraph(g: Graph): ProtoWriter {
  const w = new ProtoWriter();
  for (const n of g.node) w.tag(1, LD).message(encodeNode(n));
  str(w, 2, g.name);
  for (const t of g.initializer) w.tag(5, LD).message(encodeTensor(t));
  str(w, 10, g.docString);
  for (const v of g.input) w.tag(11, LD).message(encodeValueInfo(v));
  for (const v of g.output) w.tag(12, LD).message(encodeValueInfo(v));
  for (const v of g.valueInfo) w.tag(13, LD).message(encodeValueInfo(v));
  unknownOut(w, g.unknown);
  return w;
}

/** Encodes a model as protobuf chunks (weights by reference; write them in order). */
export function encodeModelChunks(m: Model): Uint8Array[] {
  const w = new ProtoWriter();
  w.tag(1, WireType.Varint).int64(BigInt(m.irVersion));
  str(w, 2, m.producerName);
  str(w, 3, m.producerVersion);
  str(w, 4, m.domain);
  if (m.modelVersion !== undefined) w.tag(5, WireType.Varint).int64(BigInt(m.modelVersion));
  str(w, 6, m.docString);
  w.tag(7, LD).message(encodeGraph(m.graph));
  for (const o of m.opsetImport) {
    const ow = new ProtoWriter();
    str(ow, 1, o.domain);
    ow.tag(2, WireType.Varint).int64(BigInt(o.version));
    w.tag(8, LD).message(ow);
  }
  for (const e of m.metadataProps) w.tag(14, LD).message(encodeEntry(e));
  unknownOut(w, m.unknown);
  return w.finishChunks();
}

/** Encodes a model into one buffer. */
export function encodeModel(m: Model): Uint8Array {
  const chunks = encodeModelChunks(m);
  let n = 0;
  for (const c of chunks) n += c.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// small accessors

/** The attribute named `name` of a node, if any. */
export function getAttr(node: Node, name: string): Attribute | undefined {
  return node.attribute.find((a) => a.name === name);
}

/** Whether a node is of the default ONNX domain (`""` or `ai.onnx`). */
export function isStd(n: Node): boolean {
  return n.domain === "" || n.domain === "ai.onnx";
}

/** An integer attribute as a number, or `fallback`. */
export function attrInt(node: Node, name: string, fallback: number): number {
  const a = getAttr(node, name);
  return a?.i !== undefined ? Number(a.i) : fallback;
}

/** An integer-list attribute as numbers, or `undefined`. */
export function attrInts(node: Node, name: string): number[] | undefined {
  const a = getAttr(node, name);
  return a?.ints?.map(Number);
}

/** The opset version the model imports for the default ONNX domain. */
export function onnxOpset(m: Model): number {
  const o = m.opsetImport.find((x) => x.domain === "" || x.domain === "ai.onnx");
  return o?.version ?? 0;
}

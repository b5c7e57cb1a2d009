/**
 * A minimal protobuf wire-format reader and writer (no schema, no dependencies), enough to
 * decode and encode ONNX models. Byte fields are returned as views into the input buffer (no
 * copies), and the writer keeps large byte fields as references, so multi-hundred-megabyte
 * weights are never copied more than once when a model is written.
 *
 * @module
 */

/** Protobuf wire types. */
export const WireType = {
  Varint: 0,
  Fixed64: 1,
  LengthDelimited: 2,
  StartGroup: 3,
  EndGroup: 4,
  Fixed32: 5,
} as const;

/** A field kept verbatim: one that a decoder does not model, re-emitted as it was read. */
export interface RawField {
  field: number;
  wire: number;
  /** The field's payload bytes as on the wire, without the tag (for varints: the varint bytes). */
  bytes: Uint8Array;
}

const textDecoder = new TextDecoder("utf-8", { fatal: false });
const textEncoder = new TextEncoder();

/** Thrown when bytes are not valid protobuf wire format. */
export class ProtobufError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProtobufError";
  }
}

/** Reads one protobuf message (a byte range) field by field. */
export class ProtoReader {
  readonly buf: Uint8Array;
  pos: number;
  readonly end: number;
  private view: DataView;

  constructor(buf: Uint8Array, start = 0, end = buf.length) {
    this.buf = buf;
    this.pos = start;
    this.end = end;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  /** True while fields remain. */
  more(): boolean {
    return this.pos < this.end;
  }

  /** Reads a field tag; returns field number and wire type. */
  tag(): { field: number; wire: number } {
    const t = this.varint();
    const wire = t % 8;
    const field = Math.floor(t / 8);
    if (field === 0 || wire > 5) {
      throw new ProtobufError(`bad tag at byte ${this.pos} (field ${field}, wire type ${wire})`);
    }
    return { field, wire };
  }

  /** Reads an unsigned varint as a number (exact up to 2^53; used for lengths, enums, dims). */
  varint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new ProtobufError("truncated varint");
      const b = this.buf[this.pos++];
      result += (b & 0x7f) * mul;
      if (b < 0x80) return result;
      mul *= 128;
    }
    throw new ProtobufError(`varint longer than 10 bytes at byte ${this.pos}`);
  }

  /** Reads a varint as a signed 64-bit integer (two's complement, as `int64`/`int32` fields). */
  int64(): bigint {
    let result = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new ProtobufError("truncated varint");
      const b = this.buf[this.pos++];
      result |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return BigInt.asIntN(64, result);
      shift += 7n;
    }
    throw new ProtobufError(`varint longer than 10 bytes at byte ${this.pos}`);
  }

  /** Reads a varint as an unsigned 64-bit integer. */
  uint64(): bigint {
    return BigInt.asUintN(64, this.int64());
  }

  /** Reads a signed `int32`/`enum` varint (negative values are sign-extended 10-byte varints). */
  int32(): number {
    const start = this.pos;
    const v = this.varint();
    // a 10-byte varint is a negative value: re-read exactly
    if (this.pos - start === 10) {
      this.pos = start;
      return Number(BigInt.asIntN(32, this.int64()));
    }
    return v | 0;
  }

  /** Reads a little-endian fixed 32-bit float. */
  float(): number {
    this.need(4);
    const v = this.view.getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }

  /** Reads a little-endian fixed 64-bit double. */
  double(): number {
    this.need(8);
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }

  /** Reads a little-endian `fixed32`. */
  fixed32(): number {
    this.need(4);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  /** Reads a little-endian `fixed64`. */
  fixed64(): bigint {
    this.need(8);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }

  /** Reads a length-delimited field as a view into the buffer (no copy). */
  bytes(): Uint8Array {
    const len = this.varint();
    this.need(len);
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }

  /** Reads a length-delimited UTF-8 string. */
  string(): string {
    return textDecoder.decode(this.bytes());
  }

  /** Reads a length-delimited field and returns a reader over it. */
  sub(): ProtoReader {
    const len = this.varint();
    this.need(len);
    const r = new ProtoReader(this.buf, this.pos, this.pos + len);
    this.pos += len;
    return r;
  }

  /** Skips a field's payload and returns it (for keeping unknown fields verbatim). */
  skip(wire: number): Uint8Array {
    const start = this.pos;
    switch (wire) {
      case WireType.Varint:
        this.varint();
        return this.buf.subarray(start, this.pos);
      case WireType.Fixed64:
        this.need(8);
        this.pos += 8;
        return this.buf.subarray(start, this.pos);
      case WireType.Fixed32:
        this.need(4);
        this.pos += 4;
        return this.buf.subarray(start, this.pos);
      case WireType.LengthDelimited: {
        const len = this.varint();
        this.need(len);
        this.pos += len;
        return this.buf.subarray(start, this.pos);
      }
      case WireType.StartGroup: {
        // groups are deprecated; skip nested fields until the matching end group
        for (;;) {
          const { wire: w } = this.tag();
          if (w === WireType.EndGroup) return this.buf.subarray(start, this.pos);
          this.skip(w);
        }
      }
      default:
        throw new ProtobufError(`cannot skip wire type ${wire}`);
    }
  }

  /** Reads a repeated scalar that may be packed (length-delimited) or a single element. */
  repeated<T>(wire: number, one: (r: ProtoReader) => T, out: T[]): void {
    if (wire === WireType.LengthDelimited) {
      const r = this.sub();
      while (r.more()) out.push(one(r));
    } else {
      out.push(one(this));
    }
  }

  private need(n: number): void {
    if (this.pos + n > this.end) {
      throw new ProtobufError(`truncated field: need ${n} bytes at byte ${this.pos}`);
    }
  }
}

/**
 * Builds a protobuf message as a list of byte chunks. Small scalars go to a scratch buffer; large
 * byte fields and nested messages are appended by reference, so encoding never copies weights.
 */
export class ProtoWriter {
  private chunks: Uint8Array[] = [];
  private scratch = new Uint8Array(256);
  private used = 0;
  private flushedLength = 0;
  private view = new DataView(this.scratch.buffer);

  /** Total number of bytes written so far. */
  get length(): number {
    return this.flushedLength + this.used;
  }

  /** Writes a field tag. */
  tag(field: number, wire: number): this {
    return this.varint(field * 8 + wire);
  }

  /** Writes a non-negative number as a varint (exact up to 2^53). */
  varint(v: number): this {
    if (v < 0 || !Number.isFinite(v)) return this.int64(BigInt(Math.trunc(v)));
    this.ensure(10);
    while (v >= 0x80) {
      this.scratch[this.used++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    this.scratch[this.used++] = v;
    return this;
  }

  /** Writes a signed or unsigned 64-bit integer as a varint (negative values take 10 bytes). */
  int64(v: bigint): this {
    let u = BigInt.asUintN(64, v);
    this.ensure(10);
    while (u >= 0x80n) {
      this.scratch[this.used++] = Number(u & 0x7fn) | 0x80;
      u >>= 7n;
    }
    this.scratch[this.used++] = Number(u);
    return this;
  }

  /** Writes a signed 32-bit value (`int32`/`enum`), sign-extending negatives as protobuf does. */
  int32(v: number): this {
    return v < 0 ? this.int64(BigInt(v)) : this.varint(v);
  }

  /** Writes a little-endian float. */
  float(v: number): this {
    this.ensure(4);
    this.view.setFloat32(this.used, v, true);
    this.used += 4;
    return this;
  }

  /** Writes a little-endian double. */
  double(v: number): this {
    this.ensure(8);
    this.view.setFloat64(this.used, v, true);
    this.used += 8;
    return this;
  }

  /** Writes a little-endian `fixed32`. */
  fixed32(v: number): this {
    this.ensure(4);
    this.view.setUint32(this.used, v, true);
    this.used += 4;
    return this;
  }

  /** Writes a little-endian `fixed64`. */
  fixed64(v: bigint): this {
    this.ensure(8);
    this.view.setBigUint64(this.used, BigInt.asUintN(64, v), true);
    this.used += 8;
    return this;
  }

  /** Appends raw bytes (by reference when large). */
  raw(b: Uint8Array): this {
    if (b.length <= 64) {
      this.ensure(b.length);
      this.scratch.set(b, this.used);
      this.used += b.length;
    } else {
      this.flush();
      this.chunks.push(b);
      this.flushedLength += b.length;
    }
    return this;
  }

  /** Writes a length-delimited byte field payload (length + bytes). */
  bytes(b: Uint8Array): this {
    return this.varint(b.length).raw(b);
  }

  /** Writes a length-delimited UTF-8 string payload. */
  string(s: string): this {
    return this.bytes(textEncoder.encode(s));
  }

  /** Writes a nested message payload (length + the other writer's chunks, by reference). */
  message(w: ProtoWriter): this {
    const parts = w.finishChunks();
    let len = 0;
    for (const p of parts) len += p.length;
    this.varint(len);
    this.flush();
    for (const p of parts) {
      this.chunks.push(p);
      this.flushedLength += p.length;
    }
    return this;
  }

  /** Re-emits a field kept verbatim by {@link ProtoReader.skip}. */
  rawField(f: RawField): this {
    return this.tag(f.field, f.wire).raw(f.bytes);
  }

  /** The message as chunks (no copy of large parts). */
  finishChunks(): Uint8Array[] {
    this.flush();
    return this.chunks;
  }

  /** The message as one contiguous buffer. */
  finish(): Uint8Array {
    const parts = this.finishChunks();
    if (parts.length === 1) return parts[0];
    const out = new Uint8Array(this.flushedLength);
    let off = 0;
    for (const p of parts) {
      out.set(p, off);
      off += p.length;
    }
    return out;
  }

  private ensure(n: number): void {
    if (this.used + n <= this.scratch.length) return;
    this.flush();
    if (n > this.scratch.length) {
      this.scratch = new Uint8Array(n);
      this.view = new DataView(this.scratch.buffer);
    }
  }

  private flush(): void {
    if (this.used === 0) return;
    this.chunks.push(this.scratch.slice(0, this.used));
    this.flushedLength += this.used;
    this.used = 0;
  }
}

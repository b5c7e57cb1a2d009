import { assert, assertEquals, assertThrows } from "./_assert.ts";
import { ProtoReader, ProtoWriter, WireType } from "../lib/onnx/protobuf.ts";

Deno.test("varints round-trip at their edges", () => {
  const values = [0, 1, 127, 128, 300, 16383, 16384, 2 ** 31 - 1, 2 ** 32, 2 ** 53 - 1];
  const w = new ProtoWriter();
  for (const v of values) w.varint(v);
  const r = new ProtoReader(w.finish());
  for (const v of values) assertEquals(r.varint(), v);
  assert(!r.more());
  // known encodings
  assertEquals([...new ProtoWriter().varint(300).finish()], [0xac, 0x02]);
  assertEquals([...new ProtoWriter().varint(1).finish()], [1]);
});

Deno.test("64-bit integers use BigInt, negatives take ten bytes", () => {
  const values = [0n, -1n, -(2n ** 63n), 2n ** 63n - 1n, 9223372036854775807n, -123456789012345n];
  const w = new ProtoWriter();
  for (const v of values) w.int64(v);
  const bytes = w.finish();
  const r = new ProtoReader(bytes);
  for (const v of values) assertEquals(r.int64(), v);
  assertEquals(new ProtoWriter().int64(-1n).finish().length, 10);
  // int32 negatives are sign-extended like protobuf does
  const w2 = new ProtoWriter().int32(-5).int32(7);
  const r2 = new ProtoReader(w2.finish());
  assertEquals(r2.int32(), -5);
  assertEquals(r2.int32(), 7);
  assertEquals(
    new ProtoReader(new ProtoWriter().int64(2n ** 64n - 1n).finish()).uint64(),
    2n ** 64n - 1n,
  );
});

Deno.test("fixed-width fields and floats are little-endian", () => {
  const w = new ProtoWriter().fixed32(0xdeadbeef).fixed64(0x0102030405060708n).float(1.5).double(
    -2.25,
  );
  const b = w.finish();
  assertEquals([...b.subarray(0, 4)], [0xef, 0xbe, 0xad, 0xde]);
  const r = new ProtoReader(b);
  assertEquals(r.fixed32(), 0xdeadbeef);
  assertEquals(r.fixed64(), 0x0102030405060708n);
  assertEquals(r.float(), 1.5);
  assertEquals(r.double(), -2.25);
});

Deno.test("messages nest, strings and large byte fields are kept by reference", () => {
  const big = new Uint8Array(100_000).map((_, i) => i & 0xff);
  const inner = new ProtoWriter();
  inner.tag(1, WireType.LengthDelimited).string("héllo");
  inner.tag(2, WireType.LengthDelimited).bytes(big);
  const outer = new ProtoWriter();
  outer.tag(3, WireType.Varint).varint(42);
  outer.tag(4, WireType.LengthDelimited).message(inner);
  const chunks = outer.finishChunks();
  assert(chunks.includes(big), "the large payload is referenced, not copied");
  const r = new ProtoReader(outer.finish());
  assertEquals(r.tag(), { field: 3, wire: WireType.Varint });
  assertEquals(r.varint(), 42);
  assertEquals(r.tag(), { field: 4, wire: WireType.LengthDelimited });
  const s = r.sub();
  assertEquals(s.tag().field, 1);
  assertEquals(s.string(), "héllo");
  assertEquals(s.tag().field, 2);
  const got = s.bytes();
  assertEquals(got.length, big.length);
  assertEquals(got[99_999], big[99_999]);
  assert(!s.more() && !r.more());
});

Deno.test("repeated scalars decode packed and unpacked", () => {
  const packed = new ProtoWriter();
  packed.tag(1, WireType.LengthDelimited).message(
    new ProtoWriter().varint(1).varint(2).varint(300),
  );
  const unpacked = new ProtoWriter();
  for (const v of [1, 2, 300]) unpacked.tag(1, WireType.Varint).varint(v);
  for (const bytes of [packed.finish(), unpacked.finish()]) {
    const r = new ProtoReader(bytes);
    const out: bigint[] = [];
    while (r.more()) {
      const { wire } = r.tag();
      r.repeated(wire, (x) => x.int64(), out);
    }
    assertEquals(out, [1n, 2n, 300n]);
  }
});

Deno.test("unknown fields are skipped and re-emitted verbatim", () => {
  const w = new ProtoWriter();
  w.tag(7, WireType.Fixed32).fixed32(9);
  w.tag(8, WireType.Fixed64).fixed64(10n);
  w.tag(9, WireType.LengthDelimited).string("x");
  w.tag(10, WireType.Varint).int64(-3n);
  const bytes = w.finish();
  const r = new ProtoReader(bytes);
  const again = new ProtoWriter();
  while (r.more()) {
    const { field, wire } = r.tag();
    again.rawField({ field, wire, bytes: r.skip(wire) });
  }
  assertEquals([...again.finish()], [...bytes]);
});

Deno.test("truncated or malformed input throws ProtobufError", () => {
  const err = (fn: () => unknown, text: string) => {
    const e = assertThrows(fn, text);
    assertEquals(e.name, "ProtobufError");
  };
  err(() => new ProtoReader(new Uint8Array([0x80])).varint(), "truncated varint");
  err(() => new ProtoReader(new Uint8Array([0x05, 1, 2])).bytes(), "truncated field");
  err(() => new ProtoReader(new Uint8Array([0x00])).tag(), "bad tag");
  err(() => new ProtoReader(new Uint8Array([0x0f])).tag(), "bad tag"); // wire type 7
  err(() => new ProtoReader(new Uint8Array(11).fill(0xff)).varint(), "longer than 10 bytes");
});

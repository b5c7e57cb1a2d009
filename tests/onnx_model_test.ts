import { assert, assertEquals, assertThrows } from "./_assert.ts";
import {
  AttributeType,
  DataType,
  decodeModel,
  encodeModel,
  type Graph,
  type Model,
  type Node,
  type ValueInfo,
} from "../lib/onnx/model.ts";
import { ExternalDataReader } from "../lib/onnx/external.ts";
import { floatValues, inlineBytes, isExternal } from "../lib/onnx/tensor.ts";
import { createSession } from "../lib/runtime/session.ts";
import { ort } from "../lib/runtime/ort.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url).pathname;
const enc = new TextEncoder();

function vi(name: string, elemType: number, dims: (number | string)[]): ValueInfo {
  return {
    name,
    type: {
      tensor: {
        elemType,
        shape: dims.map((d) => (typeof d === "number" ? { value: d } : { param: d })),
      },
    },
  };
}

function model(graph: Graph, opset = 17): Model {
  return { irVersion: 8, opsetImport: [{ domain: "", version: opset }], graph, metadataProps: [] };
}

Deno.test("the fixture decodes to the exported graph and re-encodes byte for byte", async () => {
  const bytes = await Deno.readFile(`${FIXTURES}tiny_unet.onnx`);
  const m = decodeModel(bytes);
  assertEquals(m.graph.node.length, 1913);
  assertEquals(m.graph.initializer.length, 234);
  assertEquals(m.opsetImport, [{ domain: "", version: 17 }]);
  assertEquals(m.graph.input.map((i) => i.name), ["sample", "timestep", "encoder_hidden_states"]);
  assertEquals(m.graph.input[0].type?.tensor?.shape?.map((d) => d.value ?? d.param), [
    "batch",
    4,
    8,
    8,
  ]);
  assertEquals(m.graph.input[1].type?.tensor?.elemType, DataType.INT64);
  assertEquals(m.graph.output.map((o) => o.name), ["out_sample"]);
  assert(m.graph.node.some((n) => n.name.startsWith("/down_blocks.0/attentions.0/")));
  const again = encodeModel(m);
  assertEquals(again.length, bytes.length);
  assert(again.every((b, i) => b === bytes[i]), "decode → encode is byte-identical");
});

Deno.test("every attribute kind, typed tensor fields and unknown fields survive a round trip", () => {
  const sub: Graph = {
    name: "body",
    node: [{
      name: "n",
      opType: "Identity",
      domain: "",
      input: ["a"],
      output: ["b"],
      attribute: [],
    }],
    initializer: [],
    input: [vi("a", DataType.FLOAT, [1])],
    output: [vi("b", DataType.FLOAT, [1])],
    valueInfo: [],
  };
  const node: Node = {
    name: "all",
    opType: "Custom",
    domain: "test.domain",
    input: ["x", ""],
    output: ["y"],
    docString: "doc",
    attribute: [
      { name: "f", type: AttributeType.FLOAT, f: 0.5 },
      { name: "i", type: AttributeType.INT, i: -9223372036854775807n },
      { name: "s", type: AttributeType.STRING, s: enc.encode("str") },
      {
        name: "t",
        type: AttributeType.TENSOR,
        t: { name: "t", dims: [2], dataType: DataType.FLOAT, floatData: Float32Array.of(1, -2) },
      },
      { name: "g", type: AttributeType.GRAPH, g: sub },
      { name: "floats", type: AttributeType.FLOATS, floats: [1.5, -0.25] },
      { name: "ints", type: AttributeType.INTS, ints: [1n, -1n, 2n ** 62n] },
      {
        name: "strings",
        type: AttributeType.STRINGS,
        strings: [enc.encode("a"), enc.encode("bc")],
      },
      {
        name: "tensors",
        type: AttributeType.TENSORS,
        tensors: [
          {
            name: "i64",
            dims: [2],
            dataType: DataType.INT64,
            int64Data: BigInt64Array.of(5n, -6n),
          },
          { name: "i32", dims: [1], dataType: DataType.INT32, int32Data: Int32Array.of(-7) },
          { name: "d", dims: [1], dataType: DataType.DOUBLE, doubleData: Float64Array.of(0.1) },
          {
            name: "u64",
            dims: [1],
            dataType: DataType.UINT64,
            uint64Data: BigUint64Array.of(2n ** 64n - 1n),
          },
          { name: "str", dims: [1], dataType: DataType.STRING, stringData: [enc.encode("z")] },
          {
            name: "ext",
            dims: [4],
            dataType: DataType.FLOAT,
            dataLocation: 1,
            externalData: [{ key: "location", value: "w.bin" }, { key: "offset", value: "16" }],
          },
        ],
      },
      { name: "graphs", type: AttributeType.GRAPHS, graphs: [sub, sub] },
      { name: "tp", type: AttributeType.TYPE_PROTO, tp: vi("q", DataType.FLOAT16, ["n", 3]).type },
      {
        name: "sparse",
        type: AttributeType.SPARSE_TENSOR,
        sparseTensor: Uint8Array.of(0x10, 0x01),
      },
      { name: "ref", type: AttributeType.FLOAT, refAttrName: "outer" },
    ],
    unknown: [{ field: 99, wire: 0, bytes: Uint8Array.of(0x2a) }],
  };
  const m: Model = {
    ...model({
      name: "g",
      node: [node],
      initializer: [],
      input: [vi("x", DataType.FLOAT, ["batch", 2])],
      output: [vi("y", DataType.FLOAT, [])],
      valueInfo: [{ name: "v", type: { tensor: { elemType: DataType.FLOAT } } }],
      docString: "graph doc",
    }),
    producerName: "test",
    modelVersion: 3,
    metadataProps: [{ key: "k", value: "v" }],
    unknown: [{ field: 25, wire: 2, bytes: Uint8Array.of(0x02, 0x0a, 0x00) }],
  };
  const decoded = decodeModel(encodeModel(m));
  assertEquals(decoded, m);
  assertEquals(encodeModel(decoded), encodeModel(m));
});

Deno.test("a model with a subgraph (If) reading outer tensors runs in ORT after encoding", async () => {
  const branch = (op: string): Graph => ({
    name: op,
    node: [{
      name: op,
      opType: op,
      domain: "",
      input: ["s"],
      output: [`${op}_out`],
      attribute: [],
    }],
    initializer: [],
    input: [],
    output: [vi(`${op}_out`, DataType.FLOAT, [2])],
    valueInfo: [],
  });
  const g: Graph = {
    name: "if_test",
    node: [
      {
        name: "c",
        opType: "Constant",
        domain: "",
        input: [],
        output: ["c"],
        attribute: [{
          name: "value",
          type: AttributeType.TENSOR,
          t: { name: "c", dims: [2], dataType: DataType.FLOAT, floatData: Float32Array.of(1, 2) },
        }],
      },
      { name: "add", opType: "Add", domain: "", input: ["x", "c"], output: ["s"], attribute: [] },
      {
        name: "if",
        opType: "If",
        domain: "",
        input: ["cond"],
        output: ["y"],
        attribute: [
          { name: "then_branch", type: AttributeType.GRAPH, g: branch("Identity") },
          { name: "else_branch", type: AttributeType.GRAPH, g: branch("Neg") },
        ],
      },
    ],
    initializer: [],
    input: [vi("x", DataType.FLOAT, [2]), vi("cond", DataType.BOOL, [])],
    output: [vi("y", DataType.FLOAT, [2])],
    valueInfo: [],
  };
  const bytes = encodeModel(decodeModel(encodeModel(model(g))));
  const session = await createSession(bytes, "wasm");
  const x = new ort.Tensor("float32", Float32Array.of(10, 20), [2]);
  const yes = await session.run({ x, cond: new ort.Tensor("bool", Uint8Array.of(1), []) });
  const no = await session.run({ x, cond: new ort.Tensor("bool", Uint8Array.of(0), []) });
  assertEquals([...(yes.y.data as Float32Array)], [11, 22]);
  assertEquals([...(no.y.data as Float32Array)], [-11, -22]);
  await session.release();
});

Deno.test("external data reads lazily by offset and equals the inline weights", async () => {
  const inline = decodeModel(await Deno.readFile(`${FIXTURES}tiny_unet.onnx`));
  const ext = decodeModel(await Deno.readFile(`${FIXTURES}tiny_unet_external.onnx`));
  const byName = new Map(inline.graph.initializer.map((t) => [t.name, t]));
  const reader = new ExternalDataReader(FIXTURES);
  try {
    const external = ext.graph.initializer.filter(isExternal);
    assert(external.length > 100, "the fixture keeps most weights outside");
    // read in reverse order, concurrently: reads must not interleave
    const loaded = await Promise.all(external.reverse().map((t) => reader.inline(t)));
    for (const t of loaded) {
      assert(!isExternal(t));
      assertEquals(floatValues(t), floatValues(byName.get(t.name)!), t.name);
    }
  } finally {
    reader.close();
  }
});

Deno.test("an external-data model decoded, inlined and re-encoded gives ORT identical outputs", async () => {
  const ext = decodeModel(await Deno.readFile(`${FIXTURES}tiny_unet_external.onnx`));
  const reader = new ExternalDataReader(FIXTURES);
  const initializer = await Promise.all(ext.graph.initializer.map((t) => reader.inline(t)));
  reader.close();
  const inlined = encodeModel({ ...ext, graph: { ...ext.graph, initializer } });
  const a = await createSession(await Deno.readFile(`${FIXTURES}tiny_unet.onnx`), "wasm");
  const b = await createSession(inlined, "wasm");
  let seed = 7;
  const rnd = () => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 2 - 1;
  const feeds = {
    sample: new ort.Tensor("float32", Float32Array.from({ length: 2 * 4 * 8 * 8 }, rnd), [
      2,
      4,
      8,
      8,
    ]),
    timestep: new ort.Tensor("int64", BigInt64Array.of(321n), [1]),
    encoder_hidden_states: new ort.Tensor(
      "float32",
      Float32Array.from({ length: 2 * 4 * 16 }, rnd),
      [2, 4, 16],
    ),
  };
  const ya = (await a.run(feeds)).out_sample.data as Float32Array;
  const yb = (await b.run(feeds)).out_sample.data as Float32Array;
  assertEquals([...yb], [...ya]);
  await a.release();
  await b.release();
});

Deno.test("external data errors name the tensor and the file", async () => {
  const t = {
    name: "w",
    dims: [4],
    dataType: DataType.FLOAT,
    dataLocation: 1,
    externalData: [{ key: "location", value: "missing.weights" }],
  };
  const reader = new ExternalDataReader(FIXTURES);
  const rejects = async (p: Promise<unknown>, text: string) => {
    try {
      await p;
    } catch (e) {
      assert((e as Error).message.includes(text), (e as Error).message);
      return;
    }
    throw new Error("expected a rejection");
  };
  await rejects(reader.read(t), "missing.weights cannot be opened");
  await rejects(
    reader.read({ ...t, externalData: [{ key: "location", value: "../etc/passwd" }] }),
    "leaves the model folder",
  );
  await rejects(
    reader.read({
      ...t,
      externalData: [{ key: "location", value: "tiny_unet_external.weights" }, {
        key: "offset",
        value: "1e12",
      }],
    }),
    "needs",
  );
  reader.close();
  assertThrows(() => inlineBytes(t), "external");
});

Deno.test("bytes that are not ONNX are refused with a clear error", () => {
  const cases = [
    new Uint8Array(0),
    enc.encode('{"format": "json, not onnx"}'),
    Uint8Array.from({ length: 64 }, (_, i) => (i * 37 + 11) & 0xff),
    Uint8Array.of(0x08, 0x07), // protobuf: ir_version only, no graph
  ];
  for (const bytes of cases) {
    const e = assertThrows(() => decodeModel(bytes), "not an ONNX model");
    assertEquals(e.name, "OnnxFormatError");
  }
});

/**
 * Load-time dequantization (lib/onnx/dequantize.ts): exact values of folded `DequantizeLinear`
 * nodes (per channel, per tensor, int8/uint8, float16 scales), what it leaves alone, and the error
 * of the dequantized int8 fixture against the float32 monolithic model. Bounds, relative to the
 * largest |fp32 output| as in onnx_quantize_test.ts:
 * - `float32` weights: the int8 bound, 3e-2 (folding is exact, so only the 8-bit rounding shows);
 * - `float16` weights: the int8 bound plus the fp16 bound of that test (5e-3 on wasm, 2e-2 on
 *   WebGPU, where the arithmetic is float16 too).
 *
 * @module
 */
import { assert, assertEquals } from "./_assert.ts";
import { dequantizeModelBytes, foldDequantizeLinear } from "../lib/onnx/dequantize.ts";
import {
  AttributeType,
  DataType,
  decodeModel,
  encodeModel,
  type Model,
  type Node,
} from "../lib/onnx/model.ts";
import { float32Tensor, floatValues, int8Tensor, rawTensor } from "../lib/onnx/tensor.ts";
import { splitModel } from "../lib/onnx/split.ts";
import { type Backend, probeWebGpu } from "../lib/runtime/backend.ts";
import { createSession } from "../lib/runtime/session.ts";
import { ort, type Tensor } from "../lib/runtime/ort.ts";
import { toFloat32 } from "../lib/runtime/tensors.ts";
import { UNetEngine, type WeightFormat } from "../lib/unet/engine.ts";

const FIXTURE = new URL("./fixtures/tiny_unet.onnx", import.meta.url).pathname;
const TMP = await Deno.makeTempDir({ prefix: "dequantize-test-" });
const ADAPTER = await probeWebGpu();

function dq(inputs: string[], output: string, axis?: number, blockSize?: number): Node {
  const attribute = [];
  if (axis !== undefined) {
    attribute.push({ name: "axis", type: AttributeType.INT, i: BigInt(axis) });
  }
  if (blockSize !== undefined) {
    attribute.push({ name: "block_size", type: AttributeType.INT, i: BigInt(blockSize) });
  }
  return {
    name: `dq_${output}`,
    opType: "DequantizeLinear",
    domain: "",
    input: inputs,
    output: [output],
    attribute,
  };
}

function model(): Model {
  const f16 = new Float16Array([0.5, 0.25]);
  return {
    irVersion: 8,
    opsetImport: [{ domain: "", version: 21 }],
    metadataProps: [],
    graph: {
      name: "g",
      node: [
        // per channel along axis 1 of a [2, 3] int8 weight
        dq(["wq", "ws", "wz"], "w", 1),
        // per tensor, uint8 with a zero point, no axis
        dq(["vq", "vs", "vz"], "v"),
        // per channel with float16 scales along the default axis 1, no zero point
        dq(["hq", "hs"], "h"),
        // not constant: its input is a graph input
        dq(["x", "vs", "vz"], "y"),
        // blocked quantization is left alone
        dq(["bq", "vs", "vz"], "b", 0, 2),
      ],
      initializer: [
        int8Tensor("wq", [2, 3], Int8Array.of(1, -2, 3, -4, 5, -6)),
        float32Tensor("ws", [3], Float32Array.of(0.5, 2, 0.25)),
        int8Tensor("wz", [3], Int8Array.of(0, 1, -1)),
        int8Tensor("vq", [4], Uint8Array.of(0, 10, 128, 255)),
        float32Tensor("vs", [], Float32Array.of(0.1)),
        int8Tensor("vz", [], Uint8Array.of(128)),
        int8Tensor("hq", [1, 2], Int8Array.of(4, -8)),
        rawTensor("hs", DataType.FLOAT16, [2], new Uint8Array(f16.buffer)),
        int8Tensor("bq", [4], Uint8Array.of(1, 2, 3, 4)),
      ],
      input: [{ name: "x" }],
      output: ["w", "v", "h", "y", "b"].map((name) => ({ name })),
      valueInfo: [],
    },
  };
}

Deno.test("folding DequantizeLinear: exact per-channel and per-tensor values, float16 scales kept float16", () => {
  const { model: out, stats } = foldDequantizeLinear(model());
  assertEquals(stats, { folded: 3, kept: 2 });
  assertEquals(out.graph.node.map((n) => n.output[0]), ["y", "b"]);
  const inits = new Map(out.graph.initializer.map((t) => [t.name, t]));
  assertEquals(
    [...floatValues(inits.get("w")!)],
    [(1 - 0) * 0.5, (-2 - 1) * 2, (3 + 1) * 0.25, (-4 - 0) * 0.5, (5 - 1) * 2, (-6 + 1) * 0.25],
  );
  assertEquals(inits.get("w")!.dims, [2, 3]);
  assertEquals(
    [...floatValues(inits.get("v")!)],
    [0, 10, 128, 255].map((q) => Math.fround((q - 128) * Math.fround(0.1))),
  );
  assertEquals(inits.get("h")!.dataType, DataType.FLOAT16);
  assertEquals([...floatValues(inits.get("h")!)], [2, -2]);
  // inputs only the folded nodes read are gone; the kept nodes' inputs stay
  assert(!inits.has("wq") && !inits.has("ws") && !inits.has("hq") && !inits.has("wz"));
  assert(inits.has("vs") && inits.has("vz") && inits.has("bq"));
});

Deno.test("dequantizeModelBytes returns the same bytes when there is nothing to fold", async () => {
  const dir = (await splitModel(FIXTURE, { out: `${TMP}/fp32` })).dir;
  const manifest = JSON.parse(await Deno.readTextFile(`${dir}/split.json`));
  const bytes = await Deno.readFile(`${dir}/${manifest.segments[1].file}`);
  const r = dequantizeModelBytes(bytes);
  assert(r.bytes === bytes);
  assertEquals(r.stats, { folded: 0, kept: 0 });
  // a model that round-trips still decodes after folding
  const folded = dequantizeModelBytes(encodeModel(model()));
  assertEquals(decodeModel(folded.bytes).graph.node.length, 2);
});

function inputs(seed: number): Record<string, Tensor> {
  let s = seed;
  const rnd = () => ((s = (s * 16807) % 2147483647) / 2147483647) * 2 - 1;
  return {
    sample: new ort.Tensor("float32", Float32Array.from({ length: 2 * 4 * 8 * 8 }, rnd), [
      2,
      4,
      8,
      8,
    ]),
    timestep: new ort.Tensor("int64", BigInt64Array.of(BigInt(100 + seed * 250)), [1]),
    encoder_hidden_states: new ort.Tensor(
      "float32",
      Float32Array.from({ length: 2 * 4 * 16 }, rnd),
      [
        2,
        4,
        16,
      ],
    ),
  };
}

/** Max |engine − fp32 monolithic| / max |fp32 output| over inputs. */
async function relativeError(
  dir: string,
  backend: Backend,
  weights: WeightFormat,
  seeds: number[],
) {
  const mono = await createSession(await Deno.readFile(FIXTURE), backend);
  const engine = await UNetEngine.load(dir, { backend, weights, log: () => {} });
  let worst = 0;
  try {
    assertEquals(engine.status().weights, weights);
    for (const seed of seeds) {
      const feeds = inputs(seed);
      const want = await toFloat32((await mono.run(feeds)).out_sample);
      const got = await toFloat32((await engine.run(feeds)).out_sample);
      let d = 0, scale = 0;
      for (let i = 0; i < want.length; i++) {
        d = Math.max(d, Math.abs(got[i] - want[i]));
        scale = Math.max(scale, Math.abs(want[i]));
      }
      worst = Math.max(worst, d / scale);
    }
  } finally {
    await engine.release();
    await mono.release();
  }
  return worst;
}

let int8: Promise<string> | undefined;
const int8Split = () =>
  int8 ??= splitModel(FIXTURE, { out: `${TMP}/int8`, precision: "int8" }).then((r) => r.dir);

Deno.test("the int8 fixture's segments: every DequantizeLinear folds", async () => {
  const dir = await int8Split();
  const manifest = JSON.parse(await Deno.readTextFile(`${dir}/split.json`));
  let total = 0;
  for (const s of manifest.segments) {
    const m = decodeModel(await Deno.readFile(`${dir}/${s.file}`));
    const count = m.graph.node.filter((n) => n.opType === "DequantizeLinear").length;
    const { model: out, stats } = foldDequantizeLinear(m);
    assertEquals(stats, { folded: count, kept: 0 }, s.file);
    assert(!out.graph.node.some((n) => n.opType === "DequantizeLinear"));
    assert(!out.graph.initializer.some((t) => t.dataType === DataType.INT8), s.file);
    total += count;
  }
  assert(total > 50, `${total} folded`);
});

const BOUND = { int8: 3e-2, fp16: 5e-3, fp16gpu: 2e-2 };

for (const weights of ["float32", "float16"] as const) {
  const bound = weights === "float32" ? BOUND.int8 : BOUND.int8 + BOUND.fp16;
  Deno.test(`wasm: int8 weights as ${weights} at load, within ${bound.toFixed(3)} of fp32`, async () => {
    const err = await relativeError(await int8Split(), "wasm", weights, [1, 2, 3]);
    console.log(`int8 → ${weights} on wasm: max relative error ${err.toExponential(2)}`);
    assert(err > 0 && err <= bound, `relative error ${err}`);
  });
}

Deno.test({
  name: `webgpu: int8 weights as float16 at load (captured), within ${
    BOUND.int8 + BOUND.fp16gpu
  } of fp32`,
  ignore: !ADAPTER,
  fn: async () => {
    const err = await relativeError(await int8Split(), "webgpu", "float16", [1, 3]);
    console.log(`int8 → float16 on webgpu: max relative error ${err.toExponential(2)}`);
    assert(err > 0 && err <= BOUND.int8 + BOUND.fp16gpu, `relative error ${err}`);
  },
});

Deno.test("clean up", async () => {
  await Deno.remove(TMP, { recursive: true });
});

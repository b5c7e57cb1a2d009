/**
 * The memory estimate: the activation walk on a graph small enough to count by hand, weights as
 * each backend holds them, the estimate against onnxruntime-web's real wasm heap (bench/memory.ts
 * in its own process, on the SD-shaped fixture), and a plan that cannot fit refused before it
 * runs, with the cause and the way out.
 */
import { assert, assertEquals, assertRejects, assertThrows } from "./_assert.ts";
import {
  checkMemory,
  fittingImages,
  type MemoryEstimate,
  PlanMemoryError,
  residentWeightBytes,
  walkGraph,
  WASM_HEAP_LIMIT,
} from "../lib/model/memory.ts";
import { DataType, type Graph } from "../lib/onnx/model.ts";
import { Pipeline } from "../lib/pipeline/pipeline.ts";
import { sdModel } from "./support/sd_fixture.ts";

const TMP = await Deno.makeTempDir({ prefix: "model-memory-test-" });
const MODEL = await sdModel(`${TMP}/sd`);

const vi = (name: string) => ({ name, type: { tensor: { elemType: DataType.FLOAT } } });
const node = (opType: string, input: string[], output: string[]) => ({
  name: output[0],
  opType,
  domain: "",
  input,
  output,
  attribute: [],
});

Deno.test("walkGraph: attention-like chain, each tensor alive from its node to its last reader", () => {
  // q [1, 64, 8] · kT [1, 8, 64] → scores [1, 64, 64] → softmax → · v [1, 64, 8] → out
  const g: Graph = {
    name: "attn",
    node: [
      node("MatMul", ["q", "kT"], ["scores"]),
      node("Softmax", ["scores"], ["probs"]),
      node("MatMul", ["probs", "v"], ["out"]),
    ],
    initializer: [],
    input: [vi("q"), vi("kT"), vi("v")],
    output: [vi("out")],
    valueInfo: [],
  };
  const f = DataType.FLOAT;
  const w = walkGraph(
    g,
    new Map([
      ["q", { shape: [1, 64, 8], elemType: f }],
      ["kT", { shape: [1, 8, 64], elemType: f }],
      ["v", { shape: [1, 64, 8], elemType: f }],
    ]),
    4,
  );
  const inputs = 3 * 64 * 8 * 4;
  // at the softmax: inputs + scores + probs (scores is freed after it); then probs + out
  assertEquals(w.peak, inputs + 2 * 64 * 64 * 4);
  assertEquals(w.largest, { name: "scores", bytes: 64 * 64 * 4 });
  assertEquals(w.outputs.get("out"), { shape: [1, 64, 8], elemType: f });
});

Deno.test("weights as held: wasm keeps fp16 weights as fp32, WebGPU as stored", () => {
  const w = { float32: 100, float16: 50, int8: 25, other: 1 };
  assertEquals(residentWeightBytes(w, "wasm"), 100 + 100 + 25 + 1);
  assertEquals(residentWeightBytes(w, "webgpu"), 100 + 50 + 25 + 1);
});

Deno.test("the estimate is within 15% of onnxruntime-web's measured wasm heap", async () => {
  const out = `${TMP}/memory.json`;
  const r = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("../bench/memory.ts", import.meta.url).pathname,
      "--model",
      MODEL,
      "--sizes",
      "64,128",
      "--images",
      "8",
      "--out",
      out,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert(r.success, new TextDecoder().decode(r.stderr));
  const rows = JSON.parse(await Deno.readTextFile(out)).rows as {
    measuredBytes: number;
    estimateBytes: number;
    activationBytes: number;
    ratio: number;
  }[];
  assertEquals(rows.length, 2);
  const big = rows[1];
  // at 128 px with 8 guided images the attention scores dominate (>10 MiB of activations)
  assert(big.activationBytes > 10 * 2 ** 20, `activations ${big.activationBytes}`);
  for (const row of rows) assert(row.ratio > 0.85 && row.ratio < 1.15, JSON.stringify(row));
});

Deno.test("a plan that cannot fit is refused before it runs, naming the cause and the way out", async () => {
  const p = await Pipeline.load(MODEL, { backend: "wasm", log: () => {} });
  try {
    // 4096 px would need (512²)² attention scores: far past the 4 GiB wasm heap
    const e = p.estimateMemory({ height: 512, width: 512 }, 1, true);
    assert(!e.fits && e.totalBytes > WASM_HEAP_LIMIT, JSON.stringify(e));
    assert(e.peakAt.includes("attentions"), e.peakAt);
    const err = assertThrows(() => checkMemory(e, "sd at 4096x4096", "fp16"), "more than");
    assert(err instanceof PlanMemoryError);
    for (const part of ["int8 plan", "held as fp32 on wasm", "WebGPU", "largest tensor"]) {
      assert(err.message.includes(part), `${part}: ${err.message}`);
    }
    // a batch of guided 128 px images large enough not to fit: refused before any session runs
    const req = {
      prompt: "a red apple",
      negativePrompt: "",
      seed: 1,
      steps: 1,
      guidanceScale: 4,
      solver: "euler" as const,
      cache: "none",
      width: 128,
      height: 128,
    };
    const t0 = performance.now();
    await assertRejects(
      () => p.generateBatch(Array.from({ length: 3000 }, (_, i) => ({ ...req, seed: i }))),
      "3000 guided 128x128 image(s) needs about",
    );
    assert(performance.now() - t0 < 5000, "refused without running the model");
    const ok = await p.generate(req);
    assertEquals([ok.width, ok.height], [128, 128]);
  } finally {
    await p.release();
  }
});

Deno.test("fittingImages: the largest count that fits, 1 at least", () => {
  const est = (limit: number | undefined) => (n: number): MemoryEstimate => ({
    backend: limit === undefined ? "webgpu" : "wasm",
    weightsBytes: 0,
    activationBytes: n * 100,
    peakAt: "x",
    largestTensor: { name: "x", bytes: 0 },
    totalBytes: n * 100,
    limitBytes: limit,
    fits: limit === undefined || n * 100 <= limit,
  });
  assertEquals(fittingImages(est(1000), 32), 10);
  assertEquals(fittingImages(est(10_000), 32), 32);
  assertEquals(fittingImages(est(50), 32), 1);
  assertEquals(fittingImages(est(undefined), 32, 750), 7);
});

Deno.test("clean up", async () => {
  await Deno.remove(TMP, { recursive: true });
});

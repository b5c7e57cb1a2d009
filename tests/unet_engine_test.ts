import { assert, assertEquals } from "./_assert.ts";
import { splitModel } from "../lib/onnx/split.ts";
import { type Backend, probeWebGpu } from "../lib/runtime/backend.ts";
import { createSession } from "../lib/runtime/session.ts";
import { ort, type Tensor } from "../lib/runtime/ort.ts";
import { toFloat32, zeros } from "../lib/runtime/tensors.ts";
import {
  type AbortLike,
  type BlockPolicy,
  type EngineOptions,
  type SegmentTiming,
  UNetEngine,
} from "../lib/unet/engine.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url).pathname;
const FIXTURE = `${FIXTURES}tiny_unet.onnx`;
const TMP = await Deno.makeTempDir({ prefix: "engine-test-" });
const ADAPTER = await probeWebGpu();
if (!ADAPTER) console.warn("unet_engine_test: no WebGPU adapter; the WebGPU tests are skipped");

let plans: Promise<Record<"residual" | "output" | "external" | "int8", string>> | undefined;
function getPlans() {
  plans ??= (async () => {
    await splitModel(FIXTURE, { out: `${TMP}/residual` });
    await splitModel(FIXTURE, { out: `${TMP}/int8`, precision: "int8" });
    await splitModel(FIXTURE, { out: `${TMP}/output`, mode: "output" });
    await splitModel(`${FIXTURES}tiny_unet_external.onnx`, {
      out: `${TMP}/external`,
      externalThreshold: 20_000,
    });
    return {
      residual: `${TMP}/residual`,
      output: `${TMP}/output`,
      external: `${TMP}/external`,
      int8: `${TMP}/int8`,
    };
  })();
  return plans;
}

const monolithic = new Map<Backend, Promise<ort.InferenceSession>>();
function mono(backend: Backend) {
  if (!monolithic.has(backend)) {
    monolithic.set(backend, Deno.readFile(FIXTURE).then((b) => createSession(b, backend)));
  }
  return monolithic.get(backend)!;
}

function inputs(seed: number, batch = 2, timestep = 500): Record<string, Tensor> {
  let s = seed;
  const rnd = () => ((s = (s * 16807) % 2147483647) / 2147483647) * 2 - 1;
  return {
    sample: new ort.Tensor("float32", Float32Array.from({ length: batch * 4 * 8 * 8 }, rnd), [
      batch,
      4,
      8,
      8,
    ]),
    timestep: new ort.Tensor("int64", BigInt64Array.of(BigInt(timestep)), [1]),
    encoder_hidden_states: new ort.Tensor(
      "float32",
      Float32Array.from({ length: batch * 4 * 16 }, rnd),
      [batch, 4, 16],
    ),
  };
}

async function reference(backend: Backend, feeds: Record<string, Tensor>): Promise<Float32Array> {
  const out = await (await mono(backend)).run(feeds);
  return toFloat32(out.out_sample);
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  assertEquals(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

async function evaluate(
  engine: UNetEngine,
  feeds: Record<string, Tensor>,
  policy?: BlockPolicy,
  signal?: AbortLike,
) {
  const out = await engine.run(feeds, { policy, signal });
  assertEquals(out.out_sample.location, "cpu");
  return toFloat32(out.out_sample);
}

/** Stores every block's cached tensor; reuses them when `reusing` says so. */
class RecordingPolicy implements BlockPolicy {
  stored = new Map<number, Tensor>();
  stores: string[] = [];
  asked: string[] = [];
  constructor(public reusing: (index: number) => Tensor | undefined = () => undefined) {}
  reuse(block: string, index: number) {
    this.asked.push(block);
    return this.reusing(index);
  }
  store(block: string, index: number, value: Tensor) {
    this.stores.push(block);
    this.stored.get(index)?.dispose();
    this.stored.set(index, value);
  }
  dispose() {
    for (const t of this.stored.values()) t.dispose();
  }
}

async function equalsMonolithic(dir: string, backend: Backend, opts: EngineOptions = {}) {
  const engine = await UNetEngine.load(dir, { ...opts, backend, log: () => {} });
  try {
    assertEquals(engine.backend, backend);
    for (const [seed, batch, t] of [[1, 2, 500], [2, 1, 17], [3, 2, 999]]) {
      const feeds = inputs(seed, batch, t);
      const want = await reference(backend, feeds);
      const got = await evaluate(engine, feeds);
      const d = maxDiff(got, want);
      assert(d <= 1e-5, `${backend} ${dir}: max |split − monolithic| = ${d}`);
    }
    const timings = engine.timings();
    const meanSum = (ts: SegmentTiming[]) => ts.reduce((s, t) => s + t.meanMs!, 0);
    const all = meanSum(timings);
    const glueOnly = meanSum(timings.filter((t) => t.kind === "glue"));
    assert(
      all > glueOnly && glueOnly > 0,
      `expected ${all} ms with blocks, ${glueOnly} ms without`,
    );
    assertEquals(timings.length, engine.manifest.segments.length);
    for (const t of timings) {
      assertEquals(t.runs, 3);
      assert(t.lastMs !== undefined && t.lastMs >= 0 && t.meanMs !== undefined && !t.skipped);
    }
  } finally {
    await engine.release();
  }
}

Deno.test("wasm: the residual manifest equals the monolithic model within 1e-5", async () => {
  await equalsMonolithic((await getPlans()).residual, "wasm");
});

Deno.test("wasm: the output-mode manifest equals the monolithic model within 1e-5", async () => {
  await equalsMonolithic((await getPlans()).output, "wasm");
});

Deno.test("wasm: a manifest whose segments keep weights in .weights files loads and matches", async () => {
  await equalsMonolithic((await getPlans()).external, "wasm");
});

Deno.test({
  name: "webgpu: the residual manifest equals the monolithic model within 1e-5",
  ignore: !ADAPTER,
  fn: async () => {
    await equalsMonolithic((await getPlans()).residual, "webgpu");
  },
});

Deno.test({
  name: "webgpu: intermediate tensors stay on the GPU and cached residuals reuse there",
  ignore: !ADAPTER,
  fn: async () => {
    const engine = await UNetEngine.load((await getPlans()).residual, {
      backend: "webgpu",
      log: () => {},
    });
    const policy = new RecordingPolicy();
    try {
      const feeds = inputs(4);
      const first = await evaluate(engine, feeds, policy);
      for (const t of policy.stored.values()) assertEquals(t.location, "gpu-buffer");
      policy.reusing = (i) => policy.stored.get(i);
      const second = await evaluate(engine, feeds, policy);
      assertEquals(maxDiff(first, second), 0);
      assert(engine.timings().filter((t) => t.kind === "block").every((t) => t.skipped));
    } finally {
      policy.dispose();
      await engine.release();
    }
  },
});

Deno.test("the block policy: stored residuals reused on identical inputs give identical outputs", async () => {
  const { residual, output } = await getPlans();
  for (const dir of [residual, output]) {
    const engine = await UNetEngine.load(dir, { backend: "wasm", log: () => {} });
    const policy = new RecordingPolicy();
    try {
      assertEquals(engine.blocks.length, 7);
      const feeds = inputs(5);
      const fresh = await evaluate(engine, feeds, policy);
      assertEquals(policy.stores, engine.blocks);
      assertEquals(policy.asked, engine.blocks);
      const blockRuns = () => engine.timings().filter((t) => t.kind === "block").map((t) => t.runs);
      assertEquals(blockRuns(), new Array(7).fill(1));

      // reuse everything: blocks are skipped, the output is the same
      policy.reusing = (i) => policy.stored.get(i);
      policy.stores = [];
      const reused = await evaluate(engine, feeds, policy);
      assertEquals(maxDiff(fresh, reused), 0);
      assertEquals(policy.stores, []);
      assertEquals(blockRuns(), new Array(7).fill(1), "no block ran");
      assert(engine.timings().filter((t) => t.kind === "block").every((t) => t.skipped));

      // reuse only block 3
      policy.reusing = (i) => (i === 3 ? policy.stored.get(i) : undefined);
      const partial = await evaluate(engine, feeds, policy);
      assertEquals(maxDiff(fresh, partial), 0);
      assertEquals(blockRuns(), [2, 2, 2, 1, 2, 2, 2]);

      // reusing zeros in place of a block changes the output
      const blank = zeros("float32", policy.stored.get(2)!.dims);
      policy.reusing = (i) => (i === 2 ? blank : undefined);
      const changed = await evaluate(engine, feeds, policy);
      assert(maxDiff(fresh, changed) > 1e-3, "a zero residual must change the output");
    } finally {
      policy.dispose();
      await engine.release();
    }
  }
});

Deno.test("an aborted run rejects with the signal's reason and the engine keeps working", async () => {
  const engine = await UNetEngine.load((await getPlans()).residual, {
    backend: "wasm",
    log: () => {},
  });
  try {
    const controller = new AbortController();
    const reason = new Error("client went away");
    const policy = new RecordingPolicy((i) => {
      if (i === 2) controller.abort(reason);
      return undefined;
    });
    let caught: unknown;
    try {
      await engine.run(inputs(6), { policy, signal: controller.signal });
    } catch (e) {
      caught = e;
    }
    assert(caught === reason, `rejects with signal.reason, got ${caught}`);
    assertEquals(policy.stores, engine.blocks.slice(0, 3), "blocks after the abort did not run");
    policy.dispose();
    const feeds = inputs(6);
    assert(maxDiff(await evaluate(engine, feeds), await reference("wasm", feeds)) <= 1e-5);
  } finally {
    await engine.release();
  }
});

Deno.test("inputs are checked against the manifest's dtypes", async () => {
  const engine = await UNetEngine.load((await getPlans()).residual, {
    backend: "wasm",
    log: () => {},
  });
  try {
    assertEquals(engine.inputDType("timestep"), "int64");
    assertEquals(engine.inputDType("sample"), "float32");
    const feeds = { ...inputs(7), timestep: new ort.Tensor("float32", Float32Array.of(500), [1]) };
    let message = "";
    try {
      await engine.run(feeds);
    } catch (e) {
      message = (e as Error).message;
    }
    assertEquals(message, "UNet input timestep must be int64, got float32");
  } finally {
    await engine.release();
  }
});

Deno.test("a modified or missing manifest file is detected by its sha256", async () => {
  const src = (await getPlans()).residual;
  const dir = `${TMP}/tampered`;
  await Deno.mkdir(dir);
  const manifest = JSON.parse(await Deno.readTextFile(`${src}/split.json`));
  for (const s of manifest.segments) await Deno.copyFile(`${src}/${s.file}`, `${dir}/${s.file}`);
  await Deno.copyFile(`${src}/split.json`, `${dir}/split.json`);
  const victim = manifest.segments[3].file;
  const bytes = await Deno.readFile(`${dir}/${victim}`);
  bytes[bytes.length - 5] ^= 1;
  await Deno.writeFile(`${dir}/${victim}`, bytes);
  const message = async () => {
    try {
      await UNetEngine.load(dir, { backend: "wasm", log: () => {} });
    } catch (e) {
      assertEquals((e as Error).name, "SplitIntegrityError");
      return (e as Error).message;
    }
    return "";
  };
  const m1 = await message();
  assert(m1.includes(victim) && m1.includes("sha256"), m1);
  await Deno.remove(`${dir}/${victim}`);
  assert((await message()).includes(`cannot read ${victim}`));
  await Deno.writeTextFile(`${dir}/split.json`, "{}");
  assert((await message()).includes("format must be"));
});

Deno.test("wasm: the previous configuration (symbolic shapes, one session set) still matches", async () => {
  await equalsMonolithic((await getPlans()).residual, "wasm", { staticShapes: false });
});

Deno.test("static shapes: warm sizes made at load, others on first use, least recently used released", async () => {
  const lines: string[] = [];
  const engine = await UNetEngine.load((await getPlans()).residual, {
    backend: "wasm",
    warm: [{ batch: 2 }],
    maxShapes: 2,
    log: (l) => lines.push(l),
  });
  const keys = () => engine.status().shapes.map((s) => s.key);
  try {
    assertEquals(keys(), ["batch=2"]);
    for (
      const [batch, want] of [[1, ["batch=2", "batch=1"]], [3, ["batch=1", "batch=3"]], [
        1,
        ["batch=3", "batch=1"],
      ]] as const
    ) {
      const feeds = inputs(10 + batch, batch);
      const d = maxDiff(await evaluate(engine, feeds), await reference("wasm", feeds));
      assert(d <= 1e-5, `batch ${batch}: max |split − monolithic| = ${d}`);
      assertEquals(keys(), [...want]);
    }
    assert(lines.some((l) => l.includes("batch=2 released")), lines.join("\n"));
    let message = "";
    try {
      await engine.run({
        ...inputs(1),
        sample: new ort.Tensor("float32", new Float32Array(2 * 4 * 64), [2, 4, 8, 8, 1]),
      });
    } catch (e) {
      message = (e as Error).message;
    }
    assert(message.includes("UNet input sample has dims [2,4,8,8,1]"), message);
  } finally {
    await engine.release();
  }
});

Deno.test("load-time dequantization: an int8 manifest runs with float32 weights, as its DequantizeLinear nodes would", async () => {
  const dir = (await getPlans()).int8;
  const stored = await UNetEngine.load(dir, { backend: "wasm", weights: "stored", log: () => {} });
  const folded = await UNetEngine.load(dir, { backend: "wasm", log: () => {} });
  try {
    assertEquals(stored.status().weights, "stored");
    assertEquals(folded.status().weights, "float32", "the default for an 8-bit manifest");
    for (const seed of [1, 2]) {
      const feeds = inputs(seed);
      const d = maxDiff(await evaluate(folded, feeds), await evaluate(stored, feeds));
      assert(d <= 1e-5, `max |float32 − stored int8| = ${d}`);
    }
  } finally {
    await stored.release();
    await folded.release();
  }
});

Deno.test("a structural abort flag (not an AbortSignal) stops a run", async () => {
  const engine = await UNetEngine.load((await getPlans()).residual, {
    backend: "wasm",
    log: () => {},
  });
  try {
    const reason = new Error("cancelled by flag");
    let aborted = false;
    const flag: AbortLike = {
      get aborted() {
        return aborted;
      },
      reason,
      throwIfAborted() {
        if (aborted) throw reason;
      },
    };
    const policy = new RecordingPolicy((i) => {
      if (i === 1) aborted = true;
      return undefined;
    });
    let caught: unknown;
    try {
      await evaluate(engine, inputs(8), policy, flag);
    } catch (e) {
      caught = e;
    }
    policy.dispose();
    assert(caught === reason, `rejects with the flag's reason, got ${caught}`);
    assertEquals(policy.stores, engine.blocks.slice(0, 2));
  } finally {
    await engine.release();
  }
});

Deno.test({
  name:
    "webgpu: every segment is captured, and the captured plan equals the uncaptured one and the monolithic model",
  ignore: !ADAPTER,
  fn: async () => {
    const dir = (await getPlans()).residual;
    const captured = await UNetEngine.load(dir, { backend: "webgpu", log: () => {} });
    const plain = await UNetEngine.load(dir, {
      backend: "webgpu",
      graphCapture: false,
      log: () => {},
    });
    try {
      const segments = captured.manifest.segments.length;
      assertEquals(captured.status().shapes, [{ key: "batch=2", captured: segments, segments }]);
      assertEquals(plain.status().shapes, [{ key: "batch=2", captured: 0, segments }]);
      // batch 1 is not in the warm set: made (and captured) on first use
      for (const [seed, batch, t] of [[1, 2, 500], [2, 1, 17], [3, 2, 999]]) {
        const feeds = inputs(seed, batch, t);
        const want = await reference("webgpu", feeds);
        const a = await evaluate(captured, feeds);
        const b = await evaluate(plain, feeds);
        assert(maxDiff(a, want) <= 1e-5, `captured vs monolithic: ${maxDiff(a, want)}`);
        assert(maxDiff(a, b) <= 1e-5, `captured vs uncaptured: ${maxDiff(a, b)}`);
      }
      assertEquals(captured.status().shapes.map((s) => [s.key, s.captured]), [
        ["batch=1", segments],
        ["batch=2", segments],
      ]);
    } finally {
      await captured.release();
      await plain.release();
    }
  },
});

Deno.test({
  name: "webgpu: cached values outlive the next replays (captured output buffers are reused)",
  ignore: !ADAPTER,
  fn: async () => {
    const dir = (await getPlans()).residual;
    const engines = [
      await UNetEngine.load(dir, { backend: "webgpu", log: () => {} }),
      await UNetEngine.load(dir, { backend: "webgpu", graphCapture: false, log: () => {} }),
    ];
    try {
      const results: Float32Array[][] = [];
      for (const engine of engines) {
        const kept = new RecordingPolicy();
        const other = new RecordingPolicy();
        try {
          const x1 = inputs(21), x2 = inputs(22, 2, 300);
          const fresh = await evaluate(engine, x1, kept);
          // the blocks replay on other inputs, overwriting their output buffers
          await evaluate(engine, x2, other);
          // reuse blocks 1, 3, 5 stored from x1 while computing the others on x1: same as fresh
          kept.reusing = (i) => (i % 2 === 1 ? kept.stored.get(i) : undefined);
          const partial = await evaluate(engine, x1, kept);
          // on x2, blocks reused from x1 give a different output than computing x2 fully
          kept.reusing = (i) => (i % 2 === 1 ? kept.stored.get(i) : undefined);
          const mixed = await evaluate(engine, x2, kept);
          const full2 = await evaluate(engine, x2, other);
          assert(
            maxDiff(fresh, partial) <= 1e-6,
            `reuse on the same input: ${maxDiff(fresh, partial)}`,
          );
          assert(
            maxDiff(mixed, full2) > 1e-4,
            "reused blocks from another input change the output",
          );
          results.push([fresh, mixed]);
        } finally {
          kept.dispose();
          other.dispose();
        }
      }
      // the captured plan with reused blocks gives what the uncaptured plan gives
      const d = maxDiff(results[0][1], results[1][1]);
      assert(d <= 1e-5, `captured vs uncaptured with reuse: ${d}`);
    } finally {
      for (const e of engines) await e.release();
    }
  },
});

Deno.test({
  name: "webgpu: a split passing an int64 shape value between segments runs (capture falls back)",
  ignore: !ADAPTER,
  fn: async () => {
    // only the mid block cacheable: glue_00 hands an int64 shape scalar to the later segments,
    // whose capture onnxruntime refuses; a captured producer would hand it over wrong
    const dir = `${TMP}/coarse`;
    await splitModel(FIXTURE, { out: dir, blockPattern: "^mid_block\\.attentions\\.0$" });
    const lines: string[] = [];
    const engine = await UNetEngine.load(dir, { backend: "webgpu", log: (l) => lines.push(l) });
    try {
      assertEquals(engine.manifest.segments.length, 3);
      assertEquals(engine.status().shapes[0].captured, 0);
      assert(lines.some((l) => l.includes("glue_00 (batch=2): runs uncaptured")), lines.join("\n"));
      const feeds = inputs(31);
      const d = maxDiff(await evaluate(engine, feeds), await reference("webgpu", feeds));
      assert(d <= 1e-5, `max |coarse split − monolithic| = ${d}`);
    } finally {
      await engine.release();
    }
  },
});

Deno.test("clean up", async () => {
  for (const s of monolithic.values()) await (await s).release();
  await Deno.remove(TMP, { recursive: true });
});

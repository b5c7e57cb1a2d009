import { assert, assertEquals } from "./_assert.ts";
import { uniformSchedule } from "../lib/calibration/derive.ts";
import { BlockCache } from "../lib/cache/policy.ts";
import { type Schedule, SCHEDULE_FORMAT, skippedFraction } from "../lib/cache/schedule.ts";
import { splitModel } from "../lib/onnx/split.ts";
import { ort, type Tensor } from "../lib/runtime/ort.ts";
import { toFloat32, zeros } from "../lib/runtime/tensors.ts";
import { UNetEngine } from "../lib/unet/engine.ts";

const FIXTURE = new URL("./fixtures/tiny_unet.onnx", import.meta.url).pathname;
const TMP = await Deno.makeTempDir({ prefix: "policy-test-" });
await splitModel(FIXTURE, { out: `${TMP}/plan` });
const engine = await UNetEngine.load(`${TMP}/plan`, { backend: "wasm", log: () => {} });
const BLOCKS = engine.blocks;

function feeds(seed: number, timestep: number): Record<string, Tensor> {
  let s = seed;
  const rnd = () => ((s = (s * 16807) % 2147483647) / 2147483647) * 2 - 1;
  return {
    sample: new ort.Tensor("float32", Float32Array.from({ length: 2 * 4 * 8 * 8 }, rnd), [
      2,
      4,
      8,
      8,
    ]),
    timestep: new ort.Tensor("int64", BigInt64Array.from([BigInt(timestep)]), [1]),
    encoder_hidden_states: new ort.Tensor(
      "float32",
      Float32Array.from({ length: 2 * 4 * 16 }, rnd),
      [2, 4, 16],
    ),
  };
}

function schedule(recompute: boolean[][], extra: Partial<Schedule> = {}): Schedule {
  return {
    format: SCHEDULE_FORMAT,
    model: "tiny",
    solver: "ddim",
    steps: recompute.length,
    name: "test",
    kind: "uniform",
    mode: "residual",
    blocks: [...BLOCKS],
    recompute,
    skippedFraction: skippedFraction(recompute),
    ...extra,
  };
}

/** Runs `steps` evaluations (step i on feeds(i)) under a cache; returns each step's output. */
async function runSteps(cache: BlockCache | undefined, steps: number): Promise<Float32Array[]> {
  const outs: Float32Array[] = [];
  for (let i = 0; i < steps; i++) {
    await cache?.beginStep(i);
    const out = await engine.run(feeds(10 + i, 900 - 100 * i), { policy: cache });
    outs.push(await toFloat32(out.out_sample));
  }
  return outs;
}

Deno.test("a schedule that recomputes everything gives exactly the uncached outputs", async () => {
  const plain = await runSteps(undefined, 3);
  const cache = new BlockCache(schedule(uniformSchedule(3, BLOCKS.length, 1)), BLOCKS);
  const cached = await runSteps(cache, 3);
  for (let i = 0; i < 3; i++) assertEquals(Array.from(cached[i]), Array.from(plain[i]));
  assertEquals(cache.stats.reused, 0);
  assertEquals(cache.stats.evaluations, 3 * BLOCKS.length);
  cache.dispose();
});

Deno.test("reusing at step 1 skips the blocks and changes the output; the fraction is counted", async () => {
  const plain = await runSteps(undefined, 2);
  const cache = new BlockCache(schedule(uniformSchedule(2, BLOCKS.length, 2)), BLOCKS);
  const cached = await runSteps(cache, 2);
  assertEquals(Array.from(cached[0]), Array.from(plain[0]));
  assert(cached[1].some((v, i) => v !== plain[1][i]), "reuse must change the step-1 output");
  assert(engine.timings().filter((t) => t.kind === "block").every((t) => t.skipped));
  assertEquals(cache.skippedFraction, 0.5);
  assert(cache.stats.peakBytes > 0);
  cache.dispose();
});

Deno.test("scale-shift is applied at reuse steps: scale 0, shift 0 equals reusing zero residuals", async () => {
  const zeroTable = Object.fromEntries(BLOCKS.map((b, k) => {
    const channels = engine.manifest.segments.filter((s) =>
      s.kind === "block"
    )[k].outputs[0].shape[1];
    const c = typeof channels === "number" ? channels : 0;
    return [b, { "1": { scale: new Array(c).fill(0), shift: new Array(c).fill(0) } }];
  }));
  const cache = new BlockCache(
    schedule(uniformSchedule(2, BLOCKS.length, 2), { scaleShift: zeroTable }),
    BLOCKS,
  );
  const withShift = await runSteps(cache, 2);
  cache.dispose();
  // reference: a policy that reuses zeros of each block's residual shape at step 1
  const stored = new Map<number, Tensor>();
  const zerosPolicy = {
    reuse: (_b: string, k: number) =>
      stored.has(k) ? zeros("float32", stored.get(k)!.dims) : undefined,
    store: (_b: string, k: number, v: Tensor) => void stored.set(k, v),
  };
  await engine.run(feeds(10, 900), { policy: zerosPolicy });
  const ref = await toFloat32(
    (await engine.run(feeds(11, 800), { policy: zerosPolicy })).out_sample,
  );
  for (const t of stored.values()) t.dispose();
  for (let i = 0; i < ref.length; i++) assert(Math.abs(ref[i] - withShift[1][i]) < 1e-6);
});

Deno.test("two caches interleaved step by step do not share state", async () => {
  const s = schedule(uniformSchedule(3, BLOCKS.length, 3));
  const alone = await runSteps(new BlockCache(s, BLOCKS), 3);
  const a = new BlockCache(s, BLOCKS);
  const b = new BlockCache(null, BLOCKS);
  const outA: Float32Array[] = [];
  for (let i = 0; i < 3; i++) {
    await a.beginStep(i);
    outA.push(
      await toFloat32((await engine.run(feeds(10 + i, 900 - 100 * i), { policy: a })).out_sample),
    );
    // another request with other inputs runs in between
    await b.beginStep(i);
    await engine.run(feeds(99 + i, 500), { policy: b });
  }
  for (let i = 0; i < 3; i++) assertEquals(Array.from(outA[i]), Array.from(alone[i]));
  a.dispose();
  b.dispose();
});

Deno.test("history form: scale 0, previous 1 reuses the value from the computation before", async () => {
  const channelsOf = (k: number) => {
    const c = engine.manifest.segments.filter((s) => s.kind === "block")[k].outputs[0].shape[1];
    return typeof c === "number" ? c : 0;
  };
  // computed at steps 0 and 1, reused at 2: the reused value is the step-0 residual
  const recompute = [0, 1, 2].map((i) => BLOCKS.map(() => i < 2));
  const table = Object.fromEntries(BLOCKS.map((b, k) => {
    const c = channelsOf(k);
    return [b, {
      "2": {
        scale: new Array(c).fill(0),
        shift: new Array(c).fill(0),
        previous: new Array(c).fill(1),
      },
    }];
  }));
  const cache = new BlockCache(schedule(recompute, { scaleShift: table }), BLOCKS);
  const withHistory = await runSteps(cache, 3);
  const historyBytes = cache.stats.peakBytes;
  cache.dispose();
  // reference: a policy that keeps every step's residuals and reuses step 0's at step 2
  const kept: Map<number, Tensor>[] = [new Map(), new Map(), new Map()];
  let step = 0;
  const policy = {
    reuse: (_b: string, k: number) => step === 2 ? kept[0].get(k) : undefined,
    store: (_b: string, k: number, v: Tensor) => void kept[step].set(k, v),
  };
  let ref: Float32Array = new Float32Array();
  for (; step < 3; step++) {
    ref = await toFloat32(
      (await engine.run(feeds(10 + step, 900 - 100 * step), { policy })).out_sample,
    );
  }
  for (const m of kept) for (const t of m.values()) t.dispose();
  for (let i = 0; i < ref.length; i++) assert(Math.abs(ref[i] - withHistory[2][i]) < 1e-6);
  // the history form holds two values per block, the paper's form one
  const plain = new BlockCache(schedule(recompute), BLOCKS);
  await runSteps(plain, 3);
  assertEquals(historyBytes, 2 * plain.stats.peakBytes);
  plain.dispose();
});

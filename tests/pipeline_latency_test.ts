/**
 * The latency predictor on synthetic measurements: per-segment means per UNet batch, overhead per
 * step, cache schedules that skip blocks, the fallback between batches, and `Infinity` before
 * anything was measured.
 */
import { assert, assertEquals } from "./_assert.ts";
import { LatencyModel, type ModelLayout, WarmMean } from "../lib/pipeline/latency.ts";
import type { UNetProfile } from "../lib/pipeline/types.ts";

Deno.test("WarmMean drops the first (cold) sample once a second arrives, then averages with alpha", () => {
  const m = new WarmMean(0.5);
  assertEquals(m.value, undefined);
  m.add(100);
  assertEquals(m.value, 100);
  m.add(4);
  assertEquals(m.value, 4);
  m.add(8);
  assertEquals(m.value, 6);
});

// glue, block 0, glue, block 1, glue
const layout: ModelLayout = {
  native: { width: 64, height: 64 },
  segments: [-1, 0, -1, 1, -1],
  schedules: [{
    id: "dpm-2-uniform-2",
    name: "uniform-2",
    solver: "dpm",
    steps: 2,
    recompute: [[true, true], [false, false]],
  }],
};

/** A generation of `steps` steps at `batch` where every segment took `ms[k]` per run. */
function observe(
  m: LatencyModel,
  batch: number,
  steps: number,
  ms: number[],
  overhead = 0,
  size = 64,
) {
  const profile: UNetProfile = {
    batch,
    width: size,
    height: size,
    runs: ms.map(() => steps),
    ms: ms.map((x) => x * steps),
  };
  const unetMs = ms.reduce((a, b) => a + b, 0) * steps + overhead * steps;
  m.observe("m", {
    profile,
    steps,
    timings: { textEncoderMs: 3, unetMs, decoderMs: 7, totalMs: unetMs + 10 },
  });
}

Deno.test("LatencyModel predicts from per-segment means, per batch, with schedules and overhead", () => {
  const m = new LatencyModel({ m: layout }, 1);
  const spec = { steps: 2, solver: "dpm" as const, schedule: null, guided: true };
  assertEquals(m.predict("m", spec), Infinity);
  assert(!m.measured("m", true));
  observe(m, 2, 2, [1, 10, 1, 20, 1], 0.5);
  observe(m, 2, 2, [1, 10, 1, 20, 1], 0.5); // the first sample is dropped as cold
  // 2 steps × (33 + 0.5) + text encoder 3 + decoder 7
  assertEquals(m.predict("m", spec), 77);
  assertEquals(m.predict("m", { ...spec, n: 3 }), 231);
  // uniform-2 skips both blocks at step 2: 33.5 + 3.5 + 10
  assertEquals(m.predict("m", { ...spec, schedule: "dpm-2-uniform-2" }), 47);
  assertEquals(m.predict("m", { ...spec, schedule: "uniform-2" }), 47);
  // an unknown schedule is an upper bound: uncached
  assertEquals(m.predict("m", { ...spec, schedule: "nope" }), 77);
  // no unguided figures yet: the guided batch's (at most the same cost)
  assertEquals(m.predict("m", { ...spec, guided: false }), 77);
  observe(m, 1, 2, [1, 5, 1, 10, 1]);
  observe(m, 1, 2, [1, 5, 1, 10, 1]);
  assertEquals(m.predict("m", { ...spec, guided: false }), 2 * 18 + 10);
  assert(m.measured("m", false));
});

Deno.test("LatencyModel: guided plans with only unguided figures are predicted at twice the cost", () => {
  const m = new LatencyModel({ m: layout }, 1);
  observe(m, 1, 1, [1, 1, 1, 1, 1]);
  assertEquals(m.predict("m", { steps: 1, solver: "dpm", schedule: null, guided: true }), 30);
});

Deno.test("LatencyModel rejects a profile that does not match the model's layout", () => {
  const m = new LatencyModel({ m: layout });
  let msg = "";
  try {
    observe(m, 2, 1, [1, 2]);
  } catch (e) {
    msg = (e as Error).message;
  }
  assert(msg.includes("2 segments, the model 5"), msg);
});

Deno.test("LatencyModel: figures per image size; an unmeasured size is scaled by its pixels", () => {
  const m = new LatencyModel({ m: layout }, 1);
  const spec = { steps: 1, solver: "dpm" as const, schedule: null, guided: true };
  observe(m, 2, 1, [1, 1, 1, 1, 1]);
  observe(m, 2, 1, [1, 1, 1, 1, 1]);
  assertEquals(m.predict("m", spec), 15);
  // 128x128 has 4x the pixels: a first guess of 4x until it has run
  assertEquals(m.predict("m", { ...spec, width: 128, height: 128 }), 60);
  observe(m, 2, 1, [2, 2, 2, 2, 2], 0, 128);
  observe(m, 2, 1, [2, 2, 2, 2, 2], 0, 128);
  assertEquals(m.predict("m", { ...spec, width: 128, height: 128 }), 20);
  assertEquals(m.predict("m", spec), 15);
});

import { assert, assertEquals } from "./_assert.ts";
import {
  candidatePlans,
  fallbackSteps,
  type PlanRequest,
  planRequest,
} from "../lib/server/planner.ts";
import type { ModelInfo, PlanSpec } from "../lib/pipeline/types.ts";

const model: ModelInfo = {
  name: "m",
  width: 64,
  height: 64,
  backend: "wasm",
  defaults: { steps: 20, solver: "dpm", guidanceScale: 4 },
  schedules: [
    { name: "dpm20-lossy", solver: "dpm", steps: 20, skippedFraction: 0.6, quality: { fd: 0.2 } },
    { name: "dpm20-mild", solver: "dpm", steps: 20, skippedFraction: 0.3, quality: { fd: 0.05 } },
    { name: "dpm10", solver: "dpm", steps: 10, skippedFraction: 0.4 },
    { name: "ddim20", solver: "ddim", steps: 20, skippedFraction: 0.5 },
  ],
};

/** Hand-made latencies: 10 ms per step uncached, a cached block evaluation costs nothing. */
function predict(p: PlanSpec): number {
  const skipped = model.schedules.find((s) => s.name === p.schedule)?.skippedFraction ?? 0;
  return (p.n ?? 1) * (20 + p.steps * 10 * (1 - skipped));
}

function req(over: Partial<PlanRequest>): PlanRequest {
  return {
    model,
    solver: "dpm",
    steps: 20,
    stepsPinned: false,
    cache: "auto",
    n: 1,
    guided: true,
    preview: false,
    budgetMs: Infinity,
    predict,
    ...over,
  };
}

Deno.test("fallbackSteps: requested first, then fewer, including shipped schedules' counts", () => {
  assertEquals(fallbackSteps(20, "dpm", model.schedules), [20, 15, 10, 7, 5]);
  assertEquals(fallbackSteps(3, "dpm", model.schedules), [3]);
  assertEquals(fallbackSteps(50, "ddim", model.schedules), [50, 38, 25, 20, 18, 13]);
});

Deno.test("candidatePlans: quality order — no cache, then better schedules, then fewer steps", () => {
  const c = candidatePlans(req({})).map((p) => `${p.steps}/${p.schedule ?? "none"}`);
  assertEquals(c.slice(0, 5), ["20/none", "20/dpm20-mild", "20/dpm20-lossy", "15/none", "10/none"]);
  assertEquals(c[5], "10/dpm10");
  const prefer = candidatePlans(req({ autoCache: "prefer", stepsPinned: true }));
  assertEquals(prefer.map((p) => p.schedule), ["dpm20-mild", "dpm20-lossy", null]);
});

Deno.test("planRequest: no deadline pressure → requested steps without cache", () => {
  const r = planRequest(req({ budgetMs: 10_000 }));
  assert(r.ok);
  assertEquals([r.plan.steps, r.plan.schedule, r.plan.reason], [20, null, "best quality"]);
  assertEquals(r.plan.predictedMs, 220);
});

Deno.test("planRequest: a tighter budget picks the mildest schedule that fits, then fewer steps", () => {
  // 20/mild = 160 ms, 20/lossy = 100 ms, 15/none = 170 ms, 10/none = 120, 10/dpm10 = 80.
  let r = planRequest(req({ budgetMs: 200 }));
  assert(r.ok);
  assertEquals([r.plan.steps, r.plan.schedule, r.plan.reason], [
    20,
    "dpm20-mild",
    "cached to fit deadline",
  ]);
  r = planRequest(req({ budgetMs: 100 }));
  assert(r.ok);
  assertEquals([r.plan.steps, r.plan.schedule], [20, "dpm20-lossy"]);
  r = planRequest(req({ budgetMs: 90 }));
  assert(r.ok);
  assertEquals([r.plan.steps, r.plan.schedule, r.plan.reason], [
    10,
    "dpm10",
    "fewer steps to fit deadline",
  ]);
});

Deno.test("planRequest: nothing fits → not ok, with the fastest candidate and a message", () => {
  const r = planRequest(req({ budgetMs: 30 }));
  assert(!r.ok);
  assertEquals(r.fastest.steps, 5);
  assertEquals(r.fastest.predictedMs, 70);
  assert(r.message.includes("70 ms"), r.message);
});

Deno.test("planRequest: pinned steps and pinned cache are respected, only checked", () => {
  let r = planRequest(req({ stepsPinned: true, cache: "none", budgetMs: 1000 }));
  assert(r.ok);
  assertEquals([r.plan.steps, r.plan.schedule, r.plan.reason], [20, null, "as requested"]);
  // Pinned no-cache at 20 steps does not fit 200 ms: no fallback to a schedule or fewer steps.
  assert(!planRequest(req({ stepsPinned: true, cache: "none", budgetMs: 200 })).ok);
  r = planRequest(req({ cache: "dpm10", budgetMs: 1000 }));
  assert(r.ok);
  assertEquals([r.plan.steps, r.plan.schedule, r.plan.reason], [10, "dpm10", "as requested"]);
  assert(!planRequest(req({ cache: "dpm10", budgetMs: 79 })).ok);
  // Pinned steps with cache auto: schedules for those steps are still allowed.
  r = planRequest(req({ stepsPinned: true, budgetMs: 150 }));
  assert(r.ok);
  assertEquals([r.plan.steps, r.plan.schedule], [20, "dpm20-lossy"]);
});

Deno.test("planRequest: n multiplies the prediction", () => {
  const r = planRequest(req({ n: 3, budgetMs: 1000 }));
  assert(r.ok);
  assertEquals([r.plan.steps, r.plan.schedule, r.plan.predictedMs], [20, null, 660]);
  const r2 = planRequest(req({ n: 3, budgetMs: 400 }));
  assert(r2.ok);
  assertEquals(r2.plan.schedule, "dpm20-lossy");
});

Deno.test("planRequest: preview takes the fastest plan", () => {
  const r = planRequest(req({ preview: true, budgetMs: 10_000 }));
  assert(r.ok);
  assertEquals([r.plan.steps, r.plan.reason], [5, "fastest (preview)"]);
  assert(!planRequest(req({ preview: true, budgetMs: 60 })).ok);
});

Deno.test("planRequest: an unpredictable plan (Infinity/NaN) never fits", () => {
  const r = planRequest(req({ budgetMs: 1e9, predict: () => NaN }));
  assert(!r.ok);
});

import { assert, assertEquals } from "./_assert.ts";
import {
  candidatePlans,
  fallbackSteps,
  type PlanningModel,
  type PlanRequest,
  planRequest,
  type PlanSpec,
  resolveAutoCache,
  type ScheduleInfo,
} from "../lib/planning/planner.ts";
import { type FrontierPlan, paretoFront, planId } from "../lib/planning/frontier.ts";
import { syntheticFrontier } from "./support/frontier.ts";
import type { SolverName } from "../lib/solvers/solver.ts";

// ---- without a frontier: the order used before frontiers were measured ----

const schedules: ScheduleInfo[] = [
  { name: "dpm20-lossy", solver: "dpm", steps: 20, skippedFraction: 0.6, quality: { fd: 0.2 } },
  { name: "dpm20-mild", solver: "dpm", steps: 20, skippedFraction: 0.3, quality: { fd: 0.05 } },
  { name: "dpm10", solver: "dpm", steps: 10, skippedFraction: 0.4 },
  { name: "ddim20", solver: "ddim", steps: 20, skippedFraction: 0.5 },
];

/** Hand-made latencies: 10 ms per step uncached, a cached block evaluation costs nothing. */
function predict(p: PlanSpec): number {
  const skipped = schedules.find((s) => s.name === p.schedule)?.skippedFraction ?? 0;
  return (p.n ?? 1) * (20 + p.steps * 10 * (1 - skipped));
}

function req(over: Partial<PlanRequest>): PlanRequest {
  return {
    model: { schedules },
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
  assertEquals(fallbackSteps(20, "dpm", schedules), [20, 15, 10, 7, 5]);
  assertEquals(fallbackSteps(3, "dpm", schedules), [3]);
  assertEquals(fallbackSteps(50, "ddim", schedules), [50, 38, 25, 20, 18, 13]);
});

Deno.test("no frontier: no cache, then better schedules, then fewer steps", () => {
  const c = candidatePlans(req({})).map((p) => `${p.steps}/${p.schedule ?? "none"}`);
  assertEquals(c.slice(0, 6), [
    "20/none",
    "20/dpm20-mild",
    "20/dpm20-lossy",
    "15/none",
    "10/none",
    "10/dpm10",
  ]);
  const prefer = candidatePlans(req({ autoCache: "prefer", stepsPinned: true }));
  assertEquals(prefer.map((p) => p.schedule), ["dpm20-mild", "dpm20-lossy", null]);
  let r = planRequest(req({ budgetMs: 10_000 }));
  assert(r.ok);
  assertEquals([r.plan.steps, r.plan.schedule, r.plan.reason], [20, null, "best quality"]);
  assertEquals(r.plan.quality, undefined);
  // 20/mild = 160 ms, 20/lossy = 100 ms, 15/none = 170 ms, 10/none = 120, 10/dpm10 = 80
  r = planRequest(req({ budgetMs: 200 }));
  assert(r.ok);
  assertEquals([r.plan.schedule, r.plan.reason], ["dpm20-mild", "best quality that fits"]);
  r = planRequest(req({ budgetMs: 90 }));
  assert(r.ok);
  assertEquals([r.plan.steps, r.plan.schedule], [10, "dpm10"]);
  const none = planRequest(req({ budgetMs: 30 }));
  assert(!none.ok);
  assertEquals([none.fastest.steps, none.fastest.predictedMs], [5, 70]);
  assert(none.message.includes("70 ms"), none.message);
  assert(!planRequest(req({ budgetMs: 1e9, predict: () => NaN })).ok, "NaN never fits");
});

// ---- a synthetic frontier ----

const SEGMENTS = [{ name: "glue", block: false }, { name: "attn", block: true }];

/** [steps, schedule (short name) or null, skipped fraction, fd] → a measured plan. */
function plan(
  solver: SolverName,
  steps: number,
  schedule: string | null,
  skipped: number,
  fd: number,
) {
  const blockRuns = steps - Math.round(skipped * steps);
  const p: FrontierPlan = {
    id: planId(solver, steps, schedule),
    steps,
    schedule,
    ...(schedule ? { scheduleSha256: "0".repeat(64) } : {}),
    skippedFraction: skipped,
    cost: { evaluations: { glue: steps, attn: blockRuns } },
    quality: { fd, kid: fd / 100, kidStd: 0, accuracy: 0.9, psnr: 30, ssim: 0.9 },
  };
  return p;
}

const dpmPlans = [
  plan("dpm", 50, null, 0, 2.9),
  plan("dpm", 20, null, 0, 3.1),
  plan("dpm", 20, "delta-0.16", 0.6, 3.2),
  plan("dpm", 20, "delta-0.10", 0.4, 3.08),
  plan("dpm", 15, null, 0, 3.05),
  plan("dpm", 10, null, 0, 2.95),
  plan("dpm", 10, "uniform-2", 0.5, 3.3),
  plan("dpm", 8, null, 0, 3.4),
  plan("dpm", 8, "delta-0.5", 0.6, 3.9),
  plan("dpm", 6, null, 0, 4.5),
  plan("dpm", 4, null, 0, 7.0),
  plan("dpm", 4, "uniform-2", 0.5, 9.0),
];
const shipped: ScheduleInfo[] = dpmPlans.flatMap((p) =>
  p.schedule
    ? [{ name: p.id, solver: "dpm" as const, steps: p.steps, skippedFraction: p.skippedFraction }]
    : []
);
const model: PlanningModel = {
  schedules: shipped,
  frontiers: [syntheticFrontier("dpm", SEGMENTS, dpmPlans)],
};

/** 10 ms per glue run, 10 ms per block run, per image at batch 2; half that at batch 1. */
function predictFrontier(spec: PlanSpec): number {
  const p = dpmPlans.find((x) =>
    x.steps === spec.steps &&
    (spec.schedule === null ? x.schedule === null : x.id === spec.schedule)
  );
  const runs = p ? p.cost.evaluations.glue + p.cost.evaluations.attn : 2 * spec.steps;
  return (spec.n ?? 1) * runs * 10 * (spec.guided === false ? 0.5 : 1);
}

function freq(over: Partial<PlanRequest>): PlanRequest {
  return req({ model, predict: predictFrontier, ...over });
}

Deno.test("frontier: the best measured FD wins, up to the requested steps; the answer says why", () => {
  const r = planRequest(freq({}));
  assert(r.ok);
  assertEquals([r.plan.steps, r.plan.schedule, r.plan.reason], [10, null, "best quality"]);
  assertEquals(r.plan.quality?.fd, 2.95);
  assert(r.plan.why.includes("FD 2.950") && r.plan.why.includes("dpm-10-none"), r.plan.why);
  // 50 steps measure better still, but the request's steps (the default 20) are the ceiling
  const r50 = planRequest(freq({ steps: 50 }));
  assert(r50.ok);
  assertEquals([r50.plan.steps, r50.plan.schedule], [50, null]);
});

Deno.test("frontier: dominated plans are never chosen, at any budget", () => {
  const costOf = (p: FrontierPlan) =>
    predictFrontier({ steps: p.steps, solver: "dpm", schedule: p.schedule && p.id, guided: true });
  const front = new Set(paretoFront(dpmPlans, costOf).map((p) => p.id));
  assert(!front.has("dpm-20-delta-0.16") && !front.has("dpm-8-none"), [...front].join());
  let chosen = 0;
  for (let budget = 0; budget <= 1100; budget += 5) {
    const r = planRequest(freq({ steps: 50, budgetMs: budget }));
    if (!r.ok) {
      assert(budget < Math.min(...dpmPlans.map(costOf)), `budget ${budget}: ${r.message}`);
      continue;
    }
    chosen++;
    const id = r.plan.schedule ?? planId("dpm", r.plan.steps, null);
    assert(front.has(id), `budget ${budget}: ${id} is dominated`);
    const fitting = dpmPlans.filter((p) => costOf(p) <= budget).map((p) => p.quality.fd);
    assertEquals(r.plan.quality?.fd, Math.min(...fitting), `budget ${budget}`);
  }
  assert(chosen > 150, `${chosen} budgets had a plan`);
});

Deno.test("frontier: a deadline that the best plan misses takes the best that fits, and says so", () => {
  // dpm-10-none (FD 2.95) takes 200 ms; of the plans within 199 ms dpm-10-uniform-2 (150 ms)
  // measures best (FD 3.3), better than dpm-8-none (160 ms, FD 3.4)
  const r = planRequest(freq({ budgetMs: 199 }));
  assert(r.ok);
  assertEquals([r.plan.steps, r.plan.schedule, r.plan.reason], [
    10,
    "dpm-10-uniform-2",
    "best quality that fits",
  ]);
  assert(r.plan.why.includes("too slow") && r.plan.why.includes("dpm-10-none"), r.plan.why);
  assert(r.plan.rank > 0);
});

Deno.test("frontier: pinned steps and pinned cache are respected, only checked", () => {
  // steps pinned, cache auto: only the plans at 20 steps, best FD first
  let r = planRequest(freq({ stepsPinned: true }));
  assert(r.ok);
  assertEquals([r.plan.steps, r.plan.schedule, r.plan.reason], [
    20,
    "dpm-20-delta-0.10",
    "best quality",
  ]);
  r = planRequest(freq({ stepsPinned: true, budgetMs: 300 }));
  assert(r.ok);
  assertEquals([r.plan.steps, r.plan.schedule], [20, "dpm-20-delta-0.16"]);
  // steps pinned and no cache: that plan or nothing
  r = planRequest(freq({ stepsPinned: true, cache: "none" }));
  assert(r.ok);
  assertEquals([r.plan.steps, r.plan.schedule, r.plan.reason], [20, null, "as requested"]);
  assert(!planRequest(freq({ stepsPinned: true, cache: "none", budgetMs: 399 })).ok);
  // cache none, steps free: the uncached frontier only (auto would take dpm-10-uniform-2)
  r = planRequest(freq({ cache: "none", budgetMs: 199 }));
  assert(r.ok);
  assertEquals([r.plan.steps, r.plan.schedule], [8, null]);
  // a named schedule: that plan, with its measured quality, or nothing
  r = planRequest(freq({ cache: "dpm-8-delta-0.5" }));
  assert(r.ok);
  assertEquals([r.plan.steps, r.plan.schedule, r.plan.reason], [
    8,
    "dpm-8-delta-0.5",
    "as requested",
  ]);
  assertEquals(r.plan.quality?.fd, 3.9);
  assert(!planRequest(freq({ cache: "dpm-8-delta-0.5", budgetMs: 100 })).ok);
  // steps pinned off the frontier's grid: the order without a frontier
  r = planRequest(freq({ steps: 17, stepsPinned: true }));
  assert(r.ok);
  assertEquals([r.plan.steps, r.plan.schedule, r.plan.quality], [17, null, undefined]);
});

Deno.test("frontier: guidance doubles the batch the cost counts; without it better plans fit", () => {
  const asked = (seen: (boolean | undefined)[]) => (s: PlanSpec) => {
    seen.push(s.guided);
    return predictFrontier(s);
  };
  const seenGuided: (boolean | undefined)[] = [];
  const guided = planRequest(freq({ budgetMs: 199, predict: asked(seenGuided) }));
  assert(guided.ok);
  assert(seenGuided.length > 0 && seenGuided.every((g) => g === true), "guided by default");
  const seenUnguided: (boolean | undefined)[] = [];
  const unguided = planRequest(
    freq({ budgetMs: 199, guided: false, predict: asked(seenUnguided) }),
  );
  assert(unguided.ok);
  assert(seenUnguided.every((g) => g === false), "the predictor is told");
  assertEquals([guided.plan.schedule, unguided.plan.schedule], ["dpm-10-uniform-2", null]);
  assertEquals(unguided.plan.steps, 10);
  assertEquals(unguided.plan.predictedMs, 100);
  // n images: n times the cost
  const three = planRequest(freq({ n: 3, budgetMs: 600 }));
  assert(three.ok);
  assertEquals([three.plan.steps, three.plan.predictedMs], [10, 600]);
});

Deno.test("frontier: previews take the cheapest plan above the stated quality floor", () => {
  // best FD 2.95 × 1.5 = 4.425: dpm-8-delta-0.5 (FD 3.9, 110 ms) is the cheapest within it
  let r = planRequest(freq({ preview: true }));
  assert(r.ok);
  assertEquals([r.plan.steps, r.plan.schedule, r.plan.reason], [
    8,
    "dpm-8-delta-0.5",
    "cheapest above the preview floor",
  ]);
  r = planRequest(freq({ preview: true, previewFdFactor: 3.1 }));
  assert(r.ok);
  assertEquals([r.plan.steps, r.plan.schedule], [4, "dpm-4-uniform-2"]);
  // nothing above the floor fits: the best quality that does, saying so
  r = planRequest(freq({ preview: true, budgetMs: 100 }));
  assert(r.ok);
  assertEquals([r.plan.steps, r.plan.schedule, r.plan.reason], [4, null, "best quality that fits"]);
  assert(r.plan.why.includes("preview floor"), r.plan.why);
  // without measured quality: the fastest that fits
  r = planRequest(req({ preview: true }));
  assert(r.ok);
  assertEquals([r.plan.steps, r.plan.reason], [5, "fastest (preview)"]);
});

Deno.test("frontier: a measured plan whose schedule is not shipped is no candidate", () => {
  const partial: PlanningModel = {
    schedules: shipped.filter((s) => s.name !== "dpm-20-delta-0.10"),
    frontiers: model.frontiers,
  };
  const ids = candidatePlans(req({ model: partial })).map((c) => c.schedule);
  assert(!ids.includes("dpm-20-delta-0.10"));
  assert(ids.includes("dpm-20-delta-0.16"));
});

Deno.test("resolveAutoCache: the best measured plan at the requested steps, no deadline", () => {
  assertEquals(resolveAutoCache(model, { solver: "dpm", steps: 20 }), "dpm-20-delta-0.10");
  assertEquals(resolveAutoCache(model, { solver: "dpm", steps: 10 }), null);
  // no frontier for the solver, or steps off the grid: uncached comes first
  assertEquals(resolveAutoCache(model, { solver: "ddim", steps: 20 }), null);
  assertEquals(resolveAutoCache({ schedules }, { solver: "dpm", steps: 20 }), null);
});

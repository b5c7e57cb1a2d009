import { assert, assertEquals, assertThrows } from "./_assert.ts";
import { uniformSchedule } from "../lib/calibration/derive.ts";
import {
  type Schedule,
  SCHEDULE_FORMAT,
  serializeSchedule,
  skippedFraction,
} from "../lib/cache/schedule.ts";
import { ScheduleRegistry } from "../lib/cache/registry.ts";
import {
  bestWithin,
  checkFrontierMatches,
  type Frontier,
  FRONTIER_FORMAT,
  frontierFileName,
  isoQualitySpeedup,
  loadFrontiers,
  paretoFront,
  parseFrontier,
  planCost,
  predictPlanMs,
  scheduleFingerprint,
  serializeFrontier,
} from "../lib/planning/frontier.ts";
import { readSplitManifest } from "../lib/unet/engine.ts";

const SEGMENTS = [
  { name: "glue_00", block: false },
  { name: "a", block: true },
  { name: "glue_01", block: false },
  { name: "b", block: true },
];

function schedule(steps: number, every: number): Schedule {
  const recompute = uniformSchedule(steps, 2, every);
  // the registry's view: what a parsed file holds
  return JSON.parse(serializeSchedule({
    format: SCHEDULE_FORMAT,
    model: "m",
    solver: "dpm",
    steps,
    name: `uniform-${every}`,
    kind: "uniform",
    every,
    mode: "residual",
    blocks: ["a", "b"],
    recompute,
    skippedFraction: skippedFraction(recompute),
    scaleShift: { a: { "1": { scale: [1.5, 0.5], shift: [0, 0.25] } } },
  }));
}

const u2 = schedule(4, 2);

function frontier(): Frontier {
  const quality = (fd: number) => ({
    fd,
    kid: 0.01,
    kidStd: 0.002,
    accuracy: 0.9,
    psnr: 31.5,
    ssim: 0.97,
  });
  return {
    format: FRONTIER_FORMAT,
    model: "m",
    solver: "dpm",
    segments: SEGMENTS,
    reference: "dpm-8-none",
    prompts: { count: 16, source: "test captions", seeds: "prompt index", guidanceScale: 4 },
    floor: { fd: 1.9, kid: -0.05 },
    fdSpread: { plan: "dpm-4-none", fd: [3.5, 3.56, 3.47] },
    measured: {
      command: "deno task frontier --prompts 16",
      machine: "test machine",
      backend: "wasm",
      date: "2026-11-30",
      segmentMs: { batch2: { glue_00: 3, a: 5, glue_01: 2, b: 4 } },
      timingRuns: 3,
    },
    plans: [
      {
        id: "dpm-8-none",
        steps: 8,
        schedule: null,
        skippedFraction: 0,
        cost: planCost(SEGMENTS, 8, null),
        quality: { ...quality(3), psnr: null, ssim: 1 },
        measuredMs: { unet: 110.5, total: 130.25 },
      },
      {
        id: "dpm-4-none",
        steps: 4,
        schedule: null,
        skippedFraction: 0,
        cost: planCost(SEGMENTS, 4, null),
        quality: quality(3.5),
      },
      {
        id: "dpm-4-uniform-2",
        steps: 4,
        schedule: "uniform-2",
        scheduleSha256: scheduleFingerprint(u2),
        skippedFraction: 0.5,
        cost: planCost(SEGMENTS, 4, u2),
        quality: quality(4),
      },
    ],
  };
}

Deno.test("planCost counts glue once per step and blocks as their schedule computes them", () => {
  assertEquals(planCost(SEGMENTS, 4, null).evaluations, { glue_00: 4, a: 4, glue_01: 4, b: 4 });
  assertEquals(planCost(SEGMENTS, 4, u2).evaluations, { glue_00: 4, a: 2, glue_01: 4, b: 2 });
  assertThrows(() => planCost([{ name: "c", block: true }], 4, u2), "no column for block c");
});

Deno.test("predictPlanMs sums evaluations × per-segment latency; undefined without a latency", () => {
  const ms = { glue_00: 3, a: 5, glue_01: 2, b: 4 } as Record<string, number>;
  assertEquals(
    predictPlanMs(planCost(SEGMENTS, 4, u2), (s) => ms[s]),
    4 * 3 + 2 * 5 + 4 * 2 + 2 * 4,
  );
  assertEquals(
    predictPlanMs(planCost(SEGMENTS, 4, null), (s) => (s === "b" ? undefined : 1)),
    undefined,
  );
});

Deno.test("paretoFront keeps a plan only when no cheaper plan is better", () => {
  const plans = [
    { id: "a", cost: 10, quality: { fd: 5 } },
    { id: "b", cost: 20, quality: { fd: 6 } }, // dominated by a
    { id: "c", cost: 30, quality: { fd: 4 } },
    { id: "d", cost: 30, quality: { fd: 4.5 } }, // same cost, worse
    { id: "e", cost: 50, quality: { fd: 3 } },
  ];
  assertEquals(paretoFront(plans, (p) => p.cost).map((p) => p.id), ["a", "c", "e"]);
});

Deno.test("bestWithin and isoQualitySpeedup: the best FD within a time, the time to reach an FD", () => {
  const plans = [
    { id: "20", schedule: null, ms: 700, quality: { fd: 3.1 } },
    { id: "10", schedule: null, ms: 360, quality: { fd: 3.3 } },
    { id: "20-c", schedule: "c", ms: 500, quality: { fd: 3.2 } },
    { id: "10-c", schedule: "c", ms: 250, quality: { fd: 3.6 } },
    { id: "4", schedule: null, ms: 150, quality: { fd: 7 } },
  ];
  const ms = (p: { ms: number }) => p.ms;
  assertEquals(bestWithin(plans, ms, 600)?.id, "20-c");
  assertEquals(bestWithin(plans, ms, 600, (p) => p.schedule === null)?.id, "10");
  assertEquals(bestWithin(plans, ms, 100), undefined);
  // FD 3.2: caching reaches it in 500 ms, without caching it takes the 700 ms plan
  const r = isoQualitySpeedup(plans, ms, 3.2)!;
  assertEquals([r.uncached.id, r.any.id, r.speedup], ["20", "20-c", 1.4]);
  assertEquals(isoQualitySpeedup(plans, ms, 3.3)!.speedup, 1); // the uncached 10 is fastest
  assertEquals(isoQualitySpeedup(plans, ms, 3.0), undefined);
});

Deno.test("a frontier file round-trips: parse(serialize(f)) equals f, and serializes the same", () => {
  const f = frontier();
  const text = serializeFrontier(f);
  const back = parseFrontier(text, "dpm.frontier.json");
  assertEquals(back, f);
  assertEquals(serializeFrontier(back), text);
  assert(text.split("\n").filter((l) => l.includes('"id":')).length === 3, "one plan per line");
  assertEquals(frontierFileName("ddim"), "ddim.frontier.json");
});

Deno.test("a malformed frontier file is rejected naming the field", () => {
  const bad = (mutate: (f: Frontier & Record<string, unknown>) => void, message: string) => {
    const f = frontier() as Frontier & Record<string, unknown>;
    mutate(f);
    assertThrows(() => parseFrontier(JSON.stringify(f), "x.json"), message);
  };
  assertThrows(() => parseFrontier("{", "x.json"), "x.json: not valid JSON");
  bad((f) => (f.format = "blockcache-frontier/0" as typeof FRONTIER_FORMAT), "x.json: format");
  bad((f) => (f.solver = "heun" as "dpm"), "solver must be one of");
  bad((f) => (f.plans[1].id = "dpm-5-none"), 'plans[1].id must be "dpm-4-none"');
  bad(
    (f) => delete f.plans[2].cost.evaluations.b,
    "plans[2].cost.evaluations is missing segment b",
  );
  bad((f) => (f.plans[2].cost.evaluations.a = 9), "must be an integer in 0..4");
  bad((f) => delete f.plans[2].scheduleSha256, "plans[2].scheduleSha256 is required");
  bad((f) => (f.plans[0].quality.fd = NaN), "plans[0].quality.fd must be a finite number");
  bad((f) => (f.reference = "dpm-50-none"), "reference dpm-50-none is not one of the plans");
  bad((f) => (f.fdSpread = { plan: "dpm-4-none", fd: [3] }), "fdSpread must be");
  bad((f) => f.plans.push(f.plans[1]), "plans[3].id repeats dpm-4-none");
});

Deno.test("a frontier that does not match the model's schedules is rejected clearly", () => {
  const ctx = { model: "m", segments: SEGMENTS, schedules: [u2] };
  checkFrontierMatches(frontier(), ctx); // matches
  const check = (ctxOver: Partial<typeof ctx>, message: string, f = frontier()) =>
    assertThrows(
      () => checkFrontierMatches(f, { ...ctx, ...ctxOver }, "dpm.frontier.json"),
      message,
    );
  check({ model: "other" }, "dpm.frontier.json: is for model m, not other");
  check(
    { segments: SEGMENTS.slice(0, 3) },
    "the model's split.json has glue_00, a (block), glue_01",
  );
  check(
    { schedules: [] },
    "plan dpm-4-uniform-2 names schedule dpm-4-uniform-2.json, which is not shipped",
  );
  // recalibrated: same table, another scale-shift
  const refit = { ...u2, scaleShift: { a: { "1": { scale: [1.4, 0.5], shift: [0, 0.25] } } } };
  check({ schedules: [refit] }, "measured with another version of its schedule (sha256 differs)");
  // measured figures written into the schedule afterwards change nothing
  checkFrontierMatches(frontier(), { ...ctx, schedules: [{ ...u2, measured: { fd: 3 } }] });
  const f = frontier();
  f.plans[2].cost.evaluations.a = 3;
  check({}, "plan dpm-4-uniform-2 costs 3 runs of a; its schedule runs it 2 times", f);
  check({}, "deno task frontier --solvers dpm", f);
  // a shipped schedule the frontier never measured is fine (used only when named)
  checkFrontierMatches(frontier(), { ...ctx, schedules: [u2, schedule(4, 3)] });
});

Deno.test("loadFrontiers reads *.frontier.json, checks each, and insists on the file name", async () => {
  const dir = await Deno.makeTempDir({ prefix: "frontier-test-" });
  try {
    const ctx = { model: "m", segments: SEGMENTS, schedules: [u2] };
    assertEquals(await loadFrontiers(`${dir}/missing`, ctx), []);
    await Deno.writeTextFile(`${dir}/dpm.frontier.json`, serializeFrontier(frontier()));
    assertEquals((await loadFrontiers(dir, ctx)).map((f) => f.solver), ["dpm"]);
    await Deno.rename(`${dir}/dpm.frontier.json`, `${dir}/ddim.frontier.json`);
    const e = await loadFrontiers(dir, ctx).then(() => undefined, (e: Error) => e);
    assert(e?.message.includes("must be named dpm.frontier.json"), e?.message);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the shipped frontiers (DPM-Solver++ and DDIM) match the shipped schedules and split", async () => {
  const model = new URL("../models/emoji-ldm", import.meta.url).pathname;
  const dir = new URL("../schedules/emoji-ldm", import.meta.url).pathname;
  const manifest = await readSplitManifest(`${model}/unet`);
  const registry = await ScheduleRegistry.load(dir, "emoji-ldm");
  const frontiers = await loadFrontiers(dir, {
    model: "emoji-ldm",
    segments: manifest.segments.map((s) => ({ name: s.name, block: s.kind === "block" })),
    schedules: registry.schedules,
  });
  assertEquals(frontiers.map((f) => f.solver), ["ddim", "dpm"]);
  for (const f of frontiers) {
    assert(f.prompts.count >= 128, `${f.solver}: ${f.prompts.count} prompts`);
    assert(f.plans.some((p) => p.schedule !== null) && f.plans.some((p) => p.schedule === null));
    assert(f.plans.every((p) => p.measuredMs !== undefined), `${f.solver}: every plan timed`);
  }
});

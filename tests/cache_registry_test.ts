import { assert, assertEquals, assertThrows } from "./_assert.ts";
import { uniformSchedule } from "../lib/calibration/derive.ts";
import { parseScheduleIndex, ScheduleRegistry } from "../lib/cache/registry.ts";
import { SCHEDULE_FORMAT, serializeSchedule, skippedFraction } from "../lib/cache/schedule.ts";

const BLOCKS = ["down_blocks.0.attentions.0", "mid_block.attentions.0"];
const DIR = await Deno.makeTempDir({ prefix: "registry-test-" });

function write(solver: "ddim" | "dpm", steps: number, every: number) {
  const recompute = uniformSchedule(steps, BLOCKS.length, every);
  const text = serializeSchedule({
    format: SCHEDULE_FORMAT,
    model: "m",
    solver,
    steps,
    name: `uniform-${every}`,
    kind: "uniform",
    every,
    mode: "residual",
    blocks: BLOCKS,
    recompute,
    skippedFraction: skippedFraction(recompute),
  });
  return Deno.writeTextFile(`${DIR}/${solver}-${steps}-uniform-${every}.json`, text);
}
await write("dpm", 4, 2);
await write("dpm", 4, 3);
await write("ddim", 6, 2);
await Deno.writeTextFile(
  `${DIR}/index.json`,
  JSON.stringify({ recommended: { "dpm-4": "uniform-3" } }),
);
await Deno.writeTextFile(`${DIR}/dpm-4.curves.json`, "{}"); // analysis files are not schedules
const reg = await ScheduleRegistry.load(DIR, "m");
const req = { solver: "dpm" as const, steps: 4, blocks: BLOCKS };

async function rejects(p: Promise<unknown>, includes: string) {
  try {
    await p;
  } catch (e) {
    assert((e as Error).message.includes(includes), (e as Error).message);
    return;
  }
  throw new Error(`expected a rejection containing ${includes}`);
}

Deno.test("registry: loads schedule files only, sorted", () => {
  assertEquals(reg.schedules.map((s) => `${s.solver}-${s.steps}-${s.name}`), [
    "ddim-6-uniform-2",
    "dpm-4-uniform-2",
    "dpm-4-uniform-3",
  ]);
});

Deno.test("registry: none, a name, a full id and a file resolve; the recommended one is listed", async () => {
  assertEquals(await reg.resolve("none", req), null);
  assertEquals(reg.recommended("dpm", 4)?.name, "uniform-3");
  assertEquals(reg.recommended("dpm", 5), undefined);
  assertEquals((await reg.resolve("uniform-2", req))?.every, 2);
  assertEquals((await reg.resolve("dpm-4-uniform-3", req))?.every, 3);
  assertEquals((await reg.resolve(`${DIR}/dpm-4-uniform-2.json`, req))?.name, "uniform-2");
});

Deno.test("registry: unknown names, other step counts and bad blocks are clear errors", async () => {
  await rejects(reg.resolve("delta-9", req), "unknown schedule delta-9");
  await rejects(reg.resolve("uniform-2", { ...req, steps: 5 }), "not dpm 5 steps");
  await rejects(reg.resolve(`${DIR}/ddim-6-uniform-2.json`, req), "is for solver ddim");
  await rejects(reg.resolve(`${DIR}/nope.json`, req), "not found");
  await rejects(reg.resolve("uniform-2", { ...req, blocks: ["x"] }), "x");
  await rejects(reg.resolve("auto", req), "resolveAutoCache");
});

Deno.test("registry: index.json must use the key recommended", () => {
  assertEquals(parseScheduleIndex('{"recommended": {"dpm-20": "delta-0.16"}}').recommended, {
    "dpm-20": "delta-0.16",
  });
  assertThrows(() => parseScheduleIndex('{"auto": {"dpm-20": "x"}}', "i.json"), "was renamed");
  assertThrows(() => parseScheduleIndex('{"recommended": {"dpm": "x"}}', "i.json"), "i.json");
  assertThrows(() => parseScheduleIndex("{", "i.json"), "not valid JSON");
});

Deno.test("registry: a missing folder means no schedules", async () => {
  const empty = await ScheduleRegistry.load(`${DIR}/missing`, "m");
  assertEquals(empty.schedules.length, 0);
  assertEquals(empty.recommended("dpm", 4), undefined);
});

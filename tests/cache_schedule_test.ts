import { assert, assertEquals, assertThrows } from "./_assert.ts";
import {
  checkScheduleFits,
  deltaScheduleName,
  parseSchedule,
  type Schedule,
  scheduleFileName,
  serializeSchedule,
  skippedFraction,
  uniformScheduleName,
  validateSchedule,
} from "../lib/cache/schedule.ts";

const BLOCKS = ["down_blocks.0.attentions.0", "mid_block.attentions.0"];

function sample(): Schedule {
  const recompute = [[true, true], [false, true], [true, false], [false, false]];
  return {
    format: "blockcache-schedule/1",
    model: "emoji-ldm",
    solver: "ddim",
    steps: 4,
    name: "delta-0.50",
    kind: "delta",
    delta: 0.5,
    mode: "residual",
    blocks: [...BLOCKS],
    recompute,
    skippedFraction: skippedFraction(recompute),
    scaleShift: {
      "down_blocks.0.attentions.0": {
        // computed at steps 0 and 2, so step 3 may weigh the previous value (history form)
        "3": { scale: [1.01234, 0.99], shift: [0, -0.5], previous: [-0.25, 0.125] },
        "1": { scale: [1.5, 2], shift: [0.25, 1e-7] },
      },
      "mid_block.attentions.0": { "2": { scale: [1, 1], shift: [0, 0] } },
    },
    measured: { speedup: 1.65432, fd: 12.5, machine: "test", date: "2026-11-01", n: 256 },
  };
}

Deno.test("skippedFraction counts reused entries", () => {
  assertEquals(skippedFraction([[true, true], [false, true], [true, false], [false, false]]), 0.5);
  assertEquals(skippedFraction([[true], [true]]), 0);
  assertEquals(skippedFraction([]), 0);
});

Deno.test("schedule file names", () => {
  assertEquals(scheduleFileName("ddim", 20, "delta-0.50"), "ddim-20-delta-0.50.json");
  assertEquals(scheduleFileName("dpm", 50, uniformScheduleName(3)), "dpm-50-uniform-3.json");
  assertEquals(deltaScheduleName(0.5), "delta-0.50");
  assertEquals(deltaScheduleName(1), "delta-1.00");
  assertEquals(deltaScheduleName(0.125), "delta-0.125");
  assertThrows(() => scheduleFileName("ddim", 20, "../evil"), "must match");
  assertThrows(() => scheduleFileName("heun" as "ddim", 20, "x"), "unknown solver");
  assertThrows(() => scheduleFileName("ddim", 0, "x"), "steps");
});

Deno.test("serialize → parse round-trips and is stable", () => {
  const s = sample();
  const text = serializeSchedule(s);
  const back = parseSchedule(text, "t.json");
  assertEquals(back, s);
  assertEquals(serializeSchedule(back), text);
  // One recompute row per line, steps of scale-shift in numeric order.
  assert(text.includes("\n    [false,true],\n"));
  assert(text.indexOf('"1": {"scale"') < text.indexOf('"3": {"scale"'));
  assert(text.includes('"shift":[0,-0.5],"previous":[-0.25,0.125]}'), text);
  assert(!text.includes('"shift":[0.25,1e-7],"previous"'), "the paper's form has no previous");
});

Deno.test("serialize writes 6 significant digits and stays idempotent", () => {
  const s = sample();
  s.scaleShift!["mid_block.attentions.0"]["2"] = {
    scale: [1.0000001234567, 0.123456789],
    shift: [-3.14159265358979, 123456.789],
  };
  s.measured = { speedup: 2.0000004, psnr: 31.234567891 };
  const text = serializeSchedule(s);
  assert(text.includes('{"scale":[1,0.123457],"shift":[-3.14159,123457]}'), text);
  assert(text.includes('"measured": {"speedup":2,"psnr":31.2346}'), text);
  assertEquals(serializeSchedule(parseSchedule(text)), text);
});

Deno.test("validateSchedule names the bad field", () => {
  const bad = (edit: (s: Record<string, unknown>) => void, field: string) => {
    const s = structuredClone(sample()) as unknown as Record<string, unknown>;
    edit(s);
    assertThrows(() => validateSchedule(s, "x.json"), `x.json: ${field}`);
  };
  bad((s) => s.format = "blockcache-schedule/2", "format");
  bad((s) => s.solver = "heun", "solver");
  bad((s) => s.steps = 2.5, "steps");
  bad((s) => s.name = "a b", "name");
  bad((s) => s.kind = "magic", "kind");
  bad((s) => s.delta = -1, "delta");
  bad((s) => s.every = 0, "every");
  bad((s) => s.mode = "both", "mode");
  bad((s) => s.blocks = [], "blocks");
  bad((s) => s.blocks = ["a", "a"], "blocks[1]");
  bad((s) => (s.recompute as boolean[][]).pop(), "recompute must be a list of 4 rows");
  bad((s) => (s.recompute as boolean[][])[2] = [true], "recompute[2]");
  bad((s) => (s.recompute as unknown[][])[1][1] = 1, "recompute[1][1] must be a boolean");
  bad((s) => (s.recompute as boolean[][])[0][1] = false, "recompute[0][1] must be true");
  bad((s) => s.skippedFraction = 0.25, "skippedFraction is 0.25 but");
  const ss = (s: Record<string, unknown>) =>
    s.scaleShift as Record<string, Record<string, Record<string, unknown>>>;
  bad((s) => ss(s)["up_blocks.1.attentions.0"] = {}, 'scaleShift["up_blocks.1.attentions.0"]');
  bad(
    (s) => ss(s)["mid_block.attentions.0"]["1"] = { scale: [1, 1], shift: [0, 0] },
    'scaleShift["mid_block.attentions.0"]["1"] is a step where the block is recomputed',
  );
  bad(
    (s) => ss(s)["mid_block.attentions.0"]["07"] = { scale: [1, 1], shift: [0, 0] },
    'scaleShift["mid_block.attentions.0"]["07"] step',
  );
  bad(
    (s) => ss(s)["mid_block.attentions.0"]["2"].shift = [0],
    'scaleShift["mid_block.attentions.0"]["2"].shift has 1 channels, expected 2',
  );
  bad(
    (s) => ss(s)["mid_block.attentions.0"]["2"].scale = [1, NaN],
    'scaleShift["mid_block.attentions.0"]["2"].scale[1] must be a finite number',
  );
  bad(
    (s) => ss(s)["down_blocks.0.attentions.0"]["1"].previous = [0, 0],
    'scaleShift["down_blocks.0.attentions.0"]["1"].previous needs two computations',
  );
  bad(
    (s) => ss(s)["down_blocks.0.attentions.0"]["3"].previous = [0],
    'scaleShift["down_blocks.0.attentions.0"]["3"].previous has 1 channels, expected 2',
  );
  bad((s) => s.measured = [1], "measured");
  assertThrows(() => parseSchedule("{not json", "y.json"), "y.json: not valid JSON");
  assertThrows(() => parseSchedule("[]", "y.json"), "y.json: not a JSON object");
});

Deno.test("serialize refuses an invalid schedule", () => {
  const s = sample();
  s.recompute[0][0] = false;
  assertThrows(() => serializeSchedule(s), "recompute[0][0] must be true");
});

Deno.test("checkScheduleFits gives clear messages", () => {
  const s = sample();
  s.steps = 20;
  s.recompute = Array.from({ length: 20 }, () => [true, true]);
  s.skippedFraction = 0;
  delete s.scaleShift;
  validateSchedule(s);
  const req = { solver: "ddim" as const, steps: 20, blocks: BLOCKS, mode: "residual" as const };
  checkScheduleFits(s, req);
  assertThrows(
    () => checkScheduleFits(s, { ...req, steps: 25 }),
    "schedule ddim-20-delta-0.50 is for 20 steps, the request has 25",
  );
  assertThrows(
    () => checkScheduleFits(s, { ...req, solver: "dpm" }),
    "schedule ddim-20-delta-0.50 is for solver ddim, the request uses dpm",
  );
  assertThrows(() => checkScheduleFits(s, { ...req, mode: "output" }), "caches block residuals");
  assertThrows(() => checkScheduleFits(s, { ...req, model: "other" }), "is for model emoji-ldm");
  assertThrows(
    () => checkScheduleFits(s, { ...req, blocks: [BLOCKS[0]] }),
    "lists block(s) mid_block.attentions.0 that the model's split does not have",
  );
  assertThrows(
    () => checkScheduleFits(s, { ...req, blocks: [...BLOCKS, "up_blocks.1.attentions.0"] }),
    "has no column for block(s) up_blocks.1.attentions.0",
  );
  assertThrows(
    () => checkScheduleFits(s, { ...req, blocks: [BLOCKS[1], BLOCKS[0]] }),
    "another order",
  );
});

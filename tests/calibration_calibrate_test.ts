import { assert, assertEquals } from "./_assert.ts";
import { fitScaleShift, makeSchedule, measureChange } from "../lib/calibration/calibrate.ts";
import { validateSchedule } from "../lib/cache/schedule.ts";
import { Pipeline } from "../lib/pipeline/pipeline.ts";

const MODEL = new URL("../models/emoji-ldm", import.meta.url).pathname;
const pipeline = await Pipeline.load(MODEL, { backend: "wasm", log: () => {} });
const SET = {
  prompts: ["google red apple", "twitter dog face"],
  seeds: [0],
  solver: "ddim" as const,
  steps: 4,
  guidanceScale: 4,
};

Deno.test("calibration: change curves have one row per block, step 0 = 1, finite positive", async () => {
  const curves = await measureChange(pipeline, SET);
  assertEquals(curves.length, pipeline.unet.blocks.length);
  for (const row of curves) {
    assertEquals(row.length, 4);
    assertEquals(row[0], 1);
    for (const v of row.slice(1)) assert(Number.isFinite(v) && v > 0, `L1_rel ${v}`);
  }
  // deterministic: the same set gives the same curves
  assertEquals(await measureChange(pipeline, SET), curves);
});

Deno.test("calibration: scale-shift is fitted exactly at reuse steps and lowers the error", async () => {
  const blocks = pipeline.unet.blocks;
  const s = makeSchedule("emoji-ldm", "ddim", 4, blocks, "residual", { every: 2 });
  for (const form of ["paper", "history"] as const) {
    const fit = await fitScaleShift(pipeline, s, SET, form);
    for (const b of blocks) {
      assertEquals(Object.keys(fit.table[b]).sort(), ["1", "3"]);
      // step 1 follows one computation (step 0); step 3 follows two (0 and 2)
      assertEquals(fit.table[b]["1"].previous, undefined);
      assertEquals(fit.table[b]["3"].previous !== undefined, form === "history");
    }
    assert(fit.mseAfter <= fit.mseBefore, `${form}: ${fit.mseAfter} > ${fit.mseBefore}`);
    validateSchedule({ ...s, scaleShift: fit.table }); // the table is a valid schedule field
  }
});

Deno.test("calibration: Eq. 7 schedules from measured curves skip more as delta grows", async () => {
  const curves = await measureChange(pipeline, SET);
  const blocks = pipeline.unet.blocks;
  const fractions = [0, 0.2, 5].map((delta) =>
    makeSchedule("emoji-ldm", "ddim", 4, blocks, "residual", { delta, curves }).skippedFraction
  );
  assertEquals(fractions[0], 0);
  assert(fractions[1] <= fractions[2]);
  assertEquals(fractions[2], 3 / 4); // a huge delta reuses every block after step 0
});

/** Per-size segment means: kept apart per latent size and batch, first run left out, skipped blocks ignored. */
import { assertEquals } from "./_assert.ts";
import { SizeTimings } from "../lib/pipeline/size_timings.ts";
import type { SegmentTiming } from "../lib/unet/engine.ts";

const run = (ms: number[], skipped: boolean[] = []): SegmentTiming[] =>
  ms.map((lastMs, i) => ({
    name: `s${i}`,
    kind: i % 2 ? "block" : "glue",
    lastMs,
    runs: 1,
    skipped: skipped[i] ?? false,
  }));
const KINDS: ("glue" | "block")[] = ["glue", "block", "glue"];

Deno.test("SizeTimings: means per size, the first run left out, reused blocks not counted", () => {
  const t = new SizeTimings();
  const small = { height: 8, width: 8 }, big = { height: 16, width: 8 };
  t.record(small, 2, run([10, 20, 30]));
  assertEquals(t.expectedMs(small, 2, KINDS), 60, "one run: its own figures");
  t.record(small, 2, run([1, 2, 3]));
  t.record(small, 2, run([3, 99, 5], [false, true, false]));
  // glue: runs 2 and 3 (first left out): 2 and 4; the block ran twice: its second run, 2
  assertEquals(t.expectedMs(small, 2, KINDS), 2 + 2 + 4);
  assertEquals(t.expectedMs(small, 2, KINDS, () => false), 2 + 4);
  assertEquals(t.expectedMs(big, 2, KINDS), undefined, "nothing measured at 16x8 yet");
  t.record(big, 2, run([40, 80, 120], [false, true, false]));
  assertEquals(t.expectedMs(big, 2, KINDS), undefined, "its block has not run at 16x8");
  assertEquals(t.expectedMs(big, 2, KINDS, () => false), 160);
  assertEquals(t.expectedMs(small, 1, KINDS), undefined, "batch 1 is measured apart");
  assertEquals(t.sizes(), ["8x8x2", "16x8x2"]);
});

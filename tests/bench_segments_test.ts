import { assert, assertEquals, assertThrows } from "./_assert.ts";
import {
  benchSegments,
  formatSegmentBench,
  segmentBenchOptions,
  summarizeSegments,
} from "../bench/segments.ts";
import { splitModel } from "../lib/onnx/split.ts";

const FIXTURE = new URL("./fixtures/tiny_unet.onnx", import.meta.url).pathname;

Deno.test("segments: medians, fastest runs and the blocks' share from per-run latencies", () => {
  const segs = [
    { name: "glue_00", kind: "glue" as const },
    { name: "down_blocks.0.attentions.0", kind: "block" as const },
    { name: "glue_01", kind: "glue" as const },
  ];
  // medians 2, 6, 2 (share 0.6); fastest runs 1, 5, 1 (share 5/7)
  const s = summarizeSegments(segs, [[1, 6, 2], [2, 5, 9], [3, 7, 1]]);
  assertEquals(s.rows.map((r) => r.medianMs), [2, 6, 2]);
  assertEquals(s.rows.map((r) => r.minMs), [1, 5, 1]);
  assertEquals(s.rows.map((r) => r.share), [0.2, 0.6, 0.2]);
  assertEquals([s.blockMs, s.glueMs, s.blockShare], [6, 4, 0.6]);
  assertEquals(s.blockShareFastest, 5 / 7);
  assertThrows(() => summarizeSegments(segs, []), "no runs");
  assertThrows(() => summarizeSegments(segs, [[1, 2]]), "2 latencies, 3 segments");
});

Deno.test("segments: a real split UNet, measured against a reference in the same process", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bench-segments-" });
  try {
    await splitModel(FIXTURE, { out: `${dir}/split` });
    const r = await benchSegments({
      split: `${dir}/split`,
      reference: `${dir}/split`,
      reps: 3,
      warmup: 1,
      steps: 10,
    });
    assertEquals(r.segments.length, 15);
    assertEquals(r.segments.filter((s) => s.kind === "block").length, 7);
    assert(r.blockShare > 0 && r.blockShare < 1, `share ${r.blockShare}`);
    assert(r.evaluationMs > 0 && r.evaluationCpuMs > 0);
    assertEquals(r.imageUnetMs, 10 * r.evaluationMs);
    assert(r.reference !== undefined && r.reference.cpuRatio > 0);
    const text = formatSegmentBench(r);
    assert(text.includes("blocks' share") && text.includes("CPU ratio"), text);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("segments: bad flags name the flag", () => {
  assertThrows(() => segmentBenchOptions([]), "--split is required");
  assertThrows(() => segmentBenchOptions(["--split", "x", "--reps", "0"]), "--reps must be");
  assertThrows(() => segmentBenchOptions(["--split", "x", "--backend", "auto"]), "--backend");
  assertThrows(() => segmentBenchOptions(["--split", "x", "--bogus", "1"]), "unknown flag");
  const o = segmentBenchOptions(["--split", "d", "--reference", "r", "--reps", "4", "--json"]);
  assertEquals([o.split, o.reference, o.reps, o.json], ["d", "r", 4, true]);
});

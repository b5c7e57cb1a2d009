import { assertClose, assertEquals, assertThrows } from "./_assert.ts";
import { ChangeAccumulator, l1Rel, STEP0_CHANGE } from "../lib/calibration/change.ts";

Deno.test("l1Rel is ||cur − prev||₁ / ||cur||₁", () => {
  // diff = 1 + 0 + 2 = 3, norm = 1 + 2 + 3 = 6
  assertEquals(l1Rel([1, -2, 3], [0, -2, 1]), 0.5);
  // a slice: only [offset, offset+length)
  assertEquals(l1Rel([9, 1, -2, 3, 9], [0, 0, -2, 1, 0], 1, 3), 0.5);
  assertEquals(l1Rel([0, 0], [0, 0]), 0);
  assertEquals(l1Rel([0, 0], [1, 0]), 1);
  assertThrows(() => l1Rel([1, 2], [1]), "differ in length");
  assertThrows(() => l1Rel([1, NaN], [1, 2]), "NaN");
});

Deno.test("accumulator averages per-item L1_rel over batches and runs", () => {
  const acc = new ChangeAccumulator(["a", "b"], 3);
  // Run 1: a batch of 2 items, 2 values each.
  const a0 = new Float32Array([1, 1, 2, 2]);
  const a1 = new Float32Array([1, 3, 2, 2]); // item0: |0|+|2| / 4 = 0.5; item1: 0
  const a2 = new Float32Array([2, 2, 4, 0]); // item0: (1+1)/4 = 0.5; item1: (2+2)/4 = 1
  acc.add("a", 0, a0, 2);
  acc.add("a", 1, a1, 2);
  acc.add("a", 2, a2, 2);
  acc.add("b", 0, new Float32Array([1, 1, 1, 1]), 2);
  acc.add("b", 1, new Float32Array([1, 1, 1, 1]), 2);
  acc.add("b", 2, new Float32Array([2, 2, 2, 2]), 2); // 0.5 for both
  // Run 2: one item.
  acc.add("a", 0, new Float32Array([1, 0]));
  acc.add("a", 1, new Float32Array([1, 1])); // 1/2
  acc.add("a", 2, new Float32Array([-1, 1])); // 2/2 = 1
  acc.add("b", 0, new Float32Array([4, 4]));
  acc.add("b", 1, new Float32Array([2, 2])); // 4/4 = 1
  acc.add("b", 2, new Float32Array([2, 2])); // 0
  const c = acc.curves();
  assertEquals(c[0][0], STEP0_CHANGE);
  assertClose(c[0][1], (0.5 + 0 + 0.5) / 3, 1e-12);
  assertClose(c[0][2], (0.5 + 1 + 1) / 3, 1e-12);
  assertClose(c[1][1], (0 + 0 + 1) / 3, 1e-12);
  assertClose(c[1][2], (0.5 + 0.5 + 0) / 3, 1e-12);
  const s = acc.summary();
  assertEquals(s.count[0], [3, 3, 3]);
  // std of {0, 0, 1}: mean 1/3, population std sqrt(2)/3
  assertClose(s.std[1][1], Math.sqrt(2) / 3, 1e-12);
  assertEquals(s.blocks, ["a", "b"]);
});

Deno.test("accumulator copies the previous value (caller may reuse its buffer)", () => {
  const acc = new ChangeAccumulator(["a"], 2);
  const buf = new Float32Array([1, 1]);
  acc.add("a", 0, buf);
  buf.set([2, 2]); // same buffer, new contents
  acc.add("a", 1, buf);
  assertEquals(acc.curves()[0][1], 0.5);
});

Deno.test("accumulator accepts float16 and float64 values", () => {
  const acc = new ChangeAccumulator(["a"], 2);
  acc.add("a", 0, new Float16Array([1, 2]));
  acc.add("a", 1, new Float64Array([1, 4]));
  assertClose(acc.curves()[0][1], 2 / 5, 1e-12);
});

Deno.test("accumulator rejects misuse with clear errors", () => {
  const acc = new ChangeAccumulator(["a"], 3);
  assertThrows(() => acc.add("z", 0, new Float32Array(2)), 'unknown block "z"');
  assertThrows(() => acc.add("a", 3, new Float32Array(2)), "step 3 is outside [0, 2]");
  assertThrows(() => acc.add("a", 1, new Float32Array(2)), "got step 1 after no step");
  assertThrows(() => acc.add("a", 0, new Float32Array(3), 2), "do not split into 2");
  acc.add("a", 0, new Float32Array([1, 2]));
  assertThrows(() => acc.add("a", 2, new Float32Array([1, 2])), "got step 2 after step 0");
  assertThrows(() => acc.add("a", 1, new Float32Array([1, 2, 3, 4])), "had 2 in 1");
  assertThrows(
    () => acc.add("a", 1, new Float32Array([1, NaN])),
    "item 0: l1Rel: value contains NaN",
  );
  assertThrows(() => acc.curves(), "no change recorded for block a at step 1");
  assertThrows(() => new ChangeAccumulator(["a", "a"], 3), "repeat");
  assertThrows(() => new ChangeAccumulator(["a"], 0), "steps");
});

Deno.test("an interrupted run can restart at step 0", () => {
  const acc = new ChangeAccumulator(["a"], 2);
  acc.add("a", 0, new Float32Array([5, 5]));
  acc.add("a", 0, new Float32Array([1, 1]));
  acc.add("a", 1, new Float32Array([1, 3]));
  assertEquals(acc.curves()[0][1], 0.5);
  assertEquals(acc.summary().count[0], [2, 1]);
});

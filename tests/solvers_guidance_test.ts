import assert from "node:assert/strict";
import { applyGuidance } from "../lib/solvers/guidance.ts";
import { assertClose } from "./fixtures/solver_reference.ts";

Deno.test("guidance: uncond + scale·(cond − uncond) over a [uncond, cond] batch", () => {
  const out = new Float32Array([1, 2, -1, /* cond */ 3, 2, 1]);
  assertClose(applyGuidance(out, 7.5), [1 + 7.5 * 2, 2, -1 + 7.5 * 2], 1e-7, "7.5");
  assert.deepEqual(applyGuidance(out, 1), new Float32Array([3, 2, 1])); // scale 1: cond
  assert.deepEqual(applyGuidance(out, 0), new Float32Array([1, 2, -1])); // scale 0: uncond
});

Deno.test("guidance rejects an odd batch and a non-finite scale", () => {
  assert.throws(() => applyGuidance(new Float32Array(3), 2), {
    name: "RangeError",
    message: /batch of 2/,
  });
  assert.throws(() => applyGuidance(new Float32Array(2), NaN), {
    name: "RangeError",
    message: /scale/,
  });
});

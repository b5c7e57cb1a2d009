import assert from "node:assert/strict";
import { gaussianNoise, Pcg32 } from "../lib/solvers/noise.ts";
import { assertClose, REFERENCE } from "./fixtures/solver_reference.ts";

Deno.test("PCG32 reproduces pcg-c's published demo vector (initstate 42, initseq 54)", () => {
  const rng = new Pcg32(42, 54);
  const got = Array.from({ length: 6 }, () => rng.nextUint32());
  assert.deepEqual(got, [0xa15c02b7, 0x7b47f409, 0xba1d3330, 0x83d2f293, 0xbfa4784b, 0xcbed606e]);
});

Deno.test("PCG32 and Box–Muller agree with the independent Python implementation", () => {
  const rng = new Pcg32(0);
  assert.deepEqual(
    Array.from({ length: 8 }, () => rng.nextUint32()),
    REFERENCE.pcg32.seed0_stream54,
  );
  for (const [seed, values] of Object.entries(REFERENCE.noise)) {
    // float64 Python values rounded to float32: equal to within float32 precision.
    assertClose(gaussianNoise(Number(seed), values.length), values, 1e-6, `seed ${seed}`);
  }
});

Deno.test("gaussianNoise: fixed first values, deterministic, odd lengths are prefixes", () => {
  // Hard-coded from the Python reference (solver_reference.json, seed 0) as float32.
  assert.deepEqual(
    Array.from(gaussianNoise(0, 4)),
    [-0.25103527307510376, -1.5750185251235962, 1.1098575592041016, -0.4450676143169403],
  );
  assert.deepEqual(gaussianNoise(1234, 1000), gaussianNoise(1234, 1000));
  assert.deepEqual(gaussianNoise(5, 7), gaussianNoise(5, 8).subarray(0, 7));
  assert.equal(gaussianNoise(5, 0).length, 0);
});

Deno.test("gaussianNoise: mean ≈ 0 and std ≈ 1 over 1e5 samples; seeds differ", () => {
  const n = 100_000;
  const z = gaussianNoise(2024, n);
  let sum = 0, sq = 0;
  for (const v of z) {
    sum += v;
    sq += v * v;
  }
  const mean = sum / n, std = Math.sqrt(sq / n - mean * mean);
  // Standard errors: mean 1/√n ≈ 0.0032, std ≈ 0.0022; bounds are ~5 standard errors.
  assert.ok(Math.abs(mean) < 0.016, `mean ${mean}`);
  assert.ok(Math.abs(std - 1) < 0.011, `std ${std}`);
  const a = gaussianNoise(0, 64), b = gaussianNoise(1, 64);
  assert.ok(a.some((v, i) => v !== b[i]));
  assert.notDeepEqual(gaussianNoise(4294967295, 8), gaussianNoise(0, 8));
});

Deno.test("seeds must be integers 0..2^32−1", () => {
  for (const bad of [-1, 1.5, 2 ** 32, NaN, Infinity]) {
    assert.throws(() => gaussianNoise(bad, 4), { name: "RangeError", message: /seed/ });
  }
  assert.throws(() => gaussianNoise(1, -1), { name: "RangeError", message: /length/ });
});

import { assert, assertClose, assertEquals, assertThrows } from "./_assert.ts";
import {
  deltaForSkippedFraction,
  deriveSchedule,
  skippedFractionForSpeedup,
  uniformSchedule,
  weightedSkippedFraction,
} from "../lib/calibration/derive.ts";
import { skippedFraction } from "../lib/cache/schedule.ts";
import { mulberry32 } from "../lib/metrics/kid.ts";

// Hand-built curves [block][step] with values exact in binary (multiples of 1/8).
// Step 0 is ignored by the rule (here even Infinity).
const CURVES = [
  /* A */ [Infinity, 0.125, 0.25, 0.125, 0.25, 0.5, 0.125, 0.625],
  /* B */ [1, 0, 0, 0, 0, 0, 0, 0],
  /* C */ [1, 0.75, 0.5, 0.5, 0, 0.25, 0.25, 0],
];
const T = true;
const F = false;

Deno.test("Eq. 7 schedule at delta 0.5 (hand-computed table)", () => {
  // A: sums .125 .375 .5(=δ, reuse) .75(>δ: recompute, restart) .5(=δ reuse) .625(recompute)
  //    .625(recompute)
  // B: never changes: reused after step 0.
  // C: .75 (recompute) | .5 (reuse) 1.0 (recompute) | 0 .25 .5 .5 (reuse ×4)
  const expected = [
    /*      A  B  C */
    /* 0 */ [T, T, T],
    /* 1 */ [F, F, T],
    /* 2 */ [F, F, F],
    /* 3 */ [F, F, T],
    /* 4 */ [T, F, F],
    /* 5 */ [F, F, F],
    /* 6 */ [T, F, F],
    /* 7 */ [T, F, F],
  ];
  assertEquals(deriveSchedule(CURVES, 0.5), expected);
  assertEquals(skippedFraction(expected), 16 / 24);
});

Deno.test("Eq. 7 schedule at delta 0 recomputes every step with any change", () => {
  assertEquals(deriveSchedule(CURVES, 0), [
    [T, T, T],
    [T, F, T],
    [T, F, T],
    [T, F, T],
    [T, F, F],
    [T, F, T],
    [T, F, T],
    [T, F, F],
  ]);
});

Deno.test("Eq. 7 boundary: a sum equal to delta reuses, just above recomputes", () => {
  const c = [[1, 0.25, 0.25, 0.25, 0.25]];
  // delta .5: .25 .5(reuse) .75(recompute) | .25 (reuse)
  assertEquals(deriveSchedule(c, 0.5).map((r) => r[0]), [T, F, F, T, F]);
  // delta just below .5: the second step already exceeds
  assertEquals(deriveSchedule(c, 0.4999999).map((r) => r[0]), [T, F, T, F, T]);
  // a huge delta reuses everything after step 0
  assertEquals(deriveSchedule(c, 100).map((r) => r[0]), [T, F, F, F, F]);
});

Deno.test("deriveSchedule validates its input", () => {
  assertThrows(() => deriveSchedule([], 0.5), "no blocks");
  assertThrows(() => deriveSchedule([[1, 2], [1]], 0.5), "curves[1] has 1 steps");
  assertThrows(() => deriveSchedule([[1, -0.1]], 0.5), "curves[0][1]");
  assertThrows(() => deriveSchedule([[1, NaN]], 0.5), "curves[0][1]");
  assertThrows(() => deriveSchedule([[1, 0.1]], NaN), "delta");
  assertThrows(() => deriveSchedule([[1, 0.1]], -1), "delta");
});

Deno.test("uniform schedule recomputes when step % every == 0", () => {
  assertEquals(uniformSchedule(5, 2, 2), [[T, T], [F, F], [T, T], [F, F], [T, T]]);
  assertEquals(uniformSchedule(3, 1, 1), [[T], [T], [T]]);
  assertThrows(() => uniformSchedule(5, 2, 0), "every");
});

Deno.test("weighted skipped fraction and the speedup helper", () => {
  const r = [[T, T], [F, T], [F, T], [F, F]];
  assertEquals(weightedSkippedFraction(r), 4 / 8);
  // block 0 costs 3, block 1 costs 1: skipped 3+3+3+1 of 4*4
  assertEquals(weightedSkippedFraction(r, [3, 1]), 10 / 16);
  assertThrows(() => weightedSkippedFraction(r, [1]), "weights has 1 entries");
  assertClose(skippedFractionForSpeedup(2, 1), 0.5, 1e-15);
  assertClose(skippedFractionForSpeedup(1.5, 0.8), (1 / 3) / 0.8, 1e-15);
});

Deno.test("deltaForSkippedFraction hits exactly achievable targets", () => {
  const at05 = skippedFraction(deriveSchedule(CURVES, 0.5));
  const got = deltaForSkippedFraction(CURVES, at05);
  assertEquals(got.skippedFraction, at05);
  assertEquals(skippedFraction(deriveSchedule(CURVES, got.delta)), at05);
  assertEquals(got.recompute, deriveSchedule(CURVES, got.delta));
  // Extremes: 0 → delta 0 table; 1 → everything after step 0 reused (21/24).
  assertEquals(deltaForSkippedFraction(CURVES, 0).delta, 0);
  assertEquals(deltaForSkippedFraction(CURVES, 1).skippedFraction, 21 / 24);
});

Deno.test("deltaForSkippedFraction is closest among all achievable fractions", () => {
  const rand = mulberry32(7);
  for (let trial = 0; trial < 20; trial++) {
    const steps = 6 + Math.floor(rand() * 10);
    const curves = Array.from(
      { length: 3 },
      () => Array.from({ length: steps }, () => Math.round(rand() * 100) / 100),
    );
    const weights = [1, 2 + rand(), 0.5];
    // Every schedule change happens at a partial sum of a curve: scan them all.
    const candidates = new Set<number>([0]);
    for (const c of curves) {
      for (let a = 1; a < steps; a++) {
        let s = 0;
        for (let b = a; b < steps; b++) candidates.add(s += c[b]);
      }
    }
    const achievable = [...candidates].map((d) =>
      weightedSkippedFraction(deriveSchedule(curves, d), weights)
    );
    const target = rand();
    const best = Math.min(...achievable.map((f) => Math.abs(f - target)));
    const got = deltaForSkippedFraction(curves, target, { weights });
    assertClose(Math.abs(got.skippedFraction - target), best, 1e-12, `trial ${trial}`);
    assertEquals(
      weightedSkippedFraction(deriveSchedule(curves, got.delta), weights),
      got.skippedFraction,
    );
    assert(String(got.delta).length <= 16);
  }
});

/** Deadline headroom (lib/planning/headroom.ts): a quantile of recent actual/predicted ratios. */
import { assertClose, assertEquals, assertThrows } from "./_assert.ts";
import { DeadlineHeadroom } from "../lib/planning/headroom.ts";

Deno.test("headroom: the prior until enough samples, then the quantile of the ratios", () => {
  const h = new DeadlineHeadroom({ minSamples: 5, quantile: 0.9, prior: 1.2 });
  assertEquals(h.factor(), 1.2);
  // ratios 1.0, 1.1, …, 1.9 (10 samples): the 0.9 quantile interpolates 1.8 and 1.9 at 0.1.
  for (let i = 0; i < 10; i++) h.observe(100, 100 + 10 * i);
  assertEquals(h.samples, 10);
  assertClose(h.factor(), 1.81, 1e-9);
});

Deno.test("headroom: clamped to [min, max]; never below the prediction", () => {
  const fast = new DeadlineHeadroom({ minSamples: 1 });
  for (let i = 0; i < 4; i++) fast.observe(100, 50);
  assertEquals(fast.factor(), 1);
  const slow = new DeadlineHeadroom({ minSamples: 1, max: 2 });
  slow.observe(100, 900);
  assertEquals(slow.factor(), 2);
});

Deno.test("headroom: the window keeps the newest ratios; unusable pairs are ignored", () => {
  const h = new DeadlineHeadroom({ window: 3, minSamples: 3, quantile: 1 });
  h.observe(100, 300); // falls out of the window below
  for (const actual of [110, 120, 130]) h.observe(100, actual);
  assertClose(h.factor(), 1.3, 1e-9);
  h.observe(0, 100);
  h.observe(100, Number.NaN);
  h.observe(100, -1);
  assertEquals(h.samples, 3);
});

Deno.test("headroom: bad settings throw RangeError", () => {
  assertThrows(() => new DeadlineHeadroom({ quantile: 1.5 }), "quantile");
  assertThrows(() => new DeadlineHeadroom({ window: 0 }), "window");
  assertThrows(() => new DeadlineHeadroom({ min: 2, max: 1 }), "min <= max");
});

import { assert, assertClose, assertEquals, assertThrows } from "./_assert.ts";
import { gaussianWindow1d, ssim } from "../lib/metrics/ssim.ts";
import type { Image8 } from "../lib/metrics/image8.ts";

import { REF, refImages } from "./fixtures/metrics_images.ts";

function flat(w: number, h: number, v: number): Image8 {
  return { width: w, height: h, channels: 3, data: new Uint8Array(w * h * 3).fill(v) };
}

Deno.test("Gaussian window sums to 1 and is symmetric", () => {
  const g = gaussianWindow1d();
  assertEquals(g.length, 11);
  assertClose(g.reduce((a, b) => a + b, 0), 1, 1e-15);
  assertClose(g[0], g[10], 0);
  assert(g[5] > g[4]);
});

Deno.test("SSIM of identical images is 1", () => {
  const [a] = refImages();
  assertClose(ssim(a, a), 1, 1e-12);
});

Deno.test("SSIM of two flat images by hand: (2·μx·μy + C1) / (μx² + μy² + C1)", () => {
  const c1 = (0.01 * 255) ** 2;
  const expected = (2 * 100 * 110 + c1) / (100 * 100 + 110 * 110 + c1);
  assertClose(ssim(flat(12, 11, 100), flat(12, 11, 110)), expected, 1e-12);
});

Deno.test("SSIM matches an independent numpy computation (fixture)", () => {
  const [a, b] = refImages();
  assertClose(ssim(a, b), REF.ssim, 1e-9);
  assertClose(ssim(b, a), REF.ssim, 1e-9);
});

Deno.test("SSIM rejects images smaller than the window", () => {
  assertThrows(() => ssim(flat(10, 20, 0), flat(10, 20, 0)), "at least 11x11");
});

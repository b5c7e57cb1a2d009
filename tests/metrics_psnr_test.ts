import { assertClose, assertEquals, assertThrows } from "./_assert.ts";
import { mse8, psnr } from "../lib/metrics/psnr.ts";
import type { Image8 } from "../lib/metrics/image8.ts";
import { REF, refImages } from "./fixtures/metrics_images.ts";

function flat(w: number, h: number, rgb: number[], alpha: number, channels: 3 | 4 = 4): Image8 {
  const data = new Uint8Array(w * h * channels);
  for (let p = 0; p < w * h; p++) {
    data.set(rgb, p * channels);
    if (channels === 4) data[p * 4 + 3] = alpha;
  }
  return { width: w, height: h, channels, data };
}

Deno.test("PSNR of a known MSE, alpha ignored", () => {
  // every RGB value differs by 10 → MSE 100; alpha differs wildly and must not count
  const a = flat(4, 3, [100, 50, 200], 255);
  const b = flat(4, 3, [110, 40, 210], 0);
  assertEquals(mse8(a, b), 100);
  assertClose(psnr(a, b), 10 * Math.log10(65025 / 100), 1e-12);
  // RGB vs RGBA of the same colours
  assertClose(psnr(flat(4, 3, [100, 50, 200], 0, 3), b), 10 * Math.log10(65025 / 100), 1e-12);
  assertEquals(psnr(a, flat(4, 3, [100, 50, 200], 7)), Infinity);
});

Deno.test("PSNR matches numpy on the reference images (fixture)", () => {
  const [a, b] = refImages();
  assertClose(mse8(a, b), REF.mse, 1e-9);
  assertClose(psnr(a, b), REF.psnr, 1e-9);
});

Deno.test("PSNR rejects mismatched images", () => {
  assertThrows(() => psnr(flat(4, 3, [0, 0, 0], 0), flat(3, 4, [0, 0, 0], 0)), "differ in size");
  const bad: Image8 = { width: 4, height: 3, channels: 4, data: new Uint8Array(5) };
  assertThrows(() => psnr(bad, bad), "has 5 bytes");
});

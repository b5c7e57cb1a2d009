/**
 * Peak signal-to-noise ratio between two 8-bit images over their RGB channels (alpha ignored):
 * `PSNR = 10·log10(255² / MSE)` in dB; `Infinity` for identical images. A paired measure of how
 * far a cached run's image moved from the uncached one of the same seed — difference, not quality.
 *
 * @module
 */

import { checkImagePair, type Image8 } from "./image8.ts";
import { ssim } from "./ssim.ts";

/** Mean squared error over the RGB values of two same-size 8-bit images. */
export function mse8(a: Image8, b: Image8): number {
  checkImagePair(a, b, "mse");
  const n = a.width * a.height;
  let sum = 0;
  for (let p = 0; p < n; p++) {
    const oa = p * a.channels;
    const ob = p * b.channels;
    for (let c = 0; c < 3; c++) {
      const d = a.data[oa + c] - b.data[ob + c];
      sum += d * d;
    }
  }
  return sum / (3 * n);
}

/** PSNR in dB of two same-size 8-bit RGB(A) images (`Infinity` when identical). */
export function psnr(a: Image8, b: Image8): number {
  const m = mse8(a, b);
  return m === 0 ? Infinity : 10 * Math.log10((255 * 255) / m);
}

/**
 * PSNR and mean SSIM of a set of 8-bit images against a reference set of the same size, paired by
 * index: PSNR (dB) of the mean squared error over the whole set (`Infinity` when identical), SSIM
 * averaged over the pairs.
 */
export function pairedPsnrSsim(
  images: readonly Image8[],
  reference: readonly Image8[],
): { psnr: number; ssim: number } {
  if (images.length !== reference.length || images.length === 0) {
    throw new Error(`pairedPsnrSsim: ${images.length} images against ${reference.length}`);
  }
  let mse = 0, s = 0;
  images.forEach((img, i) => {
    mse += mse8(img, reference[i]);
    s += ssim(img, reference[i]);
  });
  mse /= images.length;
  return { psnr: mse === 0 ? Infinity : 10 * Math.log10(255 * 255 / mse), ssim: s / images.length };
}

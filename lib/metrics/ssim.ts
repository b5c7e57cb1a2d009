/**
 * Structural similarity (Wang et al., 2004) of two 8-bit images: per RGB channel, the mean of the
 * SSIM map computed with an 11×11 Gaussian window (σ = 1.5, normalised to sum 1), K1 = 0.01,
 * K2 = 0.03, L = 255, over "valid" window positions only (no padding, as the reference MATLAB
 * code); the result is the mean over the three channels. Alpha is ignored.
 *
 *     SSIM = ((2μxμy + C1)(2σxy + C2)) / ((μx² + μy² + C1)(σx² + σy² + C2)),  C1 = (K1·L)², C2 = (K2·L)²
 *
 * with μ, σ², σxy the window-weighted means, (biased) variances and covariance.
 *
 * @module
 */

import { checkImagePair, type Image8 } from "./image8.ts";

/** Window size of the Gaussian filter. */
export const SSIM_WINDOW = 11;
const SIGMA = 1.5;
const C1 = (0.01 * 255) ** 2;
const C2 = (0.03 * 255) ** 2;

/** The normalised 1-D Gaussian (the 2-D window is its outer product, which also sums to 1). */
export function gaussianWindow1d(size = SSIM_WINDOW, sigma = SIGMA): Float64Array {
  const g = new Float64Array(size);
  const mid = (size - 1) / 2;
  let sum = 0;
  for (let i = 0; i < size; i++) {
    g[i] = Math.exp(-((i - mid) ** 2) / (2 * sigma * sigma));
    sum += g[i];
  }
  for (let i = 0; i < size; i++) g[i] /= sum;
  return g;
}

/** "Valid" separable filtering of a w×h plane with `g` along both axes. */
function filterValid(src: Float64Array, w: number, h: number, g: Float64Array): Float64Array {
  const k = g.length;
  const ow = w - k + 1;
  const oh = h - k + 1;
  const tmp = new Float64Array(ow * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < ow; x++) {
      let s = 0;
      for (let i = 0; i < k; i++) s += g[i] * src[y * w + x + i];
      tmp[y * ow + x] = s;
    }
  }
  const out = new Float64Array(ow * oh);
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      let s = 0;
      for (let i = 0; i < k; i++) s += g[i] * tmp[(y + i) * ow + x];
      out[y * ow + x] = s;
    }
  }
  return out;
}

/** Mean SSIM of one channel given as float planes of w×h (values 0..255). */
function channelSsim(x: Float64Array, y: Float64Array, w: number, h: number): number {
  const g = gaussianWindow1d();
  const n = w * h;
  const xx = new Float64Array(n);
  const yy = new Float64Array(n);
  const xy = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    xx[i] = x[i] * x[i];
    yy[i] = y[i] * y[i];
    xy[i] = x[i] * y[i];
  }
  const mx = filterValid(x, w, h, g);
  const my = filterValid(y, w, h, g);
  const sxx = filterValid(xx, w, h, g);
  const syy = filterValid(yy, w, h, g);
  const sxy = filterValid(xy, w, h, g);
  let sum = 0;
  for (let i = 0; i < mx.length; i++) {
    const ux = mx[i];
    const uy = my[i];
    const vx = sxx[i] - ux * ux;
    const vy = syy[i] - uy * uy;
    const cxy = sxy[i] - ux * uy;
    sum += ((2 * ux * uy + C1) * (2 * cxy + C2)) / ((ux * ux + uy * uy + C1) * (vx + vy + C2));
  }
  return sum / mx.length;
}

/** Mean SSIM over the RGB channels of two same-size 8-bit images (at least 11×11). */
export function ssim(a: Image8, b: Image8): number {
  checkImagePair(a, b, "ssim");
  const { width: w, height: h } = a;
  if (w < SSIM_WINDOW || h < SSIM_WINDOW) {
    throw new Error(`ssim: images must be at least ${SSIM_WINDOW}x${SSIM_WINDOW}, got ${w}x${h}`);
  }
  let total = 0;
  const x = new Float64Array(w * h);
  const y = new Float64Array(w * h);
  for (let c = 0; c < 3; c++) {
    for (let p = 0; p < w * h; p++) {
      x[p] = a.data[p * a.channels + c];
      y[p] = b.data[p * b.channels + c];
    }
    total += channelSsim(x, y, w, h);
  }
  return total / 3;
}

/**
 * PNG encoding (imagescript's pure-JS encoder: no native addon, no permissions) and conversion of
 * model outputs (NCHW floats in [-1, 1]) to 8-bit RGBA.
 *
 * @module
 */
import { decode, encode } from "imagescript/png";

/** An 8-bit RGBA image. */
export interface RgbaImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** Item `index` of an NCHW float batch in [-1, 1] with 3 channels → RGBA (alpha 255), rounded and clamped. */
export function nchwToRgba(
  data: Float32Array,
  index: number,
  width: number,
  height: number,
): RgbaImage {
  const plane = width * height;
  const base = index * 3 * plane;
  const out = new Uint8Array(plane * 4);
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) {
      const v = Math.round((data[base + c * plane + p] + 1) * 127.5);
      out[p * 4 + c] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
    out[p * 4 + 3] = 255;
  }
  return { width, height, data: out };
}

/** Encodes RGBA as PNG. */
export function encodePng(img: RgbaImage): Uint8Array {
  return encode(img.data, { width: img.width, height: img.height, channels: 4 });
}

/** Nearest-neighbour upscale by an integer factor (previews from a latent-sized image). */
export function upscaleNearest(img: RgbaImage, factor: number): RgbaImage {
  const w = img.width * factor, h = img.height * factor;
  const out = new Uint8Array(w * h * 4);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const src = ((Math.floor(y / factor) * img.width) + Math.floor(x / factor)) * 4;
      out.set(img.data.subarray(src, src + 4), (y * w + x) * 4);
    }
  }
  return { width: w, height: h, data: out };
}

/** The 8-byte PNG signature, for checks. */
export const PNG_SIGNATURE = new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]);

/** Decodes a PNG to 8-bit RGBA (imagescript expands grey, palette and RGB to RGBA). */
export function decodePng(bytes: Uint8Array): RgbaImage {
  const { width, height, buffer } = decode(bytes) as {
    width: number;
    height: number;
    buffer: Uint8Array;
  };
  return { width, height, data: buffer };
}

/**
 * Cheap previews: the predicted clean latent mapped to RGB by a per-model linear map (fit by the
 * recipe by least squares), no VAE decoder run. Costs microseconds for a 16x16 latent.
 *
 * @module
 */
import type { PreviewMap } from "../model/folder.ts";
import { encodePng, type RgbaImage, upscaleNearest } from "./png.ts";

/** Item `index` of an NCHW latent batch → RGBA at latent resolution. */
export function latentToRgba(
  latent: Float32Array,
  index: number,
  channels: number,
  size: number,
  map: PreviewMap,
): RgbaImage {
  const plane = size * size;
  const base = index * channels * plane;
  const out = new Uint8Array(plane * 4);
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) {
      let v = map.bias[c];
      for (let k = 0; k < channels; k++) v += map.weights[c][k] * latent[base + k * plane + p];
      const b = Math.round((v + 1) * 127.5);
      out[p * 4 + c] = b < 0 ? 0 : b > 255 ? 255 : b;
    }
    out[p * 4 + 3] = 255;
  }
  return { width: size, height: size, data: out };
}

/** A preview PNG of a latent, upscaled to the output size. */
export function previewPng(
  latent: Float32Array,
  index: number,
  channels: number,
  size: number,
  imageSize: number,
  map: PreviewMap,
): Uint8Array {
  const small = latentToRgba(latent, index, channels, size, map);
  return encodePng(upscaleNearest(small, Math.max(1, Math.round(imageSize / size))));
}

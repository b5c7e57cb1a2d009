/**
 * Classifier-free guidance (Ho & Salimans, "Classifier-Free Diffusion Guidance", 2022): the UNet
 * runs once on a batch of 2 — the unconditional (empty or negative prompt) half first, then the
 * conditional half — and the two predictions are combined as
 *
 *     out = uncond + scale · (cond − uncond)
 *
 * Works for ε- and v-prediction alike (both are linear in the score). scale = 1 gives `cond`.
 *
 * @module
 */

/**
 * Combines a batch-of-2 model output laid out `[uncond, cond]` (each half `output.length / 2`
 * values) into one guided output of half the length.
 */
export function applyGuidance(output: Float32Array, scale: number): Float32Array {
  if (output.length % 2 !== 0) {
    throw new RangeError(`guidance: expected a batch of 2, got ${output.length} values (odd)`);
  }
  if (!Number.isFinite(scale)) throw new RangeError(`guidance: scale must be finite, got ${scale}`);
  const n = output.length / 2;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = output[i];
    out[i] = u + scale * (output[n + i] - u);
  }
  return out;
}

/**
 * Whether a guidance scale means classifier-free guidance: only above 1, as diffusers decides
 * (`do_classifier_free_guidance = guidance_scale > 1`). At 1 guidance gives `cond` anyway, and
 * below it (SD-Turbo is run with 0) the prompt alone is used: one UNet batch of 1 per image.
 */
export function isGuided(guidanceScale: number): boolean {
  return guidanceScale > 1;
}

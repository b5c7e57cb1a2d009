/**
 * DDIM, deterministic (η = 0) — Song, Meng & Ermon, "Denoising Diffusion Implicit Models", 2021,
 * Eq. 12 with σ_t = 0. With ᾱ_t the current and ᾱ_prev the next (less noisy) point:
 *
 *     epsilon:       ε̂ = model,                 x̂_0 = (x_t − √(1−ᾱ_t)·ε̂) / √ᾱ_t
 *     v_prediction:  ε̂ = √ᾱ_t·v + √(1−ᾱ_t)·x_t,  x̂_0 = √ᾱ_t·x_t − √(1−ᾱ_t)·v
 *     (optional, clip_sample: x̂_0 ← clamp(x̂_0, ±clip_sample_range); ε̂ is not recomputed)
 *     x_prev = √ᾱ_prev · x̂_0 + √(1−ᾱ_prev) · ε̂
 *
 * ᾱ_prev is ᾱ at the next timestep of the schedule; after the last step it is 1 when
 * `set_alpha_to_one` (diffusers' default) or ᾱ_0 otherwise. For "leading" and "trailing" spacing
 * "next timestep of the schedule" is exactly diffusers' `t − ⌊T/N⌋`; for "linspace" spacing (not
 * DDIM's default) diffusers still uses `t − ⌊T/N⌋`, which skips off the grid — here the next grid
 * point is used instead, so the sampler stays consistent with the timesteps the model saw.
 *
 * DDIM works on the VP sample itself: initNoiseSigma = 1 and the model input is unscaled.
 *
 * @module
 */

import { alphasCumprod, type SchedulerConfig, spacedTimesteps } from "./scheduler_config.ts";
import { checkStepArgs, type Solver, type StepResult } from "./solver.ts";

/** Creates a deterministic DDIM sampler for `steps` steps. */
export function createDdimSolver(config: SchedulerConfig, steps: number): Solver {
  const ac = alphasCumprod(config);
  const timesteps = spacedTimesteps(config, steps, "ddim");
  const finalAlpha = (config.set_alpha_to_one ?? true) ? 1 : ac[0];
  const clip = config.clip_sample ?? false;
  const clipRange = config.clip_sample_range ?? 1;
  const vPred = config.prediction_type === "v_prediction";

  return {
    timesteps,
    initNoiseSigma: 1,
    scaleModelInput: (sample) => sample,
    step(modelOutput, stepIndex, sample): StepResult {
      checkStepArgs(steps, stepIndex, modelOutput, sample);
      const aT = ac[timesteps[stepIndex]];
      const aPrev = stepIndex + 1 < steps ? ac[timesteps[stepIndex + 1]] : finalAlpha;
      const sqA = Math.sqrt(aT), sqB = Math.sqrt(1 - aT);
      const sqAPrev = Math.sqrt(aPrev), sqBPrev = Math.sqrt(1 - aPrev);
      const n = sample.length;
      const x0 = new Float32Array(n);
      const prev = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        const x = sample[i], m = modelOutput[i];
        let eps: number, pred: number;
        if (vPred) {
          eps = sqA * m + sqB * x;
          pred = sqA * x - sqB * m;
        } else {
          eps = m;
          pred = (x - sqB * m) / sqA;
        }
        if (clip) pred = Math.min(clipRange, Math.max(-clipRange, pred));
        x0[i] = pred;
        prev[i] = sqAPrev * pred + sqBPrev * eps;
      }
      return { prevSample: prev, predOriginal: x0 };
    },
  };
}

/**
 * Euler (first-order) sampling of the probability-flow ODE in Karras et al.'s variance-exploding
 * form ("Elucidating the Design Space of Diffusion-Based Generative Models", 2022, Algorithm 1 with
 * S_churn = 0), as diffusers' EulerDiscreteScheduler.
 *
 * The sampler's variable is x = x_t / √ᾱ_t = x_0 + σ·ε with σ = √((1−ᾱ_t)/ᾱ_t). The model was
 * trained on the VP sample x_t = x / √(σ²+1), hence the input scaling. With the VP α = 1/√(σ²+1)
 * and σ_vp = σ/√(σ²+1):
 *
 *     model input:   x / √(σ²+1)
 *     epsilon:       x̂_0 = x − σ·ε̂
 *     v_prediction:  x̂_0 = α·x_t − σ_vp·v = x/(σ²+1) − σ/√(σ²+1)·v
 *     derivative:    d = (x − x̂_0) / σ
 *     Euler step:    x_next = x + (σ_next − σ)·d
 *
 * σ at a (possibly fractional, float32) timestep is interpolated linearly between integer
 * timesteps; after the last step σ = 0 (`final_sigmas_type` "zero", default) or σ_0 ("sigma_min").
 * initNoiseSigma is σ_max for "linspace"/"trailing" spacing and √(σ_max²+1) for "leading", as
 * diffusers. Timesteps: EulerDiscreteScheduler's spacing (default "linspace").
 *
 * @module
 */

import {
  alphasCumprod,
  effectiveSpacing,
  type SchedulerConfig,
  sigmaAt,
  spacedTimesteps,
} from "./scheduler_config.ts";
import { checkStepArgs, type Solver, type StepResult } from "./solver.ts";

/** Creates an Euler sampler for `steps` steps. */
export function createEulerSolver(config: SchedulerConfig, steps: number): Solver {
  const ac = alphasCumprod(config);
  const timesteps = spacedTimesteps(config, steps, "euler");
  const sigmas = timesteps.map((t) => sigmaAt(ac, t));
  sigmas.push((config.final_sigmas_type ?? "zero") === "zero" ? 0 : sigmaAt(ac, 0));
  const sigmaMax = Math.max(...sigmas);
  const initNoiseSigma = effectiveSpacing(config, "euler") === "leading"
    ? Math.sqrt(sigmaMax * sigmaMax + 1)
    : sigmaMax;
  const vPred = config.prediction_type === "v_prediction";

  return {
    timesteps,
    initNoiseSigma,
    scaleModelInput(sample, stepIndex) {
      if (!Number.isInteger(stepIndex) || stepIndex < 0 || stepIndex >= steps) {
        throw new RangeError(`stepIndex: expected an integer in 0..${steps - 1}, got ${stepIndex}`);
      }
      const s = 1 / Math.sqrt(sigmas[stepIndex] ** 2 + 1);
      const out = new Float32Array(sample.length);
      for (let i = 0; i < out.length; i++) out[i] = sample[i] * s;
      return out;
    },
    step(modelOutput, stepIndex, sample): StepResult {
      checkStepArgs(steps, stepIndex, modelOutput, sample);
      const s = sigmas[stepIndex], next = sigmas[stepIndex + 1];
      const kx = vPred ? 1 / (s * s + 1) : 1; // x̂_0 = kx·x − km·model
      const km = vPred ? s / Math.sqrt(s * s + 1) : s;
      const dt = next - s;
      const n = sample.length;
      const x0 = new Float32Array(n);
      const prev = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        const x = sample[i];
        const pred = kx * x - km * modelOutput[i];
        x0[i] = pred;
        prev[i] = x + ((x - pred) / s) * dt;
      }
      return { prevSample: prev, predOriginal: x0 };
    },
  };
}

/**
 * DPM-Solver++ 2M: the multistep second-order solver of Lu et al., "DPM-Solver++: Fast Solver for
 * Guided Sampling of Diffusion Probabilistic Models", 2022 (Algorithm 2, data prediction), with the
 * "midpoint" form diffusers uses (`algorithm_type="dpmsolver++"`, `solver_order=2`).
 *
 * Per point of the schedule: α = √ᾱ, σ = √(1−ᾱ), λ = ln(α/σ) (half log-SNR). The model output is
 * first turned into a data prediction D = x̂_0 (see `predictX0`). Stepping from s_0 (current) to t
 * (next), with s_1 the previous point and h = λ_t − λ_{s0}:
 *
 *     first order (= DDIM):  x_t = (σ_t/σ_{s0})·x − α_t·(e^{−h} − 1)·D_0
 *     second order (2M):     r_0 = (λ_{s0} − λ_{s1}) / h
 *                            D_1 = (D_0 − D_{−1}) / r_0
 *                            x_t = (σ_t/σ_{s0})·x − α_t·(e^{−h} − 1)·D_0 − ½·α_t·(e^{−h} − 1)·D_1
 *
 * where D_0 is the data prediction at s_0 and D_{−1} the one at s_1 (the previous step's).
 *
 * Order choice, as diffusers: first order at the first step (no history); first order at the last
 * step when `final_sigmas_type` is "zero" (the default: the step lands on σ = 0, λ = ∞, where the
 * update is exactly x_t = D_0), or when `euler_at_final`, or when `lower_order_final` (default true)
 * and fewer than 15 steps; second order otherwise. With `final_sigmas_type` "sigma_min" the last
 * step lands on ᾱ_0 instead of 0.
 *
 * Timesteps: DPMSolverMultistepScheduler's spacing (default "linspace", see `spacedTimesteps`).
 * initNoiseSigma = 1; the model input is unscaled. Stateful: call `step` for 0, 1, 2, … in order.
 *
 * @module
 */

import { alphasCumprod, type SchedulerConfig, spacedTimesteps } from "./scheduler_config.ts";
import { checkStepArgs, predictX0, type Solver, type StepResult } from "./solver.ts";

/** Creates a DPM-Solver++ 2M sampler for `steps` steps (one per image: it keeps history). */
export function createDpmSolver(config: SchedulerConfig, steps: number): Solver {
  const ac = alphasCumprod(config);
  const timesteps = spacedTimesteps(config, steps, "dpm");
  const finalZero = (config.final_sigmas_type ?? "zero") === "zero";
  // α, σ, λ at each point of the schedule; index `steps` is the point after the last step.
  const alpha: number[] = timesteps.map((t) => Math.sqrt(ac[t]));
  const sigma: number[] = timesteps.map((t) => Math.sqrt(1 - ac[t]));
  alpha.push(finalZero ? 1 : Math.sqrt(ac[0]));
  sigma.push(finalZero ? 0 : Math.sqrt(1 - ac[0]));
  const lambda = alpha.map((a, i) => Math.log(a) - Math.log(sigma[i]));
  const lastFirstOrder = finalZero || (config.euler_at_final ?? false) ||
    ((config.lower_order_final ?? true) && steps < 15);

  let expected = 0;
  let prevD: Float32Array | null = null;

  return {
    timesteps,
    initNoiseSigma: 1,
    scaleModelInput: (sample) => sample,
    step(modelOutput, stepIndex, sample): StepResult {
      checkStepArgs(steps, stepIndex, modelOutput, sample);
      if (stepIndex !== expected) {
        throw new RangeError(
          `DPM-Solver++ is multistep: expected step ${expected}, got ${stepIndex} (make a new solver per image)`,
        );
      }
      const s0 = stepIndex, t = stepIndex + 1;
      const d0 = predictX0(config.prediction_type, modelOutput, sample, alpha[s0], sigma[s0]);
      const n = sample.length;
      const prev = new Float32Array(n);
      const firstOrder = prevD === null || (t === steps && lastFirstOrder);
      if (sigma[t] === 0) {
        // σ_t = 0: σ_t/σ_s0 = 0 and e^{−h} = 0, so the first-order update is x_t = α_t·D_0 = D_0.
        prev.set(d0);
      } else {
        const h = lambda[t] - lambda[s0];
        const ratio = sigma[t] / sigma[s0];
        const c = -alpha[t] * Math.expm1(-h); // −α_t·(e^{−h} − 1)
        if (firstOrder) {
          for (let i = 0; i < n; i++) prev[i] = ratio * sample[i] + c * d0[i];
        } else {
          const r0 = (lambda[s0] - lambda[s0 - 1]) / h;
          const dm1 = prevD as Float32Array;
          for (let i = 0; i < n; i++) {
            const d1 = (d0[i] - dm1[i]) / r0;
            prev[i] = ratio * sample[i] + c * d0[i] + 0.5 * c * d1;
          }
        }
      }
      prevD = d0;
      expected = stepIndex + 1;
      return { prevSample: prev, predOriginal: d0 };
    },
  };
}

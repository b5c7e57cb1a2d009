/**
 * The interface every sampler (DDIM, DPM-Solver++ 2M, Euler) offers the denoising loop, plus the
 * small conversions they share. The loop is the same for all of them:
 *
 *     let x = noise · solver.initNoiseSigma
 *     for i in 0 … steps−1:
 *       out = model(solver.scaleModelInput(x, i), solver.timesteps[i])
 *       x   = solver.step(out, i, x).prevSample
 *     // x is now the clean latent
 *
 * @module
 */

import type { PredictionType } from "./scheduler_config.ts";

/** Solvers by name (`dpm` is DPM-Solver++ 2M, the paper's "DPM"). */
export const SOLVERS = ["ddim", "dpm", "euler"] as const;

/** A solver's name. */
export type SolverName = (typeof SOLVERS)[number];

/** The result of one solver step. */
export interface StepResult {
  /** The sample at the next (less noisy) point of the schedule; the clean sample after the last step. */
  prevSample: Float32Array;
  /** The model's current prediction of the clean sample x_0 (for previews). */
  predOriginal: Float32Array;
}

/** A configured sampler for one generation (DPM-Solver++ keeps history: make one per image). */
export interface Solver {
  /** The timestep to give the model at each step, high noise first. Length = steps. */
  readonly timesteps: readonly number[];
  /** Multiply unit Gaussian noise by this to get the starting sample. */
  readonly initNoiseSigma: number;
  /**
   * The model input for step `stepIndex` (Euler divides by √(σ²+1); DDIM and DPM return `sample`
   * itself). The result may be the same array as `sample`: do not mutate it.
   */
  scaleModelInput(sample: Float32Array, stepIndex: number): Float32Array;
  /** Advances `sample` by one step given the model output at `timesteps[stepIndex]`. */
  step(modelOutput: Float32Array, stepIndex: number, sample: Float32Array): StepResult;
}

/** Throws unless `stepIndex` is a valid index and the arrays have equal, non-zero length. */
export function checkStepArgs(
  steps: number,
  stepIndex: number,
  modelOutput: Float32Array,
  sample: Float32Array,
): void {
  if (!Number.isInteger(stepIndex) || stepIndex < 0 || stepIndex >= steps) {
    throw new RangeError(`stepIndex: expected an integer in 0..${steps - 1}, got ${stepIndex}`);
  }
  if (modelOutput.length !== sample.length) {
    throw new RangeError(
      `modelOutput has ${modelOutput.length} values but sample has ${sample.length}`,
    );
  }
}

/**
 * x_0 from the model output in the VP parameterisation x_t = α·x_0 + σ·ε (α = √ᾱ_t, σ = √(1−ᾱ_t)):
 *
 *     epsilon:       x_0 = (x_t − σ·ε) / α
 *     v_prediction:  x_0 = α·x_t − σ·v          (since v = α·ε − σ·x_0 and α² + σ² = 1)
 */
export function predictX0(
  prediction: PredictionType,
  modelOutput: Float32Array,
  sample: Float32Array,
  alpha: number,
  sigma: number,
): Float32Array {
  const x0 = new Float32Array(sample.length);
  if (prediction === "epsilon") {
    for (let i = 0; i < x0.length; i++) x0[i] = (sample[i] - sigma * modelOutput[i]) / alpha;
  } else {
    for (let i = 0; i < x0.length; i++) x0[i] = alpha * sample[i] - sigma * modelOutput[i];
  }
  return x0;
}

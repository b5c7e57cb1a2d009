/**
 * The discrete noise schedule shared by every solver: beta schedules, ᾱ_t (alphas_cumprod), and the
 * inference timestep spacing rules of diffusers.
 *
 * Notation (DDPM, Ho et al. 2020): a training timestep t ∈ {0 … T−1} has
 *
 *     β_t                       the beta schedule
 *     ᾱ_t = Π_{s≤t} (1 − β_s)   alphas_cumprod, computed in float64
 *     x_t = √ᾱ_t · x_0 + √(1−ᾱ_t) · ε,   ε ~ N(0, I)
 *     v   = √ᾱ_t · ε − √(1−ᾱ_t) · x_0          (v-prediction, Salimans & Ho 2022)
 *     σ_t = √((1−ᾱ_t)/ᾱ_t)                     (the "Karras" sigma used by Euler)
 *
 * Timestep spacing (which training timesteps an N-step sampler visits) follows diffusers' rules
 * (checked against `huggingface/diffusers` main, 2026-08): a model's `scheduler_config.json` may
 * carry `timestep_spacing` and `steps_offset`; when `timestep_spacing` is absent each solver uses
 * its diffusers class default — DDIMScheduler `"leading"`, DPMSolverMultistepScheduler
 * `"linspace"`, EulerDiscreteScheduler `"linspace"`. `steps_offset` defaults to 0 and, as in
 * diffusers, only affects `"leading"`.
 *
 * @module
 */

/** How an N-step sampler picks its training timesteps (diffusers' `timestep_spacing`). */
export type TimestepSpacing = "leading" | "linspace" | "trailing";

import type { SolverName } from "./solver.ts";

/** What the model's output means (diffusers' `prediction_type`). */
export type PredictionType = "epsilon" | "v_prediction";

/** Beta schedules supported (diffusers' `beta_schedule`). */
export type BetaSchedule = "linear" | "scaled_linear";

/**
 * The fields of a diffusers `scheduler_config.json` that the solvers read. Unknown keys of the file
 * are ignored; known keys with values these solvers do not implement are rejected by
 * {@link parseSchedulerConfig}.
 */
export interface SchedulerConfig {
  num_train_timesteps: number;
  beta_schedule: BetaSchedule;
  beta_start: number;
  beta_end: number;
  prediction_type: PredictionType;
  /** Absent: each solver's diffusers default (DDIM "leading", DPM and Euler "linspace"). */
  timestep_spacing?: TimestepSpacing;
  /** Added to "leading" timesteps (Stable Diffusion uses 1). Default 0. */
  steps_offset?: number;
  /** DDIM: ᾱ after the last step is 1 (true, diffusers' default) or ᾱ_0 (false, as SD ships). */
  set_alpha_to_one?: boolean;
  /** DDIM: clamp the predicted x_0 to ±clip_sample_range. Default false here (see the report). */
  clip_sample?: boolean;
  clip_sample_range?: number;
  /** DPM and Euler: the sigma after the last step, 0 ("zero", default) or σ_0 ("sigma_min"). */
  final_sigmas_type?: "zero" | "sigma_min";
  /** DPM: use first order at the last step when fewer than 15 steps (default true). */
  lower_order_final?: boolean;
  /** DPM: always use first order at the last step (default false). */
  euler_at_final?: boolean;
}

/** The default model's schedule (models/emoji-ldm/recipe/train.py `BETAS`, v-prediction). */
export const DEFAULT_SCHEDULER_CONFIG: SchedulerConfig = {
  num_train_timesteps: 1000,
  beta_schedule: "linear",
  beta_start: 0.0001,
  beta_end: 0.02,
  prediction_type: "v_prediction",
};

/** Error for a scheduler config value these solvers cannot honour; names the field. */
export class SchedulerConfigError extends Error {
  constructor(field: string, message: string) {
    super(`scheduler_config.json: ${field}: ${message}`);
    this.name = "SchedulerConfigError";
  }
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/**
 * Validates a parsed `scheduler_config.json` (diffusers format) into a {@link SchedulerConfig}.
 * Missing required fields take diffusers' defaults (1000 steps, linear 1e-4…0.02, epsilon).
 * Options that change the math and are not implemented here (other beta schedules, trained
 * betas, Karras sigmas, zero-SNR rescaling, thresholding, `sample` prediction) throw a
 * {@link SchedulerConfigError} naming the field.
 */
export function parseSchedulerConfig(json: unknown): SchedulerConfig {
  if (!isRecord(json)) throw new SchedulerConfigError("(root)", "expected a JSON object");
  const num = (key: string, def: number, integer = false, min = -Infinity): number => {
    const v = json[key];
    if (v === undefined || v === null) return def;
    if (typeof v !== "number" || !Number.isFinite(v) || (integer && !Number.isInteger(v))) {
      throw new SchedulerConfigError(
        key,
        `expected a ${integer ? "integer" : "number"}, got ${JSON.stringify(v)}`,
      );
    }
    if (v < min) throw new SchedulerConfigError(key, `must be ≥ ${min}, got ${v}`);
    return v;
  };
  const bool = (key: string): boolean | undefined => {
    const v = json[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "boolean") {
      throw new SchedulerConfigError(key, `expected true or false, got ${JSON.stringify(v)}`);
    }
    return v;
  };
  const oneOf = <T extends string>(key: string, allowed: readonly T[]): T | undefined => {
    const v = json[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "string" || !(allowed as readonly string[]).includes(v)) {
      throw new SchedulerConfigError(
        key,
        `expected one of ${allowed.join(", ")}, got ${JSON.stringify(v)}`,
      );
    }
    return v as T;
  };
  const mustNot = (key: string, bad: (v: unknown) => boolean, why: string) => {
    if (json[key] !== undefined && json[key] !== null && bad(json[key])) {
      throw new SchedulerConfigError(key, why);
    }
  };
  mustNot("trained_betas", () => true, "explicit trained betas are not supported");
  mustNot("use_karras_sigmas", (v) => v !== false, "Karras sigmas are not supported");
  mustNot("use_exponential_sigmas", (v) => v !== false, "exponential sigmas are not supported");
  mustNot("use_beta_sigmas", (v) => v !== false, "beta sigmas are not supported");
  mustNot("use_lu_lambdas", (v) => v !== false, "Lu lambdas are not supported");
  mustNot("rescale_betas_zero_snr", (v) => v !== false, "zero-SNR rescaling is not supported");
  mustNot("thresholding", (v) => v !== false, "dynamic thresholding is not supported");
  mustNot(
    "interpolation_type",
    (v) => v !== "linear",
    "only linear sigma interpolation is supported",
  );
  mustNot("timestep_type", (v) => v !== "discrete", "only discrete timesteps are supported");

  const config: SchedulerConfig = {
    num_train_timesteps: num("num_train_timesteps", 1000, true, 2),
    beta_schedule: oneOf("beta_schedule", ["linear", "scaled_linear"] as const) ?? "linear",
    beta_start: num("beta_start", 0.0001, false, 0),
    beta_end: num("beta_end", 0.02, false, 0),
    prediction_type: oneOf("prediction_type", ["epsilon", "v_prediction"] as const) ?? "epsilon",
  };
  if (!(config.beta_start < config.beta_end && config.beta_end < 1)) {
    throw new SchedulerConfigError("beta_end", "need 0 ≤ beta_start < beta_end < 1");
  }
  const spacing = oneOf("timestep_spacing", ["leading", "linspace", "trailing"] as const);
  if (spacing !== undefined) config.timestep_spacing = spacing;
  if (json.steps_offset !== undefined && json.steps_offset !== null) {
    config.steps_offset = num("steps_offset", 0, true, 0);
  }
  const flags = ["set_alpha_to_one", "clip_sample", "lower_order_final", "euler_at_final"] as const;
  for (const key of flags) {
    const v = bool(key);
    if (v !== undefined) config[key] = v;
  }
  if (json.clip_sample_range !== undefined && json.clip_sample_range !== null) {
    config.clip_sample_range = num("clip_sample_range", 1, false, 0);
  }
  const finalSigmas = oneOf("final_sigmas_type", ["zero", "sigma_min"] as const);
  if (finalSigmas !== undefined) config.final_sigmas_type = finalSigmas;
  return config;
}

/** How a diffusers scheduler class is served here. */
export interface SchedulerClassMapping {
  /** The project's solver closest to the class (a request may still ask for any solver). */
  solver: SolverName;
  /** True when the solver is the class's own algorithm; false when it stands in for it. */
  exact: boolean;
}

/**
 * diffusers scheduler classes (`_class_name` of `scheduler_config.json`) whose noise schedule is
 * the discrete DDPM one these solvers implement, and the solver that serves each. PNDM (SD-1.x's
 * shipped default, PLMS) and the other multistep/ancestral samplers are not implemented: the
 * model's noise schedule is sampled with the nearest solver instead.
 */
export const SCHEDULER_CLASSES: Readonly<Record<string, SchedulerClassMapping>> = {
  DDIMScheduler: { solver: "ddim", exact: true },
  DPMSolverMultistepScheduler: { solver: "dpm", exact: true },
  EulerDiscreteScheduler: { solver: "euler", exact: true },
  PNDMScheduler: { solver: "dpm", exact: false },
  DDPMScheduler: { solver: "ddim", exact: false },
  DPMSolverSinglestepScheduler: { solver: "dpm", exact: false },
  UniPCMultistepScheduler: { solver: "dpm", exact: false },
  DEISMultistepScheduler: { solver: "dpm", exact: false },
  LMSDiscreteScheduler: { solver: "euler", exact: false },
  EulerAncestralDiscreteScheduler: { solver: "euler", exact: false },
  HeunDiscreteScheduler: { solver: "euler", exact: false },
  KDPM2DiscreteScheduler: { solver: "euler", exact: false },
  KDPM2AncestralDiscreteScheduler: { solver: "euler", exact: false },
};

/** Scheduler classes for models these solvers cannot sample, with the reason. */
const UNSUPPORTED_CLASSES: Readonly<Record<string, string>> = {
  LCMScheduler: "latent consistency models need LCM's own multi-step consistency sampling",
  TCDScheduler: "trajectory consistency models need TCD's own sampling",
  FlowMatchEulerDiscreteScheduler: "flow-matching models (SD3, Flux) are not DDPM models",
  FlowMatchHeunDiscreteScheduler: "flow-matching models (SD3, Flux) are not DDPM models",
  EDMEulerScheduler: "EDM-parameterised models (continuous sigmas) are not supported",
  EDMDPMSolverMultistepScheduler: "EDM-parameterised models (continuous sigmas) are not supported",
  CMStochasticIterativeScheduler: "consistency models need their own sampling",
  ScoreSdeVeScheduler: "variance-exploding score models are not DDPM models",
  KarrasVeScheduler: "variance-exploding models are not DDPM models",
};

/**
 * Maps `_class_name` to the solver that serves it (a config without one: DPM-Solver++, the
 * project's default). Throws {@link SchedulerConfigError} for classes these solvers cannot sample
 * and for unknown names, listing the supported classes.
 */
export function schedulerClassMapping(className: unknown): SchedulerClassMapping {
  if (className === undefined || className === null) return { solver: "dpm", exact: false };
  if (typeof className !== "string") {
    throw new SchedulerConfigError(
      "_class_name",
      `expected a string, got ${JSON.stringify(className)}`,
    );
  }
  const known = SCHEDULER_CLASSES[className];
  if (known) return known;
  const why = UNSUPPORTED_CLASSES[className];
  throw new SchedulerConfigError(
    "_class_name",
    `${className} is not supported${why ? `: ${why}` : ""}; supported classes (served by ddim, ` +
      `dpm or euler): ${Object.keys(SCHEDULER_CLASSES).join(", ")}`,
  );
}

/**
 * numpy's `linspace(start, stop, num)`: `y_i = i·(stop−start)/(num−1) + start`, last value
 * exactly `stop`. Replicated operation for operation so rounded timesteps agree with diffusers.
 */
export function linspace(start: number, stop: number, num: number): number[] {
  if (num <= 0) return [];
  if (num === 1) return [start];
  const step = (stop - start) / (num - 1);
  const out = new Array<number>(num);
  for (let i = 0; i < num; i++) out[i] = i * step + start;
  out[num - 1] = stop;
  return out;
}

/** numpy's `round` (round half to even), so `499.5 → 500` and `498.5 → 498`. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 ? 2 * Math.round(x / 2) : r;
}

/**
 * Betas in float64: `linear` is `linspace(β_start, β_end, T)`; `scaled_linear` (latent diffusion)
 * is `linspace(√β_start, √β_end, T)²`.
 */
export function betas(config: SchedulerConfig): Float64Array {
  const T = config.num_train_timesteps;
  const out = new Float64Array(T);
  if (config.beta_schedule === "linear") {
    linspace(config.beta_start, config.beta_end, T).forEach((b, i) => (out[i] = b));
  } else {
    linspace(Math.sqrt(config.beta_start), Math.sqrt(config.beta_end), T).forEach((s, i) =>
      out[i] = s * s
    );
  }
  return out;
}

/** ᾱ_t = Π_{s≤t} (1 − β_s), float64, index t = 0 … T−1. */
export function alphasCumprod(config: SchedulerConfig): Float64Array {
  const b = betas(config);
  const out = new Float64Array(b.length);
  let prod = 1;
  for (let t = 0; t < b.length; t++) {
    prod *= 1 - b[t];
    out[t] = prod;
  }
  return out;
}

/** Which diffusers scheduler class's spacing rules to apply (they differ in detail). */
export type SpacingRules = "ddim" | "dpm" | "euler";

/** The spacing a solver uses: the config's `timestep_spacing`, else its diffusers default. */
export function effectiveSpacing(config: SchedulerConfig, rules: SpacingRules): TimestepSpacing {
  return config.timestep_spacing ?? (rules === "ddim" ? "leading" : "linspace");
}

/** Checks an inference step count: an integer in 1 … num_train_timesteps. */
export function validateSteps(steps: number, config: SchedulerConfig): void {
  if (!Number.isInteger(steps) || steps < 1 || steps > config.num_train_timesteps) {
    throw new RangeError(
      `steps: expected an integer in 1..${config.num_train_timesteps}, got ${steps}`,
    );
  }
}

/**
 * The training timesteps an N-step sampler visits, in sampling order (high noise first), by
 * diffusers' rules for each class (T = num_train_timesteps, N = steps, o = steps_offset):
 *
 * DDIM (integers)
 *   linspace:  round(linspace(0, T−1, N)) reversed
 *   leading:   (arange(N) · ⌊T/N⌋) reversed + o
 *   trailing:  round(arange(T, 0, −T/N)) − 1
 * DPM-Solver++ (integers; one extra grid point, the last (lowest) dropped)
 *   linspace:  round(linspace(0, T−1, N+1)) reversed, drop last
 *   leading:   (arange(N+1) · ⌊T/(N+1)⌋) reversed, drop last, + o
 *   trailing:  round(arange(T, 0, −T/N)) − 1
 * Euler (float32 values, may be fractional)
 *   linspace:  linspace(0, T−1, N) reversed, as float32
 *   leading:   (arange(N) · ⌊T/N⌋) reversed + o
 *   trailing:  round(arange(T, 0, −T/N)) − 1
 */
export function spacedTimesteps(
  config: SchedulerConfig,
  steps: number,
  rules: SpacingRules,
): number[] {
  validateSteps(steps, config);
  const T = config.num_train_timesteps;
  const offset = config.steps_offset ?? 0;
  const spacing = effectiveSpacing(config, rules);
  const range = (n: number) => Array.from({ length: n }, (_, i) => i);
  let ts: number[];
  if (spacing === "trailing") {
    // numpy arange(T, 0, -T/N): start + i·step while > 0.
    const step = T / steps;
    ts = [];
    for (let i = 0; T - i * step > 0; i++) ts.push(roundHalfEven(T - i * step) - 1);
  } else if (rules === "dpm") {
    if (spacing === "linspace") {
      ts = linspace(0, T - 1, steps + 1).map(roundHalfEven).reverse().slice(0, steps);
    } else {
      const ratio = Math.floor(T / (steps + 1));
      ts = range(steps + 1).map((i) => i * ratio).reverse().slice(0, steps).map((t) => t + offset);
    }
  } else if (spacing === "linspace") {
    const grid = linspace(0, T - 1, steps).reverse();
    ts = rules === "euler" ? grid.map(Math.fround) : grid.map(roundHalfEven);
  } else {
    const ratio = Math.floor(T / steps);
    ts = range(steps).map((i) => i * ratio).reverse().map((t) => t + offset);
  }
  for (const t of ts) {
    if (!(t >= 0 && t <= T - 1)) {
      throw new SchedulerConfigError(
        "steps_offset",
        `timestep ${t} falls outside 0..${T - 1} for ${steps} steps (${spacing} spacing)`,
      );
    }
  }
  return ts;
}

/**
 * σ_t = √((1−ᾱ_t)/ᾱ_t) at a possibly fractional timestep t, interpolated linearly in σ between the
 * neighbouring integer timesteps (numpy `interp`, as diffusers' Euler does).
 */
export function sigmaAt(alphasCumprod: Float64Array, t: number): number {
  const sigma = (i: number) => Math.sqrt((1 - alphasCumprod[i]) / alphasCumprod[i]);
  const i = Math.floor(t);
  if (i >= alphasCumprod.length - 1) return sigma(alphasCumprod.length - 1);
  if (i < 0) return sigma(0);
  const frac = t - i;
  return frac === 0 ? sigma(i) : sigma(i) + frac * (sigma(i + 1) - sigma(i));
}

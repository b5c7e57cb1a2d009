import assert from "node:assert/strict";
import {
  alphasCumprod,
  betas,
  DEFAULT_SCHEDULER_CONFIG,
  linspace,
  parseSchedulerConfig,
  roundHalfEven,
  SCHEDULER_CLASSES,
  schedulerClassMapping,
  type SchedulerConfig,
  SchedulerConfigError,
  sigmaAt,
  spacedTimesteps,
  type TimestepSpacing,
} from "../lib/solvers/scheduler_config.ts";
import { assertClose, REFERENCE } from "./fixtures/solver_reference.ts";

/** assert.throws validator: a SchedulerConfigError whose message names `field`. */
const configError = (field: string) => (e: unknown) =>
  e instanceof SchedulerConfigError && e.message.includes(field);

const SD: SchedulerConfig = {
  num_train_timesteps: 1000,
  beta_schedule: "scaled_linear",
  beta_start: 0.00085,
  beta_end: 0.012,
  prediction_type: "epsilon",
};

Deno.test("betas: linear and scaled_linear endpoints", () => {
  const lin = betas(DEFAULT_SCHEDULER_CONFIG);
  assertClose([lin[0], lin[999]], [0.0001, 0.02], 1e-15, "linear");
  const sd = betas(SD);
  assertClose([sd[0], sd[999]], [0.00085, 0.012], 1e-15, "scaled_linear");
  // scaled_linear is linear in √β: the midpoint of √β is the mean of the endpoints' √β.
  const mid = (Math.sqrt(0.00085) + Math.sqrt(0.012)) / 2;
  assertClose([Math.sqrt(betas({ ...SD, num_train_timesteps: 3 })[1])], [mid], 1e-15, "mid");
});

Deno.test("alphasCumprod matches the numpy reference (float64)", () => {
  for (
    const [name, cfg] of [["linear", DEFAULT_SCHEDULER_CONFIG], ["scaled_linear", SD]] as const
  ) {
    const ac = alphasCumprod(cfg);
    for (const [t, v] of Object.entries(REFERENCE.alphas_cumprod[name])) {
      assertClose([ac[Number(t)]], [v], 1e-13, `${name} ᾱ_${t}`);
    }
  }
});

Deno.test("numpy helpers: linspace ends exactly, round half to even", () => {
  assert.deepEqual(linspace(0, 999, 21)[20], 999);
  assert.deepEqual(linspace(2, 5, 1), [2]);
  assert.deepEqual([0.5, 1.5, 2.5, 498.5, 499.5, 3.2, 3.7].map(roundHalfEven), [
    0,
    2,
    2,
    498,
    500,
    3,
    4,
  ]);
});

Deno.test("spacedTimesteps equals the numpy rendering of diffusers' rules for every spacing", () => {
  for (const s of REFERENCE.spacing) {
    const cfg: SchedulerConfig = {
      ...DEFAULT_SCHEDULER_CONFIG,
      timestep_spacing: s.spacing as TimestepSpacing,
      steps_offset: s.steps_offset,
    };
    const got = spacedTimesteps(cfg, s.n, s.rules);
    assert.deepEqual(got, s.timesteps, `${s.rules} ${s.spacing} offset ${s.steps_offset} n ${s.n}`);
  }
});

Deno.test("default spacing per solver at 20 and 50 steps (diffusers' published values)", () => {
  const base = DEFAULT_SCHEDULER_CONFIG;
  // DDIMScheduler default "leading": (arange(N) * (1000 // N))[::-1] + steps_offset.
  assert.deepEqual(
    spacedTimesteps(base, 20, "ddim"),
    Array.from({ length: 20 }, (_, i) => 950 - 50 * i),
  );
  assert.deepEqual(
    spacedTimesteps({ ...base, steps_offset: 1 }, 20, "ddim"),
    Array.from({ length: 20 }, (_, i) => 951 - 50 * i),
  );
  assert.deepEqual(
    spacedTimesteps(base, 50, "ddim"),
    Array.from({ length: 50 }, (_, i) => 980 - 20 * i),
  );
  // DPMSolverMultistepScheduler default "linspace": the well-known SD 20-step list.
  assert.deepEqual(spacedTimesteps(base, 20, "dpm"), [
    999,
    949,
    899,
    849,
    799,
    749,
    699,
    649,
    599,
    549,
    500,
    450,
    400,
    350,
    300,
    250,
    200,
    150,
    100,
    50,
  ]);
  const dpm50 = spacedTimesteps(base, 50, "dpm");
  assert.deepEqual([dpm50.length, dpm50[0], dpm50[1], dpm50[25], dpm50[49]], [
    50,
    999,
    979,
    500,
    20,
  ]);
  // steps_offset only affects "leading".
  assert.deepEqual(
    spacedTimesteps({ ...base, steps_offset: 1 }, 20, "dpm"),
    spacedTimesteps(base, 20, "dpm"),
  );
  // EulerDiscreteScheduler default "linspace": float32 values of linspace(0, 999, N) reversed.
  const e20 = spacedTimesteps(base, 20, "euler");
  assert.deepEqual(
    e20,
    Array.from({ length: 20 }, (_, i) => i === 0 ? 999 : Math.fround((19 - i) * (999 / 19))),
  );
  assert.deepEqual(e20[1], Math.fround(946.4210526315789));
});

Deno.test("a config's timestep_spacing overrides each solver's default", () => {
  const cfg: SchedulerConfig = { ...DEFAULT_SCHEDULER_CONFIG, timestep_spacing: "trailing" };
  for (const rules of ["ddim", "dpm", "euler"] as const) {
    assert.deepEqual(
      spacedTimesteps(cfg, 20, rules),
      Array.from({ length: 20 }, (_, i) => 999 - 50 * i),
    );
  }
});

Deno.test("spacedTimesteps rejects bad step counts and offsets past the end", () => {
  for (const n of [0, -1, 2.5, 1001, NaN]) {
    assert.throws(() => spacedTimesteps(DEFAULT_SCHEDULER_CONFIG, n, "ddim"), {
      name: "RangeError",
      message: /steps/,
    });
  }
  const cfg = { ...DEFAULT_SCHEDULER_CONFIG, steps_offset: 100 };
  assert.throws(() => spacedTimesteps(cfg, 1000, "ddim"), configError("steps_offset"));
});

Deno.test("sigmaAt interpolates σ linearly between integer timesteps", () => {
  const ac = alphasCumprod(DEFAULT_SCHEDULER_CONFIG);
  const s = (t: number) => Math.sqrt((1 - ac[t]) / ac[t]);
  assert.deepEqual(sigmaAt(ac, 10), s(10));
  assertClose([sigmaAt(ac, 10.25)], [0.75 * s(10) + 0.25 * s(11)], 1e-15, "σ(10.25)");
  assert.deepEqual(sigmaAt(ac, 999), s(999));
});

Deno.test("parseSchedulerConfig: diffusers files in, clear errors out", () => {
  // Stable Diffusion 1.5's scheduler_config.json (a PNDM config; unknown keys are ignored).
  const sd = parseSchedulerConfig({
    _class_name: "PNDMScheduler",
    _diffusers_version: "0.6.0",
    beta_end: 0.012,
    beta_schedule: "scaled_linear",
    beta_start: 0.00085,
    num_train_timesteps: 1000,
    set_alpha_to_one: false,
    skip_prk_steps: true,
    steps_offset: 1,
    trained_betas: null,
    clip_sample: false,
  });
  assert.deepEqual(sd, { ...SD, steps_offset: 1, set_alpha_to_one: false, clip_sample: false });
  assert.deepEqual(parseSchedulerConfig({}).prediction_type, "epsilon");
  const bad: [Record<string, unknown>, string][] = [
    [{ beta_schedule: "squaredcos_cap_v2" }, "beta_schedule"],
    [{ prediction_type: "sample" }, "prediction_type"],
    [{ timestep_spacing: "karras" }, "timestep_spacing"],
    [{ num_train_timesteps: 10.5 }, "num_train_timesteps"],
    [{ steps_offset: -1 }, "steps_offset"],
    [{ set_alpha_to_one: "yes" }, "set_alpha_to_one"],
    [{ use_karras_sigmas: true }, "use_karras_sigmas"],
    [{ trained_betas: [0.1, 0.2] }, "trained_betas"],
    [{ thresholding: true }, "thresholding"],
    [{ interpolation_type: "log_linear" }, "interpolation_type"],
    [{ timestep_type: "continuous" }, "timestep_type"],
    [{ beta_start: 0.02, beta_end: 0.01 }, "beta_end"],
  ];
  for (const [json, field] of bad) {
    assert.throws(() => parseSchedulerConfig(json), configError(field));
  }
  assert.throws(() => parseSchedulerConfig([1]), configError("JSON object"));
});

Deno.test("SD-Turbo's EulerDiscreteScheduler config (trailing, interpolation linear) parses", () => {
  const turbo = parseSchedulerConfig({
    _class_name: "EulerDiscreteScheduler",
    _diffusers_version: "0.24.0",
    beta_end: 0.012,
    beta_schedule: "scaled_linear",
    beta_start: 0.00085,
    clip_sample: false,
    interpolation_type: "linear",
    num_train_timesteps: 1000,
    prediction_type: "epsilon",
    sample_max_value: 1.0,
    set_alpha_to_one: false,
    skip_prk_steps: true,
    steps_offset: 1,
    timestep_spacing: "trailing",
    timestep_type: "discrete",
    trained_betas: null,
    use_karras_sigmas: false,
  });
  assert.deepEqual([turbo.timestep_spacing, turbo.steps_offset], ["trailing", 1]);
  assert.deepEqual(spacedTimesteps(turbo, 1, "euler"), [999]);
});

Deno.test("scheduler classes map to the solver that serves them; others are refused by name", () => {
  assert.deepEqual(schedulerClassMapping("DDIMScheduler"), { solver: "ddim", exact: true });
  assert.deepEqual(schedulerClassMapping("EulerDiscreteScheduler"), {
    solver: "euler",
    exact: true,
  });
  assert.deepEqual(schedulerClassMapping("DPMSolverMultistepScheduler"), {
    solver: "dpm",
    exact: true,
  });
  assert.deepEqual(schedulerClassMapping("PNDMScheduler"), { solver: "dpm", exact: false });
  assert.deepEqual(schedulerClassMapping("LMSDiscreteScheduler"), {
    solver: "euler",
    exact: false,
  });
  assert.deepEqual(schedulerClassMapping(undefined), { solver: "dpm", exact: false });
  assert.throws(
    () => schedulerClassMapping("LCMScheduler"),
    (e: unknown) =>
      e instanceof SchedulerConfigError && e.message.includes("latent consistency") &&
      e.message.includes("PNDMScheduler"),
  );
  assert.throws(
    () => schedulerClassMapping("FlowMatchEulerDiscreteScheduler"),
    configError("flow-matching"),
  );
  assert.throws(
    () => schedulerClassMapping("MyScheduler"),
    configError("MyScheduler is not supported"),
  );
  assert.throws(() => schedulerClassMapping(3), configError("_class_name"));
  assert.ok(Object.keys(SCHEDULER_CLASSES).length >= 10);
});

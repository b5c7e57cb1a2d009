import assert from "node:assert/strict";
import { createEulerSolver } from "../lib/solvers/euler.ts";
import { alphasCumprod, DEFAULT_SCHEDULER_CONFIG } from "../lib/solvers/scheduler_config.ts";
import { assertClose, REFERENCE, replayCase } from "./fixtures/solver_reference.ts";

Deno.test("Euler matches the independent numpy reference step by step (incl. model input)", () => {
  const cases = REFERENCE.cases.filter((c) => c.solver === "euler");
  assert.ok(cases.length >= 4);
  for (const c of cases) replayCase(c, createEulerSolver);
});

Deno.test("Euler: initNoiseSigma is σ_max (linspace) or √(σ_max²+1) (leading)", () => {
  const ac = alphasCumprod(DEFAULT_SCHEDULER_CONFIG);
  const sMax = Math.sqrt((1 - ac[999]) / ac[999]);
  assertClose(
    [createEulerSolver(DEFAULT_SCHEDULER_CONFIG, 20).initNoiseSigma],
    [sMax],
    1e-12,
    "linspace",
  );
  const lead = createEulerSolver({ ...DEFAULT_SCHEDULER_CONFIG, timestep_spacing: "leading" }, 20);
  const s950 = Math.sqrt((1 - ac[950]) / ac[950]);
  assertClose([lead.initNoiseSigma], [Math.sqrt(s950 * s950 + 1)], 1e-12, "leading");
});

Deno.test("Euler v-prediction: x̂_0 from the VP relations, scaled input is the VP sample", () => {
  const cfg = DEFAULT_SCHEDULER_CONFIG; // v_prediction
  const ac = alphasCumprod(cfg);
  const s = createEulerSolver({ ...cfg, timestep_spacing: "trailing" }, 10); // integer timesteps
  const t = s.timesteps[2];
  const a = Math.sqrt(ac[t]), b = Math.sqrt(1 - ac[t]);
  const x0 = [0.4, -0.9], eps = [1.1, 0.2];
  const xVp = x0.map((v, i) => a * v + b * eps[i]);
  const x = Float32Array.from(xVp, (v) => v / a); // the sampler's variable x = x_t / √ᾱ
  assertClose(s.scaleModelInput(x, 2), xVp, 1e-6, "model input");
  const v = Float32Array.from(x0, (v, i) => a * eps[i] - b * v);
  assertClose(s.step(v, 2, x).predOriginal, x0, 1e-5, "x̂_0");
});

Deno.test("Euler's last step lands on x̂_0 (σ = 0)", () => {
  const s = createEulerSolver(DEFAULT_SCHEDULER_CONFIG, 4);
  const x = new Float32Array([0.5, -0.5]);
  const r = s.step(new Float32Array([0.1, 0.2]), 3, x);
  assertClose(r.prevSample, r.predOriginal, 1e-7, "last");
});

/**
 * createSolver, and the convergence check of the issue: on an analytic "model" whose data is
 * x_0 ~ N(m, s²) per element, the exact ε and v are known in closed form, and so is the exact
 * probability-flow ODE solution (it keeps the z-score fixed):
 *
 *     x_t ~ N(α m, α² s² + σ²)
 *     E[x_0 | x_t] = m + α s² (x_t − α m) / (α² s² + σ²),  E[ε | x_t] = σ (x_t − α m) / (α² s² + σ²)
 *     v = α ε − σ x_0,   ODE end point: x_0 = m + s (x_T − α_T m) / √(α_T² s² + σ_T²)
 *
 * DDIM at 500 steps and DPM-Solver++ 2M at 50 steps must both land near that end point (and so
 * near each other); fewer steps must be worse (the check can fail).
 */
import assert from "node:assert/strict";
import type { SolverName } from "../lib/pipeline/types.ts";
import { createSolver } from "../lib/solvers/mod.ts";
import { gaussianNoise } from "../lib/solvers/noise.ts";
import {
  alphasCumprod,
  DEFAULT_SCHEDULER_CONFIG,
  type SchedulerConfig,
  sigmaAt,
} from "../lib/solvers/scheduler_config.ts";

const M = 0.3, S = 0.6;

/** Samples with the exact Gaussian model; returns the result and the exact ODE end point. */
function sample(name: SolverName, cfg: SchedulerConfig, steps: number) {
  const ac = alphasCumprod(cfg);
  const solver = createSolver(name, cfg, steps);
  const alphaSigma = (t: number) => {
    const sig = sigmaAt(ac, t); // ᾱ = 1/(σ²+1), also at Euler's fractional timesteps
    return [1 / Math.sqrt(sig * sig + 1), sig / Math.sqrt(sig * sig + 1)];
  };
  let x: Float32Array = gaussianNoise(7, 256).map((v) => v * solver.initNoiseSigma);
  const [aT, bT] = alphaSigma(solver.timesteps[0]);
  const start = solver.scaleModelInput(x, 0); // the VP sample x_T
  const exact = Array.from(
    start,
    (v) => M + S * (v - aT * M) / Math.sqrt(aT * aT * S * S + bT * bT),
  );
  for (let i = 0; i < steps; i++) {
    const input = solver.scaleModelInput(x, i);
    const [a, b] = alphaSigma(solver.timesteps[i]);
    const varT = a * a * S * S + b * b;
    const out = input.map((xt) => {
      const eps = b * (xt - a * M) / varT;
      const x0 = M + a * S * S * (xt - a * M) / varT;
      return cfg.prediction_type === "epsilon" ? eps : a * eps - b * x0;
    });
    x = solver.step(out, i, x).prevSample;
  }
  return { x, exact };
}

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
};
const err = (name: SolverName, cfg: SchedulerConfig, steps: number) => {
  const r = sample(name, cfg, steps);
  return maxDiff(r.x, r.exact);
};

Deno.test("createSolver builds each solver and rejects unknown names", () => {
  for (const name of ["ddim", "dpm", "euler"] as const) {
    assert.equal(createSolver(name, DEFAULT_SCHEDULER_CONFIG, 20).timesteps.length, 20);
  }
  assert.throws(() => createSolver("heun" as SolverName, DEFAULT_SCHEDULER_CONFIG, 20), {
    name: "RangeError",
    message: /solver/,
  });
});

for (const prediction of ["epsilon", "v_prediction"] as const) {
  Deno.test(`DDIM(500) and DPM-Solver++(50) converge to the exact ODE solution (${prediction})`, () => {
    const cfg: SchedulerConfig = { ...DEFAULT_SCHEDULER_CONFIG, prediction_type: prediction };
    const ddim = sample("ddim", cfg, 500), dpm = sample("dpm", cfg, 50);
    // Measured: DDIM(500) 9.1e-3, DPM(50) 2.9e-3, |DDIM − DPM| 1.2e-2, Euler(500) 9.2e-3 (values O(1)).
    assert.ok(maxDiff(ddim.x, ddim.exact) < 0.015, "DDIM(500) vs exact");
    assert.ok(maxDiff(dpm.x, dpm.exact) < 0.006, "DPM(50) vs exact");
    assert.ok(maxDiff(ddim.x, dpm.x) < 0.02, "DDIM(500) vs DPM(50)");
    // DDIM is first order: halving the step halves the error (measured ratio 1.98).
    const ratio = err("ddim", cfg, 100) / err("ddim", cfg, 200);
    assert.ok(ratio > 1.7 && ratio < 2.3, `DDIM error ratio ${ratio}`);
    // DPM-Solver++ 2M at 50 steps beats DDIM at 200 (higher order), and few steps are worse.
    assert.ok(maxDiff(dpm.x, dpm.exact) < err("ddim", cfg, 200) / 4);
    assert.ok(err("dpm", cfg, 10) > 20 * maxDiff(dpm.x, dpm.exact));
    // Euler (VE form, scaled input) converges to the same point.
    assert.ok(err("euler", cfg, 500) < 0.015, "Euler(500) vs exact");
  });
}

import assert from "node:assert/strict";
import { createDdimSolver } from "../lib/solvers/ddim.ts";
import { alphasCumprod, DEFAULT_SCHEDULER_CONFIG } from "../lib/solvers/scheduler_config.ts";
import { assertClose, REFERENCE, replayCase } from "./fixtures/solver_reference.ts";

Deno.test("DDIM matches the independent numpy reference step by step", () => {
  const cases = REFERENCE.cases.filter((c) => c.solver === "ddim");
  assert.ok(cases.length >= 4);
  for (const c of cases) replayCase(c, createDdimSolver);
});

Deno.test("DDIM one step by hand (epsilon): x_prev = √ᾱ_prev·x̂_0 + √(1−ᾱ_prev)·ε", () => {
  const cfg = { ...DEFAULT_SCHEDULER_CONFIG, prediction_type: "epsilon" as const };
  const ac = alphasCumprod(cfg);
  const solver = createDdimSolver(cfg, 20); // leading: 950, 900, …
  assert.deepEqual(solver.timesteps.slice(0, 2), [950, 900]);
  const x = new Float32Array([1, -2]), eps = new Float32Array([0.5, 0.25]);
  const { prevSample, predOriginal } = solver.step(eps, 0, x);
  const a = ac[950], ap = ac[900];
  const x0 = [0, 1].map((i) => (x[i] - Math.sqrt(1 - a) * eps[i]) / Math.sqrt(a));
  assertClose(predOriginal, x0, 1e-6, "x̂_0");
  assertClose(
    prevSample,
    x0.map((v, i) => Math.sqrt(ap) * v + Math.sqrt(1 - ap) * eps[i]),
    1e-6,
    "x_prev",
  );
});

Deno.test("DDIM v-prediction: a v computed from a known (x_0, ε) recovers both", () => {
  const cfg = DEFAULT_SCHEDULER_CONFIG; // v_prediction
  const ac = alphasCumprod(cfg);
  const solver = createDdimSolver(cfg, 10);
  const t = solver.timesteps[3];
  const a = Math.sqrt(ac[t]), b = Math.sqrt(1 - ac[t]);
  const x0 = [0.4, -0.9, 1.3], eps = [1.1, 0.2, -0.7];
  const xt = Float32Array.from(x0, (v, i) => a * v + b * eps[i]);
  const v = Float32Array.from(x0, (v, i) => a * eps[i] - b * v);
  const { predOriginal } = solver.step(v, 3, xt);
  assertClose(predOriginal, x0, 1e-5, "x̂_0");
});

Deno.test("DDIM final step: ᾱ_prev is 1 by default, ᾱ_0 when set_alpha_to_one is false", () => {
  const cfg = { ...DEFAULT_SCHEDULER_CONFIG, prediction_type: "epsilon" as const };
  const x = new Float32Array([0.3]), eps = new Float32Array([0.1]);
  const last = createDdimSolver(cfg, 5).step(eps, 4, x);
  assert.deepEqual(last.prevSample, last.predOriginal); // √1·x̂_0 + √0·ε
  const ac0 = alphasCumprod(cfg)[0];
  const sd = createDdimSolver({ ...cfg, set_alpha_to_one: false }, 5).step(eps, 4, x);
  assertClose(
    sd.prevSample,
    [Math.sqrt(ac0) * sd.predOriginal[0] + Math.sqrt(1 - ac0) * 0.1],
    1e-6,
    "ᾱ_0",
  );
});

Deno.test("DDIM clip_sample clamps x̂_0 only when the config asks", () => {
  const cfg = { ...DEFAULT_SCHEDULER_CONFIG, prediction_type: "epsilon" as const };
  const x = new Float32Array([5]), eps = new Float32Array([0]);
  assert.ok(createDdimSolver(cfg, 4).step(eps, 3, x).predOriginal[0] > 1);
  const clipped = createDdimSolver({ ...cfg, clip_sample: true, clip_sample_range: 1.5 }, 4);
  assert.equal(clipped.step(eps, 3, x).predOriginal[0], 1.5);
});

Deno.test("DDIM rejects a bad step index or mismatched lengths", () => {
  const s = createDdimSolver(DEFAULT_SCHEDULER_CONFIG, 4);
  const a = new Float32Array(3);
  assert.throws(() => s.step(a, 4, a), { name: "RangeError", message: /stepIndex/ });
  assert.throws(() => s.step(a, 0, new Float32Array(2)), {
    name: "RangeError",
    message: /modelOutput/,
  });
});

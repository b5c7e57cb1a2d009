import assert from "node:assert/strict";
import { createDdimSolver } from "../lib/solvers/ddim.ts";
import { createDpmSolver } from "../lib/solvers/dpm_solver.ts";
import { DEFAULT_SCHEDULER_CONFIG, type SchedulerConfig } from "../lib/solvers/scheduler_config.ts";
import type { Solver, StepResult } from "../lib/solvers/solver.ts";
import { assertClose, fakeModel, REFERENCE, replayCase } from "./fixtures/solver_reference.ts";

Deno.test("DPM-Solver++ 2M matches the independent numpy reference step by step", () => {
  const cases = REFERENCE.cases.filter((c) => c.solver === "dpm");
  // 10 steps (first order at the ends), 20 steps (2M through the second-to-last step),
  // sigma_min at 20 (2M at the last step too) and at 6 (lower_order_final).
  assert.deepEqual(cases.map((c) => c.n).sort((a, b) => a - b), [6, 10, 10, 20, 20, 20]);
  for (const c of cases) replayCase(c, createDpmSolver);
});

/** Runs `make` with the fake model from `x` on the config's own timesteps. */
function runAll(make: () => Solver, x: Float32Array): Float32Array[] {
  const s = make();
  const out: Float32Array[] = [];
  for (let i = 0; i < s.timesteps.length; i++) {
    x = s.step(fakeModel(x, s.timesteps[i]), i, x).prevSample;
    out.push(x);
  }
  return out;
}

Deno.test("DPM-Solver++ first step is first order, i.e. exactly DDIM on the same grid", () => {
  // DPM-Solver++(1) is DDIM (Lu et al. 2022, §3.2): with the same timesteps the first step agrees.
  const cfg: SchedulerConfig = { ...DEFAULT_SCHEDULER_CONFIG, timestep_spacing: "trailing" };
  const x = Float32Array.from(REFERENCE.x);
  const dpm = runAll(() => createDpmSolver(cfg, 8), x);
  const ddim = runAll(() => createDdimSolver(cfg, 8), x);
  assertClose(dpm[0], ddim[0], 1e-5, "step 0");
  // …and the second step differs (2M uses the previous step's x̂_0).
  assert.ok(Math.abs(dpm[1][0] - ddim[1][0]) > 1e-4);
});

Deno.test("DPM-Solver++ with final sigma zero lands exactly on x̂_0", () => {
  const s = createDpmSolver(DEFAULT_SCHEDULER_CONFIG, 3);
  let x: Float32Array = Float32Array.from(REFERENCE.x);
  let last: StepResult = { prevSample: x, predOriginal: x };
  for (let i = 0; i < 3; i++) {
    last = s.step(fakeModel(x, s.timesteps[i]), i, x);
    x = last.prevSample;
  }
  assert.deepEqual(last.prevSample, last.predOriginal);
});

Deno.test("DPM-Solver++ is stateful: steps must come in order", () => {
  const s = createDpmSolver(DEFAULT_SCHEDULER_CONFIG, 5);
  const x = new Float32Array(4);
  assert.throws(() => s.step(x, 1, x), { name: "RangeError", message: /expected step 0/ });
  s.step(x, 0, x);
  assert.throws(() => s.step(x, 0, x), { name: "RangeError", message: /expected step 1/ });
});

/**
 * The solvers' entry point: pick a sampler by name. Pure math on Float32Arrays; no model here.
 *
 * @module
 */

import type { SolverName } from "./solver.ts";
import { createDdimSolver } from "./ddim.ts";
import { createDpmSolver } from "./dpm_solver.ts";
import { createEulerSolver } from "./euler.ts";
import type { SchedulerConfig } from "./scheduler_config.ts";
import type { Solver } from "./solver.ts";

export type { Solver, StepResult } from "./solver.ts";
export type { SchedulerConfig } from "./scheduler_config.ts";

/**
 * Creates a fresh sampler: `ddim` (DDIM, η = 0), `dpm` (DPM-Solver++ 2M), `euler` (Euler
 * discrete). Make one per generation (DPM-Solver++ keeps the previous step's prediction).
 */
export function createSolver(name: SolverName, config: SchedulerConfig, steps: number): Solver {
  switch (name) {
    case "ddim":
      return createDdimSolver(config, steps);
    case "dpm":
      return createDpmSolver(config, steps);
    case "euler":
      return createEulerSolver(config, steps);
    default:
      throw new RangeError(`solver: expected ddim, dpm or euler, got ${JSON.stringify(name)}`);
  }
}

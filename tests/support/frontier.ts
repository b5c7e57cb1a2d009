/**
 * A hand-made frontier file for planner and report tests: the header fields with test values
 * around the given segments and plans (the first plan is the reference).
 *
 * @module
 */
import { type Frontier, FRONTIER_FORMAT, type FrontierPlan } from "../../lib/planning/frontier.ts";
import type { SolverName } from "../../lib/solvers/solver.ts";

/** A valid frontier of model `m` for `solver` holding `plans`. */
export function syntheticFrontier(
  solver: SolverName,
  segments: { name: string; block: boolean }[],
  plans: FrontierPlan[],
): Frontier {
  return {
    format: FRONTIER_FORMAT,
    model: "m",
    solver,
    segments,
    reference: plans[0].id,
    prompts: { count: 8, source: "test", seeds: "prompt index", guidanceScale: 4 },
    floor: { fd: 1, kid: 0 },
    measured: { command: "test", machine: "test", backend: "wasm", date: "2026-11-30" },
    plans,
  };
}

/**
 * The deadline planner: from a request's deadline, the time it already waited and the predicted
 * latency of each candidate plan, pick the best-quality plan that fits, or say at once that none
 * does. Pure functions: predictions come in as a function, time as numbers.
 *
 * Quality order (best first): the requested steps without cache; the requested steps with a
 * shipped schedule (lower measured `fd`, else lower skipped fraction, first); then fewer steps,
 * each again without cache before with. A pinned `steps` or `cache` is respected and only checked.
 *
 * @module
 */
import type { AutoCachePolicy } from "./config.ts";
import type { ModelInfo, PlanSpec, ScheduleInfo, SolverName } from "../pipeline/types.ts";

/** Fewest steps the planner falls back to on its own (unless fewer were requested). */
export const MIN_FALLBACK_STEPS = 4;

/** Fractions of the requested steps tried as fallbacks. */
export const FALLBACK_FRACTIONS = [0.75, 0.5, 0.35, 0.25] as const;

/** What the planner is asked. */
export interface PlanRequest {
  model: ModelInfo;
  solver: SolverName;
  /** The requested step count, or the model's default. */
  steps: number;
  /** True when the request named `steps` itself (no fewer-step fallback then). */
  stepsPinned: boolean;
  /** `auto`, `none` or a shipped schedule name of this model. */
  cache: string;
  n: number;
  /** Classifier-free guidance (guidance scale above 1): doubles the UNet batch. */
  guided: boolean;
  /** Output size in pixels (the model's native size by default). */
  width?: number;
  height?: number;
  /** Preview requests take the fastest candidate. */
  preview: boolean;
  autoCache?: AutoCachePolicy;
  /** Time left for the generation itself: deadline − waited − expected queue wait (Infinity = none). */
  budgetMs: number;
  /** Predicted wall time of a plan in ms. */
  predict: (plan: PlanSpec) => number;
}

/** Why the chosen plan was chosen. */
export type PlanReason =
  | "best quality"
  | "as requested"
  | "cached to fit deadline"
  | "fewer steps to fit deadline"
  | "fastest (preview)";

/** One candidate with its prediction. */
export interface Candidate extends Required<PlanSpec> {
  predictedMs: number;
}

/** The chosen plan. */
export interface ChosenPlan extends Candidate {
  reason: PlanReason;
  /** Its rank in quality order among the candidates (0 = best). */
  rank: number;
  candidates: number;
}

/** The planner's answer. */
export type PlanOutcome =
  | { ok: true; plan: ChosenPlan }
  | { ok: false; fastest: Candidate; budgetMs: number; message: string };

/** Step counts to try, best first: the requested one, then fewer (shipped schedules' and fractions). */
export function fallbackSteps(
  steps: number,
  solver: SolverName,
  schedules: ScheduleInfo[],
): number[] {
  const floor = Math.min(steps, MIN_FALLBACK_STEPS);
  const set = new Set<number>([steps]);
  for (const f of FALLBACK_FRACTIONS) set.add(Math.max(floor, Math.round(steps * f)));
  for (const s of schedules) {
    if (s.solver === solver && s.steps < steps && s.steps >= floor) set.add(s.steps);
  }
  return [...set].sort((a, b) => b - a);
}

/** Orders schedules best quality first: lower measured fd, else lower skipped fraction, then name. */
export function compareScheduleQuality(a: ScheduleInfo, b: ScheduleInfo): number {
  const fa = a.quality?.fd, fb = b.quality?.fd;
  if (fa !== undefined && fb !== undefined && fa !== fb) return fa - fb;
  if (a.skippedFraction !== b.skippedFraction) return a.skippedFraction - b.skippedFraction;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** The candidate plans of a request in quality order (best first), without predictions. */
export function candidatePlans(
  req: Omit<PlanRequest, "budgetMs" | "predict">,
): Required<PlanSpec>[] {
  const { model, solver, n, guided } = req;
  const size = { width: req.width ?? model.width, height: req.height ?? model.height };
  if (req.cache !== "auto" && req.cache !== "none") {
    const s = model.schedules.find((x) => x.name === req.cache);
    if (!s) return [];
    return [{ steps: s.steps, solver: s.solver, schedule: s.name, n, guided, ...size }];
  }
  const stepsList = req.stepsPinned
    ? [req.steps]
    : fallbackSteps(req.steps, solver, model.schedules);
  const out: Required<PlanSpec>[] = [];
  for (const steps of stepsList) {
    const none = { steps, solver, schedule: null, n, guided, ...size };
    if (req.cache === "none") {
      out.push(none);
      continue;
    }
    const cached = model.schedules
      .filter((s) => s.solver === solver && s.steps === steps)
      .sort(compareScheduleQuality)
      .map((s) => ({ steps, solver, schedule: s.name, n, guided, ...size }));
    if (req.autoCache === "prefer") out.push(...cached, none);
    else out.push(none, ...cached);
  }
  return out;
}

/** Picks the plan for a request (see the module doc for the order). */
export function planRequest(req: PlanRequest): PlanOutcome {
  const specs = candidatePlans(req);
  if (specs.length === 0) throw new Error(`unknown schedule "${req.cache}"`);
  const cands: Candidate[] = specs.map((p) => ({ ...p, predictedMs: req.predict(p) }));
  let fastestIdx = 0;
  cands.forEach((c, i) => {
    if (c.predictedMs < cands[fastestIdx].predictedMs) fastestIdx = i;
  });
  const fastest = cands[fastestIdx];
  const fits = (c: Candidate) => Number.isFinite(c.predictedMs) && c.predictedMs <= req.budgetMs;
  let idx: number;
  if (req.preview) idx = fits(fastest) ? fastestIdx : -1;
  else idx = cands.findIndex(fits);
  if (idx < 0) {
    const what = `${fastest.steps} steps, ${fastest.schedule ?? "no cache"}`;
    return {
      ok: false,
      fastest,
      budgetMs: req.budgetMs,
      message: `no plan fits the deadline: the fastest (${what}) needs about ${
        Math.ceil(fastest.predictedMs)
      } ms, ${Math.max(0, Math.floor(req.budgetMs))} ms are left`,
    };
  }
  const c = cands[idx];
  const pinned = req.cache !== "auto" && (req.stepsPinned || req.cache !== "none");
  let reason: PlanReason;
  if (req.preview) reason = "fastest (preview)";
  else if (pinned) reason = "as requested";
  else if (idx === 0) reason = "best quality";
  else if (c.steps === cands[0].steps) reason = "cached to fit deadline";
  else reason = "fewer steps to fit deadline";
  return { ok: true, plan: { ...c, reason, rank: idx, candidates: cands.length } };
}

/**
 * The deadline planner: from a request, the time it may take and a prediction of each candidate
 * plan's wall time on this replica, pick the plan with the best measured quality that is
 * predicted to fit, or say at once that none does. A plan fits when its prediction times the
 * replica's headroom (lib/planning/headroom.ts) is within the budget. Pure functions: predictions
 * come in as a function, time as numbers, measured quality from the model's frontier files
 * (lib/planning/frontier.ts).
 *
 * Candidates, for a request's solver:
 * - `cache` a schedule name: that schedule alone (pinned; only checked against the budget).
 * - with a frontier for the solver: its measured plans — all of them for `cache: "auto"`, the
 *   uncached ones for `cache: "none"` — at the pinned step count, or, when `steps` is not pinned,
 *   at any step count up to the requested one (the model's default is then the ceiling).
 *   Ranked by measured FD (then KID, then fewer steps): the first that fits is the best measured
 *   quality that fits, so a plan another beats on both time and FD is never chosen.
 * - without one (another solver, a step count off the frontier's grid): the requested steps
 *   uncached, then its shipped schedules (lower measured FD, else fewer skips, first), then fewer
 *   steps when not pinned — the order used before frontiers were measured.
 *
 * Previews take the cheapest fitting plan whose FD is within {@link PREVIEW_FD_FACTOR} of the
 * best measured FD among the candidates (without measured quality: the fastest that fits).
 *
 * `cache: "auto"` means the same everywhere: the plan this planner chooses. The CLI and the cron
 * thumbnails resolve it through {@link resolveAutoCache} (no deadline: the best measured quality
 * at the requested steps); the HTTP service through {@link planRequest} with its deadline.
 *
 * @module
 */
import { type Schedule, scheduleId } from "../cache/schedule.ts";
import type { SolverName } from "../solvers/solver.ts";
import { type Frontier, planId, type PlanQuality } from "./frontier.ts";

/** Fewest steps the planner falls back to on its own (unless fewer were requested). */
export const MIN_FALLBACK_STEPS = 4;

/** Fractions of the requested steps tried as fallbacks when no frontier is measured. */
export const FALLBACK_FRACTIONS = [0.75, 0.5, 0.35, 0.25] as const;

/**
 * The stated quality floor of previews: the cheapest plan whose FD is at most this factor times
 * the best measured FD among the candidates.
 */
export const PREVIEW_FD_FACTOR = 1.5;

/** A shipped static cache schedule, as far as planning needs to know it. */
export interface ScheduleInfo {
  /** The name a request passes as `cache` (the full id `<solver>-<steps>-<name>` in the service). */
  name: string;
  /** The solver and step count the schedule was derived for; it applies to no other. */
  solver: SolverName;
  steps: number;
  /** Fraction of cacheable block evaluations the schedule reuses (0 = none, 1 = all). */
  skippedFraction: number;
  /** Measured quality; `fd` is the Fréchet distance to real images (lower is better). */
  quality?: { fd?: number };
}

/** A schedule file as the planner sees it: named by its full id, with its measured FD if any. */
export function scheduleInfo(s: Schedule): ScheduleInfo {
  const fd = s.measured?.fd;
  return {
    name: scheduleId(s),
    solver: s.solver,
    steps: s.steps,
    skippedFraction: s.skippedFraction,
    ...(typeof fd === "number" && Number.isFinite(fd) ? { quality: { fd } } : {}),
  };
}

/** A candidate plan: what a prediction is asked about. */
export interface PlanSpec {
  steps: number;
  solver: SolverName;
  /** A schedule name, or null for no cache. */
  schedule: string | null;
  /** Images made one after another (default 1). */
  n?: number;
  /**
   * Classifier-free guidance (guidance scale above 1, `isGuided`): each UNet evaluation runs a
   * batch of 2 (unconditional and conditional); without it a batch of 1. A prediction is `n ×`
   * the time of one image at that batch.
   */
  guided: boolean;
  /** Output size in pixels (default: the model's native size). */
  width?: number;
  height?: number;
}

/** A plan with every field but the (optional) size given. */
export type FullPlanSpec =
  & Required<Omit<PlanSpec, "width" | "height">>
  & Pick<PlanSpec, "width" | "height">;

/** What the planner needs of a model: its shipped schedules and measured frontiers. */
export interface PlanningModel {
  schedules: readonly ScheduleInfo[];
  /** One frontier per solver at most (lib/planning/frontier.ts); absent: none measured. */
  frontiers?: readonly Frontier[];
}

/** What the planner is asked. */
export interface PlanRequest {
  model: PlanningModel;
  solver: SolverName;
  /** The requested step count, or the model's default (then the ceiling). */
  steps: number;
  /** True when the request named `steps` itself. */
  stepsPinned: boolean;
  /** `auto`, `none`, or a shipped schedule name of this model (pinned). */
  cache: string;
  /** Images the request makes (the prediction counts all of them). */
  n: number;
  /** Whether guidance is on (guidance scale above 1, `isGuided`): sets the batch the cost counts. */
  guided: boolean;
  /** Output size in pixels (default: the model's native size). */
  width?: number;
  height?: number;
  /** Preview requests take the cheapest plan above the quality floor. */
  preview: boolean;
  /** The preview floor's factor (default {@link PREVIEW_FD_FACTOR}). */
  previewFdFactor?: number;
  /** `prefer`: with `cache: "auto"`, cached plans rank before uncached ones (default `fit`). */
  autoCache?: "fit" | "prefer";
  /** Time left for the generation itself: deadline − waited − expected queue wait (Infinity = none). */
  budgetMs: number;
  /**
   * A plan fits when `predictedMs × headroom <= budgetMs` (default 1): the replica's margin for
   * generations that run longer than predicted (`DeadlineHeadroom`, lib/planning/headroom.ts).
   */
  headroom?: number;
  /** Predicted wall time of a plan in ms on this replica (`n` × one image at its batch). */
  predict: (plan: PlanSpec) => number;
}

/** Why the chosen plan was chosen (short, fit for a header). */
export type PlanReason =
  | "as requested"
  | "best quality"
  | "best quality that fits"
  | "cheapest above the preview floor"
  | "fastest (preview)";

/** One candidate with its prediction and, where measured, its quality. */
export type Candidate = FullPlanSpec & {
  predictedMs: number;
  /** Measured on the model's frontier (absent where the plan was never measured). */
  quality?: PlanQuality;
};

/** The chosen plan. */
export type ChosenPlan = Candidate & {
  reason: PlanReason;
  /** One sentence: the plan's measured quality and what it beat or what did not fit. */
  why: string;
  /** Its rank in quality order among the candidates (0 = best). */
  rank: number;
  /** The headroom it was checked with (`PlanRequest.headroom`, 1 when none). */
  headroom: number;
  candidates: number;
};

/** The planner's answer. */
export type PlanOutcome =
  | { ok: true; plan: ChosenPlan }
  | { ok: false; fastest: Candidate; budgetMs: number; headroom: number; message: string };

/**
 * Step counts to try without a frontier, best first: the requested one, then fewer (fractions of
 * it and the step counts of shipped schedules), down to {@link MIN_FALLBACK_STEPS}.
 */
export function fallbackSteps(
  steps: number,
  solver: SolverName,
  schedules: readonly ScheduleInfo[],
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

/** The shipped schedule of `solver`/`steps` that a frontier plan's short schedule name means. */
function shippedAs(
  schedules: readonly ScheduleInfo[],
  solver: SolverName,
  steps: number,
  short: string,
): ScheduleInfo | undefined {
  const id = scheduleId({ solver, steps, name: short });
  return schedules.find((s) =>
    s.solver === solver && s.steps === steps && (s.name === short || s.name === id)
  );
}

/** The frontier measured for a solver, if any. */
export function frontierFor(model: PlanningModel, solver: SolverName): Frontier | undefined {
  return model.frontiers?.find((f) => f.solver === solver);
}

/** A candidate before prediction: the plan, its measured quality if any, and its plan id. */
export type CandidateSpec = FullPlanSpec & { quality?: PlanQuality; id: string };

/**
 * The candidate plans of a request in quality order (best first), without predictions (see the
 * module doc). Empty when `cache` names no shipped schedule.
 */
export function candidatePlans(req: Omit<PlanRequest, "budgetMs" | "predict">): CandidateSpec[] {
  const { model, solver, n, guided } = req;
  const size = req.width === undefined || req.height === undefined
    ? {}
    : { width: req.width, height: req.height };
  const spec = (
    steps: number,
    schedule: string | null,
    quality?: PlanQuality,
    s: SolverName = solver,
  ): CandidateSpec => ({
    steps,
    solver: s,
    schedule,
    n,
    guided,
    ...size,
    ...(quality ? { quality } : {}),
    id: schedule === null ? planId(s, steps, null) : schedule,
  });
  const frontier = frontierFor(model, solver);
  if (req.cache !== "auto" && req.cache !== "none") {
    const s = model.schedules.find((x) => x.name === req.cache);
    if (!s) return [];
    const q = s.solver !== solver
      ? undefined
      : frontier?.plans.find((p) =>
        p.steps === s.steps && p.schedule !== null &&
        shippedAs([s], solver, s.steps, p.schedule) !== undefined
      )?.quality;
    return [spec(s.steps, s.name, q, s.solver)];
  }
  // a measured plan whose schedule is no longer shipped is no candidate (loading rejects it)
  const onFrontier = (frontier?.plans ?? []).flatMap((p) => {
    if (req.cache === "none" && p.schedule !== null) return [];
    if (req.stepsPinned ? p.steps !== req.steps : p.steps > req.steps) return [];
    if (p.schedule === null) return [spec(p.steps, null, p.quality)];
    const s = shippedAs(model.schedules, solver, p.steps, p.schedule);
    return s ? [spec(p.steps, s.name, p.quality)] : [];
  });
  let out: CandidateSpec[];
  if (onFrontier.length > 0) {
    out = onFrontier.sort((a, b) =>
      a.quality!.fd - b.quality!.fd || a.quality!.kid - b.quality!.kid || a.steps - b.steps
    );
  } else {
    const stepsList = req.stepsPinned
      ? [req.steps]
      : fallbackSteps(req.steps, solver, model.schedules);
    out = stepsList.flatMap((steps) => [
      spec(steps, null),
      ...(req.cache === "none" ? [] : model.schedules
        .filter((s) => s.solver === solver && s.steps === steps)
        .sort(compareScheduleQuality)
        .map((s) => spec(steps, s.name))),
    ]);
  }
  if (req.autoCache === "prefer" && req.cache === "auto") {
    out = [...out.filter((c) => c.schedule !== null), ...out.filter((c) => c.schedule === null)];
  }
  return out;
}

function describe(c: Candidate & { id: string }): string {
  const q = c.quality;
  if (!q) return `${c.id} (quality not measured)`;
  const psnr = q.psnr === null ? "" : `, PSNR ${q.psnr.toFixed(1)} dB`;
  return `${c.id} (FD ${q.fd.toFixed(3)}, KID ${q.kid.toFixed(3)}${psnr})`;
}

/** Picks the plan for a request (see the module doc). Throws for an unknown schedule name. */
export function planRequest(req: PlanRequest): PlanOutcome {
  const specs = candidatePlans(req);
  if (specs.length === 0) throw new Error(`unknown schedule "${req.cache}"`);
  const cands = specs.map((p) => ({ ...p, predictedMs: req.predict(p) }));
  let fastestIdx = 0;
  cands.forEach((c, i) => {
    if (c.predictedMs < cands[fastestIdx].predictedMs) fastestIdx = i;
  });
  const fastest = cands[fastestIdx];
  const headroom = req.headroom ?? 1;
  const fits = (c: Candidate) =>
    Number.isFinite(c.predictedMs) && c.predictedMs * headroom <= req.budgetMs;
  const strip = ({ id: _id, ...c }: typeof cands[number]): Candidate => c;
  const pinned = req.cache !== "auto" && (req.stepsPinned || req.cache !== "none");
  const margin = headroom > 1 ? `, ${headroom.toFixed(2)}x headroom` : "";
  const budget = Number.isFinite(req.budgetMs)
    ? `${Math.floor(req.budgetMs)} ms left${margin}`
    : "no deadline";
  let idx = -1;
  let reason: PlanReason = "best quality";
  let why = "";
  if (req.preview) {
    const fds = cands.flatMap((c) => (c.quality ? [c.quality.fd] : []));
    const factor = req.previewFdFactor ?? PREVIEW_FD_FACTOR;
    const floor = fds.length ? Math.min(...fds) * factor : undefined;
    cands.forEach((c, i) => {
      const above = floor === undefined || (c.quality !== undefined && c.quality.fd <= floor);
      if (fits(c) && above && (idx < 0 || c.predictedMs < cands[idx].predictedMs)) idx = i;
    });
    if (idx >= 0) {
      reason = floor === undefined ? "fastest (preview)" : "cheapest above the preview floor";
      why = floor === undefined
        ? `${describe(cands[idx])}: the fastest plan that fits (${budget})`
        : `${describe(cands[idx])}: the cheapest plan within ${factor}x of the best measured FD ` +
          `(FD <= ${floor.toFixed(3)}) predicted to fit (${budget})`;
    }
  }
  if (idx < 0) {
    idx = cands.findIndex(fits);
    if (idx >= 0) {
      const c = cands[idx];
      const measured = c.quality ? "measured " : "";
      if (pinned) {
        reason = "as requested";
        why = `${describe(c)}: as requested, predicted ${Math.ceil(c.predictedMs)} ms (${budget})`;
      } else if (idx === 0) {
        reason = "best quality";
        why = `${describe(c)}: the best ${measured}quality of ${cands.length} plans, ` +
          `predicted ${Math.ceil(c.predictedMs)} ms (${budget})`;
      } else {
        reason = "best quality that fits";
        const better = cands[0];
        why =
          `${describe(c)}: the best ${measured}quality of the plans predicted to fit (${budget})` +
          `; ${idx} better plan(s) predicted too slow (best: ${describe(better)}, ` +
          `${Number.isFinite(better.predictedMs) ? Math.ceil(better.predictedMs) : "?"} ms)`;
      }
      if (req.preview) why += " (nothing above the preview floor fits)";
    }
  }
  if (idx < 0) {
    const what = `${fastest.steps} steps, ${fastest.schedule ?? "no cache"}`;
    return {
      ok: false,
      fastest: strip(fastest),
      budgetMs: req.budgetMs,
      headroom,
      message: `no plan fits the deadline: the fastest (${what}) needs about ${
        Math.ceil(fastest.predictedMs)
      } ms${
        headroom > 1
          ? ` (${Math.ceil(fastest.predictedMs * headroom)} ms with this replica's ` +
            `${headroom.toFixed(2)}x headroom for slower runs)`
          : ""
      }, ${Math.max(0, Math.floor(req.budgetMs))} ms are left`,
    };
  }
  return {
    ok: true,
    plan: { ...strip(cands[idx]), reason, why, rank: idx, candidates: cands.length, headroom },
  };
}

/**
 * The one meaning of `cache: "auto"` where no deadline applies (the CLI, the cron thumbnails,
 * the pipeline): the plan {@link planRequest} chooses at the requested solver and steps with no
 * time limit — the best measured quality among the uncached plan and the shipped schedules of
 * that step count (without a frontier: uncached). Returns the schedule's name as the model lists
 * it, or null for no cache.
 */
export function resolveAutoCache(
  model: PlanningModel,
  request: { solver: SolverName; steps: number; guided?: boolean },
): string | null {
  const r = planRequest({
    model,
    solver: request.solver,
    steps: request.steps,
    stepsPinned: true,
    cache: "auto",
    n: 1,
    guided: request.guided ?? true,
    preview: false,
    budgetMs: Infinity,
    predict: () => 0,
  });
  if (!r.ok) throw new Error("unreachable: every plan fits without a deadline");
  return r.plan.schedule;
}

/**
 * The shipped schedules of a model (`schedules/<model>/<solver>-<steps>-<name>.json`), the one
 * `index.json` recommends per solver and step count (the schedule the caching benchmark reports),
 * and how a concrete `cache` value picks one: `none`, a schedule name or id, or a file path.
 * `cache: "auto"` is the planner's to resolve (lib/planning/planner.ts), never the registry's.
 *
 * @module
 */
import { parseJson } from "../io/json.ts";
import type { SolverName } from "../solvers/solver.ts";
import { checkScheduleFits, parseSchedule, type Schedule, scheduleId } from "./schedule.ts";

/** `<solver>-<steps>-<name>.json`; other files (curves, pictures, index) are not schedules. */
const SCHEDULE_FILE = /^[a-z]+-\d+-[A-Za-z0-9][A-Za-z0-9._-]*\.json$/;

/** `schedules/<model>/index.json`: the recommended schedule per `<solver>-<steps>` (short name). */
export interface ScheduleIndex {
  recommended: Record<string, string>;
}

/** Parses `index.json`; throws an Error naming `source` and the bad field. */
export function parseScheduleIndex(text: string, source = "index.json"): ScheduleIndex {
  const v = parseJson(text, source);
  const rec = (v as { recommended?: unknown })?.recommended;
  if (typeof rec !== "object" || rec === null || Array.isArray(rec)) {
    throw new Error(
      `${source}: "recommended" must be an object of "<solver>-<steps>": "<schedule name>"` +
        ((v as { auto?: unknown })?.auto !== undefined ? ' (the old key "auto" was renamed)' : ""),
    );
  }
  for (const [k, name] of Object.entries(rec)) {
    if (!/^[a-z]+-\d+$/.test(k) || typeof name !== "string") {
      throw new Error(
        `${source}: recommended[${JSON.stringify(k)}] must map <solver>-<steps> to a name`,
      );
    }
  }
  return { recommended: rec as Record<string, string> };
}

/**
 * Thrown by {@link ScheduleRegistry.resolve} for a name or id that is no shipped schedule for the
 * request's solver and step count; `same` holds the schedules of that name or id for others.
 */
export class UnknownScheduleError extends Error {
  constructor(message: string, readonly same: Schedule[]) {
    super(message);
    this.name = "UnknownScheduleError";
  }
}

/** A model's shipped schedules, loaded once at start-up. */
export class ScheduleRegistry {
  private constructor(
    readonly model: string,
    readonly schedules: Schedule[],
    readonly index: ScheduleIndex,
  ) {}

  /** Loads every schedule file of `dir` (a missing folder means no schedules). */
  static async load(dir: string, model: string): Promise<ScheduleRegistry> {
    const schedules: Schedule[] = [];
    let index: ScheduleIndex = { recommended: {} };
    try {
      for await (const e of Deno.readDir(dir)) {
        if (!e.isFile) continue;
        if (e.name === "index.json") {
          index = parseScheduleIndex(
            await Deno.readTextFile(`${dir}/${e.name}`),
            `${dir}/index.json`,
          );
        } else if (SCHEDULE_FILE.test(e.name)) {
          const text = await Deno.readTextFile(`${dir}/${e.name}`);
          schedules.push(parseSchedule(text, `${dir}/${e.name}`));
        }
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    schedules.sort((a, b) =>
      a.solver.localeCompare(b.solver) || a.steps - b.steps || a.name.localeCompare(b.name)
    );
    return new ScheduleRegistry(model, schedules, index);
  }

  /** Schedules for a solver and step count. */
  for(solver: SolverName, steps: number): Schedule[] {
    return this.schedules.filter((s) => s.solver === solver && s.steps === steps);
  }

  /** The schedule `index.json` recommends for a solver and step count, if one is shipped. */
  recommended(solver: SolverName, steps: number): Schedule | undefined {
    const name = this.index.recommended[`${solver}-${steps}`];
    return name ? this.for(solver, steps).find((s) => s.name === name) : undefined;
  }

  /**
   * Resolves a concrete `cache` value — `none`, a short name or full id (`dpm-20-delta-0.16`) of a
   * schedule for the request's solver and steps, or a schedule file path — to a schedule (null =
   * no caching); throws an Error that names the problem for `auto` (resolve it with the planner
   * first), a bad file, or a schedule that does not fit, and {@link UnknownScheduleError} for a
   * name that is not shipped for this solver and steps (listing the schedules that are).
   */
  async resolve(
    cache: string,
    request: { solver: SolverName; steps: number; blocks: readonly string[] },
  ): Promise<Schedule | null> {
    if (cache === "none") return null;
    if (cache === "auto") {
      throw new Error(
        'cache: "auto" is the planner\'s choice: resolve it with resolveAutoCache (lib/planning/planner.ts) first',
      );
    }
    let schedule: Schedule | undefined;
    if (cache.endsWith(".json") || cache.includes("/")) {
      let text: string;
      try {
        text = await Deno.readTextFile(cache);
      } catch {
        throw new Error(`cache: schedule file ${cache} not found`);
      }
      schedule = parseSchedule(text, cache);
    } else {
      const same = this.schedules.filter((s) => s.name === cache || scheduleId(s) === cache);
      schedule = same.find((s) => s.solver === request.solver && s.steps === request.steps);
      if (!schedule) {
        const list = this.schedules.map((s) =>
          `${scheduleId(s)} (${s.solver}, ${s.steps} steps, skips ${
            Math.round(s.skippedFraction * 100)
          }%)`
        );
        throw new UnknownScheduleError(
          same.length
            ? `cache: schedule ${cache} is for ${
              same.map((s) => `${s.solver} ${s.steps} steps`).join(", ")
            }, not ${request.solver} ${request.steps} steps`
            : `cache: unknown schedule ${cache}; use none, auto, a schedule file, or one of ` +
              `${this.model}'s schedules: ${list.join(", ") || "(none shipped)"}`,
          same,
        );
      }
    }
    checkScheduleFits(schedule, { ...request, model: this.model });
    return schedule;
  }
}

/**
 * The static block-caching schedule file (`schedules/<model>/<solver>-<steps>-<name>.json`): its
 * types, validation, a stable serializer and the check that a schedule fits a request.
 *
 * A schedule is a lookup table `recompute[step][block]` computed offline for one (model, solver,
 * step count) — by the paper's Eq. 7 rule (`kind: "delta"`) or every N steps (`kind: "uniform"`) —
 * plus the optional per-(block, reuse step) per-channel scale-shift that corrects a reused value.
 * Pure data and functions; nothing here touches a model.
 *
 * @module
 */

import { parseJson } from "../io/json.ts";
import { type SolverName, SOLVERS } from "../solvers/solver.ts";
import type { CacheMode } from "../unet/split_manifest.ts";

/** The `format` string of version 1 of the schedule file. */
export const SCHEDULE_FORMAT = "blockcache-schedule/1";

/** Solvers a schedule can be made for (the pipeline's solvers). */
export const SCHEDULE_SOLVERS: readonly SolverName[] = SOLVERS;

/** How the recompute table was made: the paper's Eq. 7 rule, or every N steps (DeepCache-like). */
export type ScheduleKind = "delta" | "uniform";

/**
 * Per-channel correction of a reused value: `value * scale[c] + shift[c]` (the paper's form),
 * plus `previous_value * previous[c]` where `previous` is given: the block's value from the
 * computation before the cached one, so the correction can follow the block's trend over steps.
 */
export interface ScaleShift {
  scale: number[];
  shift: number[];
  /** Weight of the block's previous computed value (the history form); absent = paper's form. */
  previous?: number[];
}

/**
 * Scale-shift parameters: `table[block][step]`, `step` a decimal string of a step at which the
 * block is reused. Steps where the block is recomputed, or that are absent, use no correction.
 */
export type ScaleShiftTable = Record<string, Record<string, ScaleShift>>;

/** Free-form measured figures stored with a schedule (speedup, fd, kid, psnr, machine, date…). */
export type ScheduleMeasured = Record<string, unknown>;

/** One schedule file, as stored and as the engine reads it. */
export interface Schedule {
  format: typeof SCHEDULE_FORMAT;
  /** Model folder name the schedule was calibrated on (e.g. `emoji-ldm`). */
  model: string;
  solver: SolverName;
  /** Number of denoising steps; `recompute` has one row per step. */
  steps: number;
  /** Short name, unique per (solver, steps): `delta-0.50`, `uniform-2`, … */
  name: string;
  kind: ScheduleKind;
  /** Eq. 7 threshold the table was derived with (`kind: "delta"`). */
  delta?: number;
  /** Recompute period (`kind: "uniform"`). */
  every?: number;
  /** Whether a reused value is the block's residual or its whole output (see the split manifest's mode). */
  mode: CacheMode;
  /** Cacheable block names, the column order of `recompute`. */
  blocks: string[];
  /** `recompute[step][block]`: true = run the block, false = reuse its cached value. Row 0 all true. */
  recompute: boolean[][];
  /** Fraction of (step, block) evaluations that reuse a cached value. */
  skippedFraction: number;
  scaleShift?: ScaleShiftTable;
  measured?: ScheduleMeasured;
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** How many times block `block` is computed before step `step` by a recompute table. */
function computedBefore(
  recompute: readonly (readonly boolean[])[],
  step: number,
  block: number,
): number {
  let n = 0;
  for (let t = 0; t < step; t++) if (recompute[t][block]) n++;
  return n;
}

/** Fraction of entries of a recompute table that are `false` (reused); 0 for an empty table. */
export function skippedFraction(recompute: readonly (readonly boolean[])[]): number {
  let total = 0;
  let skipped = 0;
  for (const row of recompute) {
    for (const r of row) {
      total++;
      if (!r) skipped++;
    }
  }
  return total === 0 ? 0 : skipped / total;
}

/** The identifier a person sees in messages and file names: `<solver>-<steps>-<name>`. */
export function scheduleId(s: Pick<Schedule, "solver" | "steps" | "name">): string {
  return `${s.solver}-${s.steps}-${s.name}`;
}

/** The file name of a schedule inside `schedules/<model>/`: `<solver>-<steps>-<name>.json`. */
export function scheduleFileName(solver: SolverName, steps: number, name: string): string {
  if (!SCHEDULE_SOLVERS.includes(solver)) {
    throw new Error(
      `unknown solver ${JSON.stringify(solver)} (expected ${SCHEDULE_SOLVERS.join(", ")})`,
    );
  }
  if (!Number.isInteger(steps) || steps < 1) {
    throw new Error(`steps must be a positive integer, got ${steps}`);
  }
  if (!NAME_RE.test(name)) {
    throw new Error(`schedule name ${JSON.stringify(name)} must match ${NAME_RE.source}`);
  }
  return `${scheduleId({ solver, steps, name })}.json`;
}

/** Conventional name of an Eq. 7 schedule: `delta-0.50` (at least two decimals, more if needed). */
export function deltaScheduleName(delta: number): string {
  if (!Number.isFinite(delta) || delta < 0) throw new Error(`delta must be >= 0, got ${delta}`);
  const two = delta.toFixed(2);
  return `delta-${Number(two) === delta ? two : String(Number(delta.toPrecision(6)))}`;
}

/** Conventional name of a uniform schedule: `uniform-<every>`. */
export function uniformScheduleName(every: number): string {
  if (!Number.isInteger(every) || every < 1) {
    throw new Error(`every must be a positive integer, got ${every}`);
  }
  return `uniform-${every}`;
}

/**
 * Checks a parsed schedule file and returns it typed. Throws an Error that starts with `source`
 * and names the first bad field, e.g. `ddim-20-delta-0.50.json: recompute[0][3] must be true`.
 */
export function validateSchedule(value: unknown, source = "schedule"): Schedule {
  const fail = (field: string, msg: string): never => {
    throw new Error(`${source}: ${field} ${msg}`);
  };
  if (!isPlainObject(value)) throw new Error(`${source}: not a JSON object`);
  const v = value;
  if (v.format !== SCHEDULE_FORMAT) {
    fail("format", `must be "${SCHEDULE_FORMAT}", got ${JSON.stringify(v.format)}`);
  }
  if (typeof v.model !== "string" || !NAME_RE.test(v.model)) {
    fail("model", "must be a model folder name");
  }
  if (typeof v.solver !== "string" || !SCHEDULE_SOLVERS.includes(v.solver as SolverName)) {
    fail(
      "solver",
      `must be one of ${SCHEDULE_SOLVERS.join(", ")}, got ${JSON.stringify(v.solver)}`,
    );
  }
  const steps = v.steps;
  if (typeof steps !== "number" || !Number.isInteger(steps) || steps < 1) {
    fail("steps", `must be a positive integer, got ${JSON.stringify(steps)}`);
  }
  const nSteps = steps as number;
  if (typeof v.name !== "string" || !NAME_RE.test(v.name)) {
    fail("name", `must match ${NAME_RE.source}, got ${JSON.stringify(v.name)}`);
  }
  if (v.kind !== "delta" && v.kind !== "uniform") {
    fail("kind", `must be "delta" or "uniform", got ${JSON.stringify(v.kind)}`);
  }
  if (
    v.delta !== undefined && (typeof v.delta !== "number" || !(v.delta >= 0) || !isFinite(v.delta))
  ) {
    fail("delta", `must be a finite number >= 0, got ${JSON.stringify(v.delta)}`);
  }
  if (
    v.every !== undefined &&
    (typeof v.every !== "number" || !Number.isInteger(v.every) || v.every < 1)
  ) {
    fail("every", `must be a positive integer, got ${JSON.stringify(v.every)}`);
  }
  if (v.mode !== "residual" && v.mode !== "output") {
    fail("mode", `must be "residual" or "output", got ${JSON.stringify(v.mode)}`);
  }
  if (!Array.isArray(v.blocks) || v.blocks.length === 0) fail("blocks", "must be a non-empty list");
  const blocks = v.blocks as unknown[];
  const seen = new Set<string>();
  for (const [j, b] of blocks.entries()) {
    if (typeof b !== "string" || b.length === 0) fail(`blocks[${j}]`, "must be a non-empty string");
    if (seen.has(b as string)) fail(`blocks[${j}]`, `repeats ${JSON.stringify(b)}`);
    seen.add(b as string);
  }
  if (!Array.isArray(v.recompute) || v.recompute.length !== nSteps) {
    fail("recompute", `must be a list of ${nSteps} rows (one per step)`);
  }
  const recompute = v.recompute as unknown[];
  for (const [t, row] of recompute.entries()) {
    if (!Array.isArray(row) || row.length !== blocks.length) {
      fail(`recompute[${t}]`, `must be a list of ${blocks.length} booleans (one per block)`);
    }
    for (const [j, r] of (row as unknown[]).entries()) {
      if (typeof r !== "boolean") fail(`recompute[${t}][${j}]`, "must be a boolean");
      if (t === 0 && r !== true) {
        fail(`recompute[0][${j}]`, "must be true (step 0 has nothing cached yet)");
      }
    }
  }
  const table = recompute as boolean[][];
  const sf = v.skippedFraction;
  if (typeof sf !== "number" || !(sf >= 0 && sf <= 1)) {
    fail("skippedFraction", `must be a number in [0, 1], got ${JSON.stringify(sf)}`);
  }
  const actual = skippedFraction(table);
  if (Math.abs((sf as number) - actual) > 1e-5) {
    fail("skippedFraction", `is ${sf} but the recompute table skips ${actual}`);
  }
  if (v.scaleShift !== undefined) {
    if (!isPlainObject(v.scaleShift)) fail("scaleShift", "must be an object");
    for (const [block, perStep] of Object.entries(v.scaleShift as Record<string, unknown>)) {
      const j = blocks.indexOf(block);
      const f = `scaleShift[${JSON.stringify(block)}]`;
      if (j < 0) fail(f, "is not one of blocks");
      if (!isPlainObject(perStep)) fail(f, "must be an object keyed by step");
      let channels = -1;
      for (const [stepKey, ss] of Object.entries(perStep as Record<string, unknown>)) {
        const g = `${f}[${JSON.stringify(stepKey)}]`;
        const t = Number(stepKey);
        if (String(t) !== stepKey || !Number.isInteger(t) || t < 0 || t >= nSteps) {
          fail(g, `step must be an integer in [0, ${nSteps - 1}]`);
        }
        if (table[t][j]) fail(g, "is a step where the block is recomputed, not reused");
        if (!isPlainObject(ss)) fail(g, "must be { scale, shift }");
        const { scale, shift, previous } = ss as Record<string, unknown>;
        const arrays: [string, unknown][] = [["scale", scale], ["shift", shift]];
        if (previous !== undefined) {
          if (computedBefore(table, t, j) < 2) {
            fail(`${g}.previous`, "needs two computations of the block before this step");
          }
          arrays.push(["previous", previous]);
        }
        for (const [k, arr] of arrays) {
          if (!Array.isArray(arr) || arr.length === 0) {
            fail(`${g}.${k}`, "must be a non-empty list");
          }
          const a = arr as unknown[];
          if (channels < 0) channels = a.length;
          if (a.length !== channels) {
            fail(`${g}.${k}`, `has ${a.length} channels, expected ${channels}`);
          }
          for (const [c, x] of a.entries()) {
            if (typeof x !== "number" || !Number.isFinite(x)) {
              fail(`${g}.${k}[${c}]`, "must be a finite number");
            }
          }
        }
      }
    }
  }
  if (v.measured !== undefined && !isPlainObject(v.measured)) fail("measured", "must be an object");
  return v as unknown as Schedule;
}

/** Parses and validates the text of a schedule file; errors start with `source`. */
export function parseSchedule(text: string, source = "schedule"): Schedule {
  const value = parseJson(text, source);
  return validateSchedule(value, source);
}

/** A number as short JSON: integers as is, others with 6 significant digits. */
export function compactNumber(x: number): string {
  if (!Number.isFinite(x)) throw new Error(`cannot write non-finite number ${x} to JSON`);
  if (Number.isInteger(x) && Math.abs(x) < 1e15) return String(x === 0 ? 0 : x);
  const r = Number(x.toPrecision(6));
  return JSON.stringify(r === 0 ? 0 : r);
}

/** JSON of any value with compact numbers and keys in insertion order, on one line. */
function compactJson(v: unknown): string {
  if (typeof v === "number") return compactNumber(v);
  if (Array.isArray(v)) return `[${v.map(compactJson).join(",")}]`;
  if (isPlainObject(v)) {
    const parts: string[] = [];
    for (const [k, x] of Object.entries(v)) {
      if (x !== undefined) parts.push(`${JSON.stringify(k)}:${compactJson(x)}`);
    }
    return `{${parts.join(",")}}`;
  }
  return JSON.stringify(v ?? null);
}

/**
 * Writes a schedule as stable, diff-friendly JSON: fixed key order, one recompute row and one
 * scale-shift entry per line (steps in numeric order), non-integers with 6 significant digits.
 * Validates first, so a bad schedule is never written. `parseSchedule(serializeSchedule(s))`
 * equals `s` up to that rounding, and serializing again gives the same text.
 */
export function serializeSchedule(s: Schedule): string {
  validateSchedule(s, scheduleId(s));
  const lines: string[] = [];
  const field = (k: string, json: string) => lines.push(`  ${JSON.stringify(k)}: ${json}`);
  field("format", JSON.stringify(s.format));
  field("model", JSON.stringify(s.model));
  field("solver", JSON.stringify(s.solver));
  field("steps", String(s.steps));
  field("name", JSON.stringify(s.name));
  field("kind", JSON.stringify(s.kind));
  if (s.delta !== undefined) field("delta", compactNumber(s.delta));
  if (s.every !== undefined) field("every", String(s.every));
  field("mode", JSON.stringify(s.mode));
  field("blocks", `[\n${s.blocks.map((b) => `    ${JSON.stringify(b)}`).join(",\n")}\n  ]`);
  field("recompute", `[\n${s.recompute.map((r) => `    ${JSON.stringify(r)}`).join(",\n")}\n  ]`);
  field("skippedFraction", compactNumber(s.skippedFraction));
  if (s.scaleShift !== undefined) {
    const blocks = s.blocks.filter((b) => s.scaleShift![b] !== undefined);
    const parts = blocks.map((b) => {
      const perStep = s.scaleShift![b];
      const keys = Object.keys(perStep).sort((x, y) => Number(x) - Number(y));
      const inner = keys.map((k) =>
        `      ${JSON.stringify(k)}: ${
          compactJson({
            scale: perStep[k].scale,
            shift: perStep[k].shift,
            ...(perStep[k].previous ? { previous: perStep[k].previous } : {}),
          })
        }`
      );
      return inner.length === 0
        ? `    ${JSON.stringify(b)}: {}`
        : `    ${JSON.stringify(b)}: {\n${inner.join(",\n")}\n    }`;
    });
    field("scaleShift", parts.length === 0 ? "{}" : `{\n${parts.join(",\n")}\n  }`);
  }
  if (s.measured !== undefined) field("measured", compactJson(s.measured));
  return `{\n${lines.join(",\n")}\n}\n`;
}

/** What a request asks of a schedule (the engine's split manifest supplies `blocks` and `mode`). */
export interface ScheduleRequest {
  solver: SolverName;
  steps: number;
  blocks: readonly string[];
  mode?: CacheMode;
  model?: string;
}

/**
 * Throws a clear Error when a schedule cannot be applied to a request: another solver, step
 * count, model, cache mode, or block list (names and order must match the plan's).
 */
export function checkScheduleFits(schedule: Schedule, request: ScheduleRequest): void {
  const id = `schedule ${scheduleId(schedule)}`;
  if (request.model !== undefined && schedule.model !== request.model) {
    throw new Error(`${id} is for model ${schedule.model}, the request uses ${request.model}`);
  }
  if (schedule.solver !== request.solver) {
    throw new Error(`${id} is for solver ${schedule.solver}, the request uses ${request.solver}`);
  }
  if (schedule.steps !== request.steps) {
    throw new Error(`${id} is for ${schedule.steps} steps, the request has ${request.steps}`);
  }
  if (request.mode !== undefined && schedule.mode !== request.mode) {
    throw new Error(
      `${id} caches block ${schedule.mode}s, the model's split caches ${request.mode}s`,
    );
  }
  const want = request.blocks;
  const missing = want.filter((b) => !schedule.blocks.includes(b));
  const extra = schedule.blocks.filter((b) => !want.includes(b));
  if (missing.length > 0) {
    throw new Error(`${id} has no column for block(s) ${missing.join(", ")} of the model's split`);
  }
  if (extra.length > 0) {
    throw new Error(
      `${id} lists block(s) ${extra.join(", ")} that the model's split does not have`,
    );
  }
  const k = want.findIndex((b, i) => schedule.blocks[i] !== b);
  if (k >= 0) {
    throw new Error(
      `${id} lists the blocks in another order than the model's split (column ${k} is ` +
        `${schedule.blocks[k]}, the split has ${want[k]})`,
    );
  }
}

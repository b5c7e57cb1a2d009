/**
 * The speed–quality frontier file (`schedules/<model>/<solver>.frontier.json`): every candidate
 * plan of one model and solver — a step count, uncached or with one shipped schedule — with its
 * cost (how many times it runs each UNet segment per image) and its quality measured offline
 * (`deno task frontier`, lib/calibration/frontier.ts) on a fixed prompt set with the model's
 * evaluation network. The planner (lib/planning/planner.ts) chooses among these plans; each
 * replica turns a plan's cost into time with its own measured per-segment latencies
 * ({@link predictPlanMs}).
 *
 * Pure data and functions: parse, validate, serialize, check against the shipped schedules, and
 * the Pareto front.
 *
 * @module
 */
import { parseJson } from "../io/json.ts";
import { sha256Bytes } from "../io/hash.ts";
import { type Schedule, scheduleId, serializeSchedule } from "../cache/schedule.ts";
import { type SolverName, SOLVERS } from "../solvers/solver.ts";

/** The `format` string of version 1 of the frontier file. */
export const FRONTIER_FORMAT = "blockcache-frontier/1";

/**
 * Quality of a plan's images on the frontier's prompt set. `fd`, `kid`: Fréchet distance and
 * kernel inception distance to the real images in the evaluation network's feature space (lower
 * is better); `accuracy`: fraction of images the network puts in the prompt's category; `psnr`
 * (dB) and `ssim`: against the reference plan's image of the same prompt and seed (`psnr` null
 * where identical, i.e. infinite).
 */
export interface PlanQuality {
  fd: number;
  kid: number;
  kidStd: number;
  accuracy: number;
  psnr: number | null;
  ssim: number;
}

/**
 * Cost of a plan: `evaluations[segment]` = how many times one image runs that UNet segment (the
 * split manifest's segment names; glue segments once per step, a block once per step its
 * schedule computes it). Batch-independent: a guided image runs each evaluation at batch 2.
 */
export interface PlanCost {
  evaluations: Record<string, number>;
}

/** One measured plan. */
export interface FrontierPlan {
  /** `<solver>-<steps>-none`, or the schedule's id `<solver>-<steps>-<name>`. */
  id: string;
  steps: number;
  /** The schedule's short name, or null for no cache. */
  schedule: string | null;
  /** sha256 of the schedule measured ({@link scheduleFingerprint}); absent for no cache. */
  scheduleSha256?: string;
  /** Fraction of cacheable block evaluations reused (0 without cache). */
  skippedFraction: number;
  cost: PlanCost;
  quality: PlanQuality;
  /**
   * Wall time per image on the measuring machine, ms (median of interleaved runs, batch of one,
   * guided): the UNet stage and the whole generation. Figures for people; planning predicts
   * from the replica's own latencies.
   */
  measuredMs?: { unet: number; total: number };
}

/** A frontier file. */
export interface Frontier {
  format: typeof FRONTIER_FORMAT;
  model: string;
  solver: SolverName;
  /** The split manifest's segments in run order; `block` marks the cacheable ones. */
  segments: { name: string; block: boolean }[];
  /** Id of the plan PSNR/SSIM are measured against (the uncached plan with the most steps). */
  reference: string;
  /** The prompt set every plan was measured on. */
  prompts: { count: number; source: string; seeds: string; guidanceScale: number };
  /** The real-vs-real floor of the evaluation network (held-out real images). */
  floor: { fd: number; kid: number };
  /**
   * How much FD moves with the seeds alone: the FD of one uncached plan (`plan`) on the same
   * prompts with other seed sets (`fd[0]` with the frontier's seeds, then seed = index + k × count).
   * FD differences well inside this spread are noise.
   */
  fdSpread?: { plan: string; fd: number[] };
  /** How and where it was measured. */
  measured: {
    command: string;
    machine: string;
    backend: string;
    date: string;
    /** Per-segment mean latency (ms) of the timing run, guided batch (2) and unguided (1). */
    segmentMs?: { batch2: Record<string, number>; batch1?: Record<string, number> };
    timingRuns?: number;
  };
  plans: FrontierPlan[];
}

/** File name of a solver's frontier inside `schedules/<model>/`. */
export function frontierFileName(solver: SolverName): string {
  return `${solver}.frontier.json`;
}

/** The plan id: `<solver>-<steps>-none` or `<solver>-<steps>-<schedule>`. */
export function planId(solver: SolverName, steps: number, schedule: string | null): string {
  return schedule === null
    ? `${solver}-${steps}-none`
    : scheduleId({ solver, steps, name: schedule });
}

/**
 * The sha256 (hex) of what a schedule makes the engine do: its file without the `measured`
 * figures (recompute table, scale-shift, blocks, mode…). Two schedules with equal fingerprints
 * give the same images.
 */
export function scheduleFingerprint(s: Schedule): string {
  return sha256Bytes(new TextEncoder().encode(serializeSchedule({ ...s, measured: undefined })));
}

/** The cost of running `steps` steps with `schedule` (null: uncached) on these segments. */
export function planCost(
  segments: readonly { name: string; block: boolean }[],
  steps: number,
  schedule: Pick<Schedule, "blocks" | "recompute"> | null,
): PlanCost {
  const evaluations: Record<string, number> = {};
  for (const seg of segments) {
    if (!seg.block || schedule === null) {
      evaluations[seg.name] = steps;
      continue;
    }
    const k = schedule.blocks.indexOf(seg.name);
    if (k < 0) throw new Error(`the schedule has no column for block ${seg.name}`);
    evaluations[seg.name] = schedule.recompute.filter((row) => row[k]).length;
  }
  return { evaluations };
}

/**
 * Predicted time of one image of a plan: Σ over segments of evaluations × that segment's latency
 * (ms, measured at the batch the image runs: 2 with guidance, 1 without). Undefined while a
 * needed segment has no latency.
 */
export function predictPlanMs(
  cost: PlanCost,
  segmentMs: (segment: string) => number | undefined,
): number | undefined {
  let total = 0;
  for (const [name, n] of Object.entries(cost.evaluations)) {
    if (n === 0) continue;
    const ms = segmentMs(name);
    if (ms === undefined) return undefined;
    total += n * ms;
  }
  return total;
}

/**
 * The plans on the Pareto front of (cost, FD): sorted by cost (`costOf`, e.g. predicted ms), each
 * kept only when its FD is lower than every cheaper plan's. A plan off the front is dominated:
 * another is at least as fast and better.
 */
export function paretoFront<P extends { quality: { fd: number } }>(
  plans: readonly P[],
  costOf: (p: P) => number,
): P[] {
  const sorted = [...plans].sort((a, b) => costOf(a) - costOf(b) || a.quality.fd - b.quality.fd);
  const out: P[] = [];
  let best = Infinity;
  for (const p of sorted) {
    if (p.quality.fd < best) {
      out.push(p);
      best = p.quality.fd;
    }
  }
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Checks a parsed frontier file and returns it typed; throws an Error that starts with `source`
 * and names the first bad field (e.g. `dpm.frontier.json: plans[3].cost.evaluations is missing
 * segment glue_02`).
 */
export function validateFrontier(value: unknown, source = "frontier"): Frontier {
  const fail = (field: string, msg: string): never => {
    throw new Error(`${source}: ${field} ${msg}`);
  };
  const num = (v: unknown, field: string, min = -Infinity): number => {
    if (typeof v !== "number" || !Number.isFinite(v) || v < min) {
      fail(field, `must be a finite number${min > -Infinity ? ` >= ${min}` : ""}`);
    }
    return v as number;
  };
  const str = (v: unknown, field: string): string => {
    if (typeof v !== "string" || v.length === 0) fail(field, "must be a non-empty string");
    return v as string;
  };
  if (!isObject(value)) throw new Error(`${source}: not a JSON object`);
  const v = value;
  if (v.format !== FRONTIER_FORMAT) {
    fail("format", `must be "${FRONTIER_FORMAT}", got ${JSON.stringify(v.format)}`);
  }
  str(v.model, "model");
  if (!SOLVERS.includes(v.solver as SolverName)) {
    fail("solver", `must be one of ${SOLVERS.join(", ")}, got ${JSON.stringify(v.solver)}`);
  }
  const solver = v.solver as SolverName;
  if (!Array.isArray(v.segments) || v.segments.length === 0) {
    fail("segments", "must be a non-empty list");
  }
  const segments = v.segments as unknown[];
  const names = new Set<string>();
  for (const [i, s] of segments.entries()) {
    if (!isObject(s)) fail(`segments[${i}]`, "must be { name, block }");
    const seg = s as Record<string, unknown>;
    const name = str(seg.name, `segments[${i}].name`);
    if (names.has(name)) fail(`segments[${i}].name`, `repeats ${JSON.stringify(name)}`);
    names.add(name);
    if (typeof seg.block !== "boolean") fail(`segments[${i}].block`, "must be a boolean");
  }
  const reference = str(v.reference, "reference");
  if (!isObject(v.prompts)) fail("prompts", "must be an object");
  const prompts = v.prompts as Record<string, unknown>;
  num(prompts.count, "prompts.count", 1);
  str(prompts.source, "prompts.source");
  str(prompts.seeds, "prompts.seeds");
  num(prompts.guidanceScale, "prompts.guidanceScale");
  if (!isObject(v.floor)) fail("floor", "must be { fd, kid }");
  num((v.floor as Record<string, unknown>).fd, "floor.fd");
  num((v.floor as Record<string, unknown>).kid, "floor.kid");
  if (v.fdSpread !== undefined) {
    const spread = v.fdSpread as Record<string, unknown>;
    if (!isObject(spread) || !Array.isArray(spread.fd) || spread.fd.length < 2) {
      fail("fdSpread", "must be { plan, fd: [at least 2 numbers] }");
    }
    str(spread.plan, "fdSpread.plan");
    (spread.fd as unknown[]).forEach((x, i) => num(x, `fdSpread.fd[${i}]`));
  }
  if (!isObject(v.measured)) fail("measured", "must be an object");
  const measured = v.measured as Record<string, unknown>;
  for (const k of ["command", "machine", "backend", "date"]) str(measured[k], `measured.${k}`);
  if (!Array.isArray(v.plans) || v.plans.length === 0) fail("plans", "must be a non-empty list");
  const ids = new Set<string>();
  for (const [i, raw] of (v.plans as unknown[]).entries()) {
    const f = `plans[${i}]`;
    if (!isObject(raw)) fail(f, "must be an object");
    const p = raw as Record<string, unknown>;
    const steps = num(p.steps, `${f}.steps`, 1);
    if (!Number.isInteger(steps)) fail(`${f}.steps`, "must be an integer");
    if (p.schedule !== null && typeof p.schedule !== "string") {
      fail(`${f}.schedule`, "must be a schedule name or null");
    }
    const id = planId(solver, steps, p.schedule as string | null);
    if (p.id !== id) fail(`${f}.id`, `must be ${JSON.stringify(id)}, got ${JSON.stringify(p.id)}`);
    if (ids.has(id)) fail(`${f}.id`, `repeats ${id}`);
    ids.add(id);
    if (p.schedule !== null && typeof p.scheduleSha256 !== "string") {
      fail(`${f}.scheduleSha256`, "is required for a plan with a schedule");
    }
    const sf = num(p.skippedFraction, `${f}.skippedFraction`, 0);
    if (sf > 1) fail(`${f}.skippedFraction`, "must be at most 1");
    if (!isObject(p.cost) || !isObject(p.cost.evaluations)) {
      fail(`${f}.cost`, "must be { evaluations: { <segment>: count } }");
    }
    const ev = (p.cost as { evaluations: Record<string, unknown> }).evaluations;
    for (const name of names) {
      if (ev[name] === undefined) fail(`${f}.cost.evaluations`, `is missing segment ${name}`);
    }
    for (const [name, n] of Object.entries(ev)) {
      if (!names.has(name)) fail(`${f}.cost.evaluations`, `names unknown segment ${name}`);
      const count = num(n, `${f}.cost.evaluations.${name}`, 0);
      if (!Number.isInteger(count) || count > steps) {
        fail(`${f}.cost.evaluations.${name}`, `must be an integer in 0..${steps}`);
      }
    }
    if (!isObject(p.quality)) fail(`${f}.quality`, "must be an object");
    const q = p.quality as Record<string, unknown>;
    for (const k of ["fd", "kid", "kidStd", "accuracy", "ssim"]) num(q[k], `${f}.quality.${k}`);
    if (q.psnr !== null) num(q.psnr, `${f}.quality.psnr`);
    if (p.measuredMs !== undefined) {
      if (!isObject(p.measuredMs)) fail(`${f}.measuredMs`, "must be { unet, total }");
      num((p.measuredMs as Record<string, unknown>).unet, `${f}.measuredMs.unet`, 0);
      num((p.measuredMs as Record<string, unknown>).total, `${f}.measuredMs.total`, 0);
    }
  }
  if (!ids.has(reference)) fail("reference", `${reference} is not one of the plans`);
  return v as unknown as Frontier;
}

/** Parses and validates a frontier file's text; errors start with `source`. */
export function parseFrontier(text: string, source = "frontier"): Frontier {
  const value = parseJson(text, source);
  return validateFrontier(value, source);
}

/**
 * Writes a frontier as stable JSON (validated first): the header fields, then one plan per line
 * in the order given. `parseFrontier(serializeFrontier(f))` deep-equals `f`.
 */
export function serializeFrontier(f: Frontier): string {
  validateFrontier(f, frontierFileName(f.solver));
  const { plans, ...head } = f;
  const headJson = JSON.stringify(head, null, 2);
  const planLines = plans.map((p) => `    ${JSON.stringify(p)}`).join(",\n");
  return `${headJson.slice(0, -2)},\n  "plans": [\n${planLines}\n  ]\n}\n`;
}

/** What a frontier must agree with: the model's name, split segments and shipped schedules. */
export interface FrontierContext {
  model: string;
  segments: readonly { name: string; block: boolean }[];
  /** The model's shipped schedules (any solver; those of the frontier's solver are checked). */
  schedules: readonly Schedule[];
}

/**
 * Throws an Error naming `source`, the plan and the fix when a frontier does not describe the
 * model as shipped: another model, other split segments, a plan whose schedule is not shipped or
 * has changed since it was measured (sha256), or a cost that does not follow from its schedule.
 * A shipped schedule the frontier never measured is no mismatch: the planner uses it only when a
 * request names it.
 */
export function checkFrontierMatches(
  f: Frontier,
  ctx: FrontierContext,
  source = frontierFileName(f.solver),
): void {
  const fail = (msg: string): never => {
    throw new Error(
      `${source}: ${msg} (measure it again: deno task frontier --solvers ${f.solver})`,
    );
  };
  if (f.model !== ctx.model) fail(`is for model ${f.model}, not ${ctx.model}`);
  const list = (segs: readonly { name: string; block: boolean }[]) =>
    segs.map((s) => `${s.name}${s.block ? " (block)" : ""}`).join(", ");
  if (list(ctx.segments) !== list(f.segments)) {
    fail(
      `lists the UNet segments ${list(f.segments)}; the model's split.json has ${
        list(ctx.segments)
      }`,
    );
  }
  for (const p of f.plans) {
    let schedule: Schedule | null = null;
    if (p.schedule !== null) {
      const found = ctx.schedules.find((s) =>
        s.solver === f.solver && s.steps === p.steps && s.name === p.schedule
      );
      if (!found) fail(`plan ${p.id} names schedule ${p.id}.json, which is not shipped`);
      schedule = found!;
      if (scheduleFingerprint(schedule) !== p.scheduleSha256) {
        fail(`plan ${p.id} was measured with another version of its schedule (sha256 differs)`);
      }
    }
    const cost = planCost(f.segments, p.steps, schedule);
    for (const [name, n] of Object.entries(cost.evaluations)) {
      if (p.cost.evaluations[name] !== n) {
        fail(
          `plan ${p.id} costs ${
            p.cost.evaluations[name]
          } runs of ${name}; its schedule runs it ${n} times`,
        );
      }
    }
  }
}

/**
 * Loads and checks every `<solver>.frontier.json` of a schedules folder (a missing folder: none).
 * Throws the first parse or {@link checkFrontierMatches} error, naming the file.
 */
export async function loadFrontiers(dir: string, ctx: FrontierContext): Promise<Frontier[]> {
  const out: Frontier[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (!e.isFile || !e.name.endsWith(".frontier.json")) continue;
      const path = `${dir}/${e.name}`;
      const f = parseFrontier(await Deno.readTextFile(path), path);
      if (e.name !== frontierFileName(f.solver)) {
        throw new Error(
          `${path}: holds the ${f.solver} frontier, so it must be named ${
            frontierFileName(f.solver)
          }`,
        );
      }
      checkFrontierMatches(f, ctx, path);
      out.push(f);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out.sort((a, b) => a.solver.localeCompare(b.solver));
}

/**
 * The plan with the lowest FD among `plans` that `allow` admits and whose time (`timeOf`, ms)
 * is at most `budgetMs`; ties go to the faster. Undefined when none fits.
 */
export function bestWithin<P extends { quality: { fd: number } }>(
  plans: readonly P[],
  timeOf: (p: P) => number,
  budgetMs: number,
  allow: (p: P) => boolean = () => true,
): P | undefined {
  let best: P | undefined;
  for (const p of plans) {
    if (!allow(p) || !(timeOf(p) <= budgetMs)) continue;
    if (
      !best || p.quality.fd < best.quality.fd ||
      (p.quality.fd === best.quality.fd && timeOf(p) < timeOf(best))
    ) best = p;
  }
  return best;
}

/**
 * Iso-quality speedup of caching at FD `fd`: the time of the fastest uncached plan reaching it
 * (FD ≤ `fd` + `tolerance`) over the time of the fastest plan of any kind reaching it (FD ≤ `fd`).
 * A tolerance (e.g. FD's seed spread) keeps noise from counting for caching. 1 when the fastest
 * is uncached; undefined when no uncached plan reaches it.
 */
export function isoQualitySpeedup<P extends { schedule: string | null; quality: { fd: number } }>(
  plans: readonly P[],
  timeOf: (p: P) => number,
  fd: number,
  tolerance = 0,
): { uncached: P; any: P; speedup: number } | undefined {
  const fastest = (allow: (p: P) => boolean, limit: number) => {
    let best: P | undefined;
    for (const p of plans) {
      if (allow(p) && p.quality.fd <= limit && (!best || timeOf(p) < timeOf(best))) best = p;
    }
    return best;
  };
  const uncached = fastest((p) => p.schedule === null, fd + tolerance);
  const any = fastest(() => true, fd);
  if (!uncached || !any) return undefined;
  return { uncached, any, speedup: timeOf(uncached) / timeOf(any) };
}

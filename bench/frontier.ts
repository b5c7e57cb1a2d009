/**
 * What caching buys, from the measured frontiers (`deno task frontier` writes them): for each
 * solver, for deadlines from the cheapest plan to the full run, the best measured FD with caching
 * allowed and with it forbidden; and the iso-quality speedup (how much sooner the caching
 * frontier reaches each FD than the uncached one). Time is each plan's measured wall time per
 * image (median of the frontier run's interleaved timing rounds, guided, batch of one).
 *
 *   deno run --allow-read --allow-write bench/frontier.ts [--schedules schedules/emoji-ldm]
 *     [--out bench/results]
 *
 * Prints Markdown tables; writes `<out>/frontier_<solver>.svg` and `<out>/frontier.json`.
 *
 * @module
 */
import { parseFlags } from "../lib/cli/flags.ts";
import { speedQualitySvg } from "../lib/image/plots.ts";
import { writeFileAtomic } from "../lib/io/atomic.ts";
import {
  bestWithin,
  type Frontier,
  frontierFileName,
  type FrontierPlan,
  isoQualitySpeedup,
  paretoFront,
  parseFrontier,
} from "../lib/planning/frontier.ts";
import { SOLVERS } from "../lib/solvers/solver.ts";

/** One row of the deadline table. */
export interface DeadlineRow {
  deadlineMs: number;
  cached?: { id: string; fd: number };
  uncached?: { id: string; fd: number };
}

/** One row of the iso-quality table. */
export interface IsoRow {
  fd: number;
  /** The fastest plan reaching `fd` (a point of the front). */
  any: { id: string; ms: number };
  /** The fastest uncached plan reaching `fd` and the speedup over it (absent: none reaches it). */
  uncached?: { id: string; ms: number; speedup: number };
  /** The same, an uncached plan counted as reaching `fd` within FD's seed spread. */
  withinNoise?: { id: string; ms: number; speedup: number };
}

const timeOf = (p: FrontierPlan) => p.measuredMs!.total;
const isCached = (p: FrontierPlan) => p.schedule !== null;

/**
 * The deadline table: one row per time at which either frontier (caching allowed, or uncached
 * only) improves, from the cheapest plan to the reference (full) run.
 */
export function deadlineTable(f: Frontier): DeadlineRow[] {
  const plans = f.plans.filter((p) => p.measuredMs);
  const ref = plans.find((p) => p.id === f.reference);
  const limit = ref ? timeOf(ref) : Infinity;
  const times = [
    ...paretoFront(plans, timeOf),
    ...paretoFront(plans.filter((p) => !isCached(p)), timeOf),
  ].map(timeOf).filter((t) => t <= limit);
  if (ref) times.push(limit);
  return [...new Set(times)].sort((a, b) => a - b).map((deadlineMs) => {
    const c = bestWithin(plans, timeOf, deadlineMs);
    const u = bestWithin(plans, timeOf, deadlineMs, (p) => !isCached(p));
    return {
      deadlineMs,
      ...(c ? { cached: { id: c.id, fd: c.quality.fd } } : {}),
      ...(u ? { uncached: { id: u.id, fd: u.quality.fd } } : {}),
    };
  });
}

/** FD's seed spread of a frontier (max − min over its seed sets), 0 where not measured. */
export function fdNoise(f: Frontier): number {
  return f.fdSpread ? Math.max(...f.fdSpread.fd) - Math.min(...f.fdSpread.fd) : 0;
}

/**
 * The iso-quality table: at the FD of each point of the (caching allowed) front, and the same
 * with uncached plans given FD's seed spread as tolerance.
 */
export function isoQualityTable(f: Frontier): IsoRow[] {
  const plans = f.plans.filter((p) => p.measuredMs);
  const noise = fdNoise(f);
  const entry = (r: ReturnType<typeof isoQualitySpeedup<FrontierPlan>>) =>
    r ? { id: r.uncached.id, ms: timeOf(r.uncached), speedup: r.speedup } : undefined;
  return paretoFront(plans, timeOf).map((p) => {
    const uncached = entry(isoQualitySpeedup(plans, timeOf, p.quality.fd));
    const withinNoise = noise > 0
      ? entry(isoQualitySpeedup(plans, timeOf, p.quality.fd, noise))
      : undefined;
    return {
      fd: p.quality.fd,
      any: { id: p.id, ms: timeOf(p) },
      ...(uncached ? { uncached } : {}),
      ...(withinNoise ? { withinNoise } : {}),
    };
  });
}

/** Best FD within each deadline as a step line (a point where the value changes, and the last). */
function stepSeries(rows: DeadlineRow[], key: "cached" | "uncached") {
  const points: { x: number; y: number; label?: string }[] = [];
  for (const r of rows) {
    const v = r[key];
    if (!v) continue;
    const prev = points[points.length - 1];
    if (prev && prev.y !== v.fd) points.push({ x: r.deadlineMs, y: prev.y });
    if (!prev || prev.y !== v.fd) {
      points.push({ x: r.deadlineMs, y: v.fd, label: v.id.replace(/^[a-z]+-/, "") });
    }
  }
  const last = rows[rows.length - 1];
  if (points.length && last) points.push({ x: last.deadlineMs, y: points[points.length - 1].y });
  return points;
}

if (import.meta.main) {
  const { flags } = parseFlags(Deno.args, { schedules: "string", out: "string" });
  const dir = String(flags.schedules ?? "schedules/emoji-ldm");
  const out = String(flags.out ?? "bench/results");
  const summary: Record<string, unknown> = {};
  for (const solver of SOLVERS) {
    const path = `${dir}/${frontierFileName(solver)}`;
    let f: Frontier;
    try {
      f = parseFrontier(await Deno.readTextFile(path), path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) continue;
      throw e;
    }
    const rows = deadlineTable(f);
    const iso = isoQualityTable(f);
    console.log(
      `\n${f.model} ${solver}: ${f.plans.length} plans, ${f.prompts.count} prompts, ${f.measured.machine}`,
    );
    console.log("| deadline (ms) | best with caching | FD | best without caching | FD |");
    console.log("| ---: | --- | ---: | --- | ---: |");
    for (const r of rows) {
      console.log(
        `| ${r.deadlineMs.toFixed(0)} | ${r.cached?.id ?? "—"} | ${
          r.cached?.fd.toFixed(3) ?? "—"
        } | ${r.uncached?.id ?? "—"} | ${r.uncached?.fd.toFixed(3) ?? "—"} |`,
      );
    }
    const noise = fdNoise(f);
    console.log(
      `\n| FD reached | fastest overall | ms | fastest uncached | ms | speedup | fastest uncached within ${
        noise.toFixed(2)
      } FD (seed spread) | ms | speedup |`,
    );
    console.log("| ---: | --- | ---: | --- | ---: | ---: | --- | ---: | ---: |");
    const cell = (e?: { id: string; ms: number; speedup: number }) =>
      e ? `${e.id} | ${e.ms.toFixed(0)} | ${e.speedup.toFixed(2)}x` : "none reaches it | — | —";
    for (const r of iso) {
      console.log(
        `| ${r.fd.toFixed(3)} | ${r.any.id} | ${r.any.ms.toFixed(0)} | ${cell(r.uncached)} | ${
          cell(r.withinNoise)
        } |`,
      );
    }
    const reached = iso.flatMap((r) => (r.uncached ? [{ fd: r.fd, ...r.uncached }] : []));
    const best = reached.length
      ? reached.reduce((m, r) => (r.speedup > m.speedup ? r : m))
      : undefined;
    console.log(
      best
        ? `largest iso-quality speedup: ${best.speedup.toFixed(2)}x at FD ${best.fd.toFixed(3)}`
        : "no FD of the front is reached by an uncached plan",
    );
    // the picture leaves out plans worse than the cheapest uncached one (they are in the file)
    const plans = f.plans.filter((p) => p.measuredMs);
    const cheapest = plans.filter((p) => !isCached(p)).sort((a, b) => timeOf(a) - timeOf(b))[0];
    const cap = cheapest.quality.fd;
    const shown = (r: DeadlineRow) => ({
      deadlineMs: r.deadlineMs,
      ...(r.cached && r.cached.fd <= cap ? { cached: r.cached } : {}),
      ...(r.uncached && r.uncached.fd <= cap ? { uncached: r.uncached } : {}),
    });
    const scatter = (keep: (p: FrontierPlan) => boolean) =>
      plans.filter((p) => keep(p) && p.quality.fd <= cap).map((p) => ({
        x: timeOf(p),
        y: p.quality.fd,
      }));
    await writeFileAtomic(
      `${out}/frontier_${solver}.svg`,
      speedQualitySvg([
        {
          name: "best within the deadline, caching allowed",
          points: stepSeries(rows.map(shown), "cached"),
        },
        {
          name: "best within the deadline, no caching",
          points: stepSeries(rows.map(shown), "uncached").map(({ x, y }) => ({ x, y })),
          dashed: true,
        },
        { name: "cached plans", points: scatter(isCached), line: false },
        { name: "uncached plans", points: scatter((p) => !isCached(p)), line: false },
      ], {
        title:
          `${f.model} ${solver}: best measured FD within a deadline (${f.prompts.count} prompts)`,
        xLabel: "deadline = measured time per image, ms (log scale; wasm, guided, one image)",
        yLabel: "FD to real images (lower is better)",
        xLog: true,
        width: 900,
        height: 460,
      }),
    );
    summary[solver] = {
      machine: f.measured.machine,
      command: f.measured.command,
      prompts: f.prompts.count,
      deadlines: rows,
      isoQuality: iso,
      largestIsoQualitySpeedup: best ?? null,
    };
  }
  await writeFileAtomic(`${out}/frontier.json`, JSON.stringify(summary, null, 1) + "\n");
}

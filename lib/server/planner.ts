/**
 * The HTTP side of planning: a request's deadline from its body or headers, and `Retry-After`.
 * The planner itself is pure and lives in lib/planning/planner.ts (re-exported here), so the CLI
 * and the cron jobs use it without the server.
 *
 * @module
 */
export {
  type Candidate,
  type ChosenPlan,
  type PlanOutcome,
  type PlanReason,
  type PlanRequest,
  planRequest,
} from "../planning/planner.ts";

/** Where a deadline came from. */
export type DeadlineSource = "deadline_ms" | "Request-Timeout" | "Prefer" | "default";

/** A resolved deadline, or the field that made it invalid. */
export type DeadlineOutcome =
  | { ok: true; ms: number; source: DeadlineSource }
  | { ok: false; param: string; message: string };

function parseSeconds(raw: string): number | null {
  const t = raw.trim();
  if (!/^\d+(\.\d+)?$/.test(t)) return null;
  return Number(t) * 1000;
}

/**
 * The request's deadline in ms after its arrival: `deadline_ms` from the body, else the
 * `Request-Timeout` header (seconds), else `Prefer: wait=N` (seconds), else the default.
 */
export function resolveDeadline(src: {
  bodyMs?: number;
  requestTimeout?: string | null;
  prefer?: string | null;
  defaultMs: number;
  maxMs: number;
}): DeadlineOutcome {
  const check = (ms: number | null, param: string, raw: string, unit: string): DeadlineOutcome => {
    if (ms === null || ms <= 0 || ms > src.maxMs) {
      return {
        ok: false,
        param,
        message: `${param} must be a positive number of ${unit} up to ${
          unit === "seconds" ? src.maxMs / 1000 : src.maxMs
        }, got "${raw}"`,
      };
    }
    return { ok: true, ms, source: param as DeadlineSource };
  };
  if (src.bodyMs !== undefined) {
    return check(src.bodyMs, "deadline_ms", String(src.bodyMs), "milliseconds");
  }
  if (src.requestTimeout != null) {
    return check(
      parseSeconds(src.requestTimeout),
      "Request-Timeout",
      src.requestTimeout,
      "seconds",
    );
  }
  if (src.prefer != null) {
    for (const part of src.prefer.split(/[,;]/)) {
      const m = /^\s*wait\s*=\s*"?([^"]*)"?\s*$/i.exec(part);
      if (m) return check(parseSeconds(m[1]), "Prefer", m[1], "seconds");
    }
  }
  return { ok: true, ms: src.defaultMs, source: "default" };
}

/** `Retry-After` seconds for a wait of `ms` (at least 1). */
export function retryAfterSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

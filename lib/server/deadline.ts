/**
 * A request's deadline: how long after its arrival the answer is due. Three sources, first found
 * wins:
 *
 * 1. the body's `deadline_ms` (an API field: a bad value is a 400 naming it);
 * 2. the `Request-Timeout` header in seconds (a header this service documents: a bad value is a
 *    400 naming it, with the same limit as `deadline_ms`);
 * 3. `Prefer: wait=N` in seconds (RFC 7240 §4.3). A preference is a hint, never an error (RFC
 *    7240 §2: a server ignores preferences it cannot use): an unusable value (`wait=0`, `wait=abc`)
 *    is ignored, one above the service's limit is clamped to it, and a used one is echoed in
 *    `Preference-Applied`.
 *
 * Otherwise the service's default applies. Pure functions.
 *
 * @module
 */

/** Where a deadline came from. */
export type DeadlineSource = "deadline_ms" | "Request-Timeout" | "Prefer" | "default";

/** A resolved deadline, or the field that made it invalid. */
export type DeadlineOutcome =
  | {
    ok: true;
    ms: number;
    source: DeadlineSource;
    /** The `Preference-Applied` header value when `Prefer: wait` was used. */
    preferenceApplied?: string;
  }
  | { ok: false; param: string; message: string };

/** What {@link resolveDeadline} reads. */
export interface DeadlineInputs {
  /** The body's `deadline_ms` as sent (validated here). */
  bodyMs?: unknown;
  requestTimeout?: string | null;
  prefer?: string | null;
  defaultMs: number;
  maxMs: number;
}

/** Seconds as sent in a header (`12`, `1.5`), in ms; null when not a plain non-negative number. */
function headerSeconds(raw: string): number | null {
  const t = raw.trim();
  return /^\d+(\.\d+)?$/.test(t) ? Number(t) * 1000 : null;
}

/** The limit as every message states it, in the unit of the field that broke it. */
function limitText(maxMs: number, unit: "ms" | "s"): string {
  return unit === "ms"
    ? `between 1 and ${maxMs} ms (${maxMs / 1000} s)`
    : `between 0.001 and ${maxMs / 1000} s (1 to ${maxMs} ms)`;
}

/** The `wait` preference's raw value, or undefined when `Prefer` has none (RFC 7240 grammar). */
export function preferWait(prefer: string): string | undefined {
  for (const part of prefer.split(",")) {
    const m = /^\s*wait\s*=\s*("?)([^";]*)\1\s*(?:;.*)?$/i.exec(part);
    if (m) return m[2];
  }
  return undefined;
}

/** Resolves a request's deadline (see the module doc). */
export function resolveDeadline(src: DeadlineInputs): DeadlineOutcome {
  const { maxMs } = src;
  if (src.bodyMs !== undefined && src.bodyMs !== null) {
    const v = src.bodyMs;
    if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > maxMs) {
      return {
        ok: false,
        param: "deadline_ms",
        message: `deadline_ms must be an integer ${limitText(maxMs, "ms")}, got ${
          JSON.stringify(v)?.slice(0, 40)
        }`,
      };
    }
    return { ok: true, ms: v, source: "deadline_ms" };
  }
  if (src.requestTimeout != null) {
    const ms = headerSeconds(src.requestTimeout);
    if (ms === null || ms < 1 || ms > maxMs) {
      return {
        ok: false,
        param: "Request-Timeout",
        message: `Request-Timeout must be a number of seconds ${limitText(maxMs, "s")}, got "${
          src.requestTimeout.slice(0, 40)
        }"`,
      };
    }
    return { ok: true, ms, source: "Request-Timeout" };
  }
  if (src.prefer != null) {
    const raw = preferWait(src.prefer);
    const ms = raw === undefined ? null : headerSeconds(raw);
    if (ms !== null && ms >= 1) {
      const used = Math.min(ms, maxMs);
      return {
        ok: true,
        ms: used,
        source: "Prefer",
        preferenceApplied: `wait=${Number((used / 1000).toFixed(3))}`,
      };
    }
  }
  return { ok: true, ms: src.defaultMs, source: "default" };
}

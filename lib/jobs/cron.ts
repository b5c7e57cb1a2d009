/**
 * Cron expressions exactly as `Deno.cron` reads them, so a jobs file is checked before any model
 * loads. Deno 2.9's parser (denoland/deno `ext/cron/cron.rs`, which replaced the `saffron` crate
 * and keeps its behaviour) is ported rule for rule:
 *
 * - five fields separated by spaces or tabs, nothing before or after, no other whitespace;
 * - minute 0-59, hour 0-23, day of month 1-31, month 1-12 or JAN-DEC, day of week **1-7 with
 *   1 = Sunday and 7 = Saturday** (saffron's numbering, so `0` is refused and `1` is not Monday)
 *   or SUN-SAT; numbers have at most two digits;
 * - each field: `*` or a comma list of `N`, `A-B`, `*`/`N`/`A-B` followed by `/S` (S from 1 to
 *   59, 23, 30, 11, 6 for the five fields); `N/S` runs from N to the field's end; a range whose
 *   start is after its end wraps around (and, as in saffron, also takes the value before its
 *   start when it has no step);
 * - day of month may instead be `L`, `LW`, `L-N` or `L-NW` (N 1-30) or `NW` (N 1-31, the closest
 *   weekday); day of week may be `L` (Saturday), `<day>L` (its last one in the month) or
 *   `<day>#k` (its k-th, k 1-5);
 * - when both day fields are restricted, a day matches either (Vixie cron's rule); times are UTC.
 *
 * Deno refuses a malformed expression when the cron is registered ("Invalid cron schedule"), but
 * one that parses and **never fires** (no matching minute in the next 36,600 days, e.g.
 * `0 0 31 2 *`) makes Deno's scheduler loop panic and the process die. {@link cronError} reports
 * both; {@link nextCronTime} is Deno's `next_after`.
 *
 * @module
 */

/** How far ahead Deno's `next_after` looks for a matching minute (days). */
export const CRON_SEARCH_DAYS = 366 * 100;

interface FieldSpec {
  name: string;
  min: number;
  max: number;
  maxStep: number;
  /** What the field takes, for messages. */
  syntax: string;
}

const MINUTE: FieldSpec = {
  name: "minute",
  min: 0,
  max: 59,
  maxStep: 59,
  syntax: "0-59",
};
const HOUR: FieldSpec = { name: "hour", min: 0, max: 23, maxStep: 23, syntax: "0-23" };
const DAY_OF_MONTH: FieldSpec = {
  name: "day of month",
  min: 1,
  max: 31,
  maxStep: 30,
  syntax: "1-31, L, LW, L-N, L-NW or NW",
};
const MONTH: FieldSpec = {
  name: "month",
  min: 1,
  max: 12,
  maxStep: 11,
  syntax: "1-12 or JAN-DEC",
};
const DAY_OF_WEEK: FieldSpec = {
  name: "day of week",
  min: 0,
  max: 6,
  maxStep: 6,
  syntax: "1-7 where 1 is Sunday and 7 Saturday (Deno.cron's numbering: 0 is refused), " +
    "or SUN-SAT; also L, <day>L, <day>#1-5",
};

const MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const WEEKDAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/** The parsed days-of-month field. */
type DaysOfMonth =
  | { kind: "any" }
  | { kind: "days"; bits: bigint }
  | { kind: "last"; offset: number; weekday: boolean }
  | { kind: "closestWeekday"; day: number };

/** The parsed days-of-week field (0 = Sunday). */
type DaysOfWeek =
  | { kind: "any" }
  | { kind: "days"; bits: bigint }
  | { kind: "last"; day: number }
  | { kind: "nth"; day: number; nth: number };

/** A parsed cron expression: bit sets per field (bit n = value n). */
export interface CronSchedule {
  minutes: bigint;
  hours: bigint;
  daysOfMonth: DaysOfMonth;
  months: bigint;
  daysOfWeek: DaysOfWeek;
}

/** A cron expression Deno refuses; `message` says which part and why. */
export class CronSyntaxError extends Error {
  override name = "CronSyntaxError";
}

class Bad extends Error {}

function parseNumber(input: string, min: number, max: number): number {
  if (!/^\d{1,2}$/.test(input)) throw new Bad();
  const v = Number(input);
  if (v < min || v > max) throw new Bad();
  return v;
}

function parseValue(input: string, f: FieldSpec): number {
  const upper = input.toUpperCase();
  if (f === MONTH) {
    const k = MONTHS.indexOf(upper);
    return k >= 0 ? k + 1 : parseNumber(input, 1, 12);
  }
  if (f === DAY_OF_WEEK) {
    const k = WEEKDAYS.indexOf(upper);
    if (k >= 0) return k;
    const n = parseNumber(input, 1, 7); // saffron: 1 = Sunday … 7 = Saturday
    return n === 7 ? 6 : n - 1;
  }
  return parseNumber(input, f.min, f.max);
}

function bitRange(start: number, end: number): bigint {
  let bits = 0n;
  for (let v = start; v <= end; v++) bits |= 1n << BigInt(v);
  return bits;
}

function parsePart(input: string, f: FieldSpec): bigint {
  const slash = input.indexOf("/");
  const base = slash < 0 ? input : input.slice(0, slash);
  const step = slash < 0 ? undefined : parseNumber(input.slice(slash + 1), 1, f.maxStep);
  let start: number, end: number;
  const dash = base.indexOf("-");
  if (base === "*") [start, end] = [f.min, f.max];
  else if (dash >= 0) {
    [start, end] = [parseValue(base.slice(0, dash), f), parseValue(base.slice(dash + 1), f)];
  } else {
    start = parseValue(base, f);
    end = step === undefined ? start : f.max;
  }
  if (step === undefined) {
    // saffron takes one value before the start of a plain wrap-around range
    return start <= end ? bitRange(start, end) : bitRange(start - 1, f.max) | bitRange(f.min, end);
  }
  const values: number[] = [];
  if (start <= end) { for (let v = start; v <= end; v++) values.push(v); }
  else {
    for (let v = start; v <= f.max; v++) values.push(v);
    for (let v = f.min; v <= end; v++) values.push(v);
  }
  let bits = 0n;
  for (let i = 0; i < values.length; i += step) bits |= 1n << BigInt(values[i]);
  return bits;
}

function parseField(input: string, f: FieldSpec): bigint {
  if (input === "*") return bitRange(f.min, f.max);
  let bits = 0n;
  for (const part of input.split(",")) {
    if (part === "") throw new Bad();
    bits |= parsePart(part, f);
  }
  if (bits === 0n) throw new Bad();
  return bits;
}

function parseDaysOfMonth(input: string): DaysOfMonth {
  if (input === "*") return { kind: "any" };
  if (input === "L") return { kind: "last", offset: 0, weekday: false };
  if (input === "LW") return { kind: "last", offset: 0, weekday: true };
  if (input.startsWith("L-")) {
    const rest = input.slice(2);
    const weekday = rest.endsWith("W");
    return {
      kind: "last",
      offset: parseNumber(weekday ? rest.slice(0, -1) : rest, 1, 30),
      weekday,
    };
  }
  if (input.endsWith("W")) {
    return { kind: "closestWeekday", day: parseNumber(input.slice(0, -1), 1, 31) };
  }
  return { kind: "days", bits: parseField(input, DAY_OF_MONTH) };
}

function parseDaysOfWeek(input: string): DaysOfWeek {
  if (input === "*") return { kind: "any" };
  if (input === "L") return { kind: "days", bits: 1n << 6n };
  if (input.endsWith("L")) {
    return { kind: "last", day: parseValue(input.slice(0, -1), DAY_OF_WEEK) };
  }
  const hash = input.indexOf("#");
  if (hash >= 0) {
    return {
      kind: "nth",
      day: parseValue(input.slice(0, hash), DAY_OF_WEEK),
      nth: parseNumber(input.slice(hash + 1), 1, 5),
    };
  }
  return { kind: "days", bits: parseField(input, DAY_OF_WEEK) };
}

/** Parses `expr` with Deno.cron's rules; throws {@link CronSyntaxError} naming the bad part. */
export function parseCron(expr: string): CronSchedule {
  if (/^\p{White_Space}|\p{White_Space}$/u.test(expr)) {
    throw new CronSyntaxError("has whitespace before or after it");
  }
  if (/[\n\f\r]/.test(expr)) {
    throw new CronSyntaxError("contains a line break (fields are separated by spaces or tabs)");
  }
  const fields = expr.split(/[ \t]/).filter((f) => f !== "");
  if (fields.length !== 5) {
    throw new CronSyntaxError(
      `needs 5 fields (minute hour day-of-month month day-of-week), got ${fields.length}`,
    );
  }
  const parse = <T>(i: number, f: FieldSpec, fn: (s: string) => T): T => {
    try {
      return fn(fields[i]);
    } catch (e) {
      if (!(e instanceof Bad)) throw e;
      throw new CronSyntaxError(`${f.name} field "${fields[i]}" is not valid: use ${f.syntax}`);
    }
  };
  return {
    minutes: parse(0, MINUTE, (s) => parseField(s, MINUTE)),
    hours: parse(1, HOUR, (s) => parseField(s, HOUR)),
    daysOfMonth: parse(2, DAY_OF_MONTH, parseDaysOfMonth),
    months: parse(3, MONTH, (s) => parseField(s, MONTH)),
    daysOfWeek: parse(4, DAY_OF_WEEK, parseDaysOfWeek),
  };
}

const has = (bits: bigint, v: number) => (bits & (1n << BigInt(v))) !== 0n;

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** The weekday closest to `day` in the month (never leaving it), or undefined for no such day. */
function closestWeekday(year: number, month: number, day: number): number | undefined {
  const dim = daysInMonth(year, month);
  if (day === 0 || day > dim) return undefined;
  const weekday = new Date(Date.UTC(year, month - 1, day)).getUTCDay();
  if (weekday === 6) return day === 1 ? day + 2 : day - 1;
  if (weekday === 0) return day === dim ? day - 2 : day + 1;
  return day;
}

function domContains(d: DaysOfMonth, date: Date): boolean {
  const y = date.getUTCFullYear(), m = date.getUTCMonth() + 1, day = date.getUTCDate();
  switch (d.kind) {
    case "any":
      return true;
    case "days":
      return has(d.bits, day);
    case "last": {
      const target = daysInMonth(y, m) - d.offset;
      if (target <= 0) return false;
      return d.weekday ? day === closestWeekday(y, m, target) : day === target;
    }
    case "closestWeekday":
      return day === closestWeekday(y, m, d.day);
  }
}

function dowContains(d: DaysOfWeek, date: Date): boolean {
  const weekday = date.getUTCDay(), day = date.getUTCDate();
  switch (d.kind) {
    case "any":
      return true;
    case "days":
      return has(d.bits, weekday);
    case "last": {
      const dim = daysInMonth(date.getUTCFullYear(), date.getUTCMonth() + 1);
      return weekday === d.day && day + 7 > dim;
    }
    case "nth":
      return weekday === d.day && Math.floor((day - 1) / 7) + 1 === d.nth;
  }
}

function matchesDay(s: CronSchedule, date: Date): boolean {
  const domAny = s.daysOfMonth.kind === "any", dowAny = s.daysOfWeek.kind === "any";
  if (domAny && dowAny) return true;
  if (domAny) return dowContains(s.daysOfWeek, date);
  if (dowAny) return domContains(s.daysOfMonth, date);
  return domContains(s.daysOfMonth, date) || dowContains(s.daysOfWeek, date);
}

const MINUTE_MS = 60_000, HOUR_MS = 3_600_000, DAY_MS = 86_400_000;

/**
 * The first minute after `after` that `schedule` matches, searching {@link CRON_SEARCH_DAYS} days
 * as Deno does; undefined when none does (Deno then panics).
 */
export function nextCronTime(schedule: CronSchedule | string, after: Date): Date | undefined {
  const s = typeof schedule === "string" ? parseCron(schedule) : schedule;
  let t = Math.floor(after.getTime() / MINUTE_MS) * MINUTE_MS + MINUTE_MS;
  const end = t + CRON_SEARCH_DAYS * DAY_MS;
  const startOfDay = (ms: number) => Math.floor(ms / DAY_MS) * DAY_MS;
  while (t <= end) {
    const d = new Date(t);
    const monthOk = has(s.months, d.getUTCMonth() + 1);
    const dayOk = monthOk && matchesDay(s, d);
    const hourOk = dayOk && has(s.hours, d.getUTCHours());
    if (hourOk && has(s.minutes, d.getUTCMinutes())) return d;
    if (!monthOk) {
      // the first of the next month the schedule takes
      let y = d.getUTCFullYear(), m = d.getUTCMonth() + 2;
      for (;; m++) {
        if (m > 12) [y, m] = [y + 1, 1];
        if (has(s.months, m)) break;
      }
      t = Date.UTC(y, m - 1, 1);
    } else if (!dayOk) t = startOfDay(t) + DAY_MS;
    else if (!hourOk) {
      let h = d.getUTCHours();
      while (h <= 23 && !has(s.hours, h)) h++;
      t = h <= 23 ? startOfDay(t) + h * HOUR_MS : startOfDay(t) + DAY_MS;
    } else {
      let m = d.getUTCMinutes();
      while (m <= 59 && !has(s.minutes, m)) m++;
      t = m <= 59
        ? Math.floor(t / HOUR_MS) * HOUR_MS + m * MINUTE_MS
        : Math.floor(t / HOUR_MS) * HOUR_MS + HOUR_MS;
    }
  }
  return undefined;
}

/**
 * Why `Deno.cron` would refuse `expr` ("Invalid cron schedule") or die on it (an expression that
 * never fires), as a phrase to follow the quoted expression (`is refused by Deno.cron: minute …`,
 * `never fires (…)`), or null when Deno runs it. `now` is where the search for a firing time
 * starts.
 */
export function cronError(expr: string, now: Date = new Date()): string | null {
  let schedule: CronSchedule;
  try {
    schedule = parseCron(expr);
  } catch (e) {
    if (e instanceof CronSyntaxError) return `is refused by Deno.cron: ${e.message}`;
    throw e;
  }
  if (nextCronTime(schedule, now) === undefined) {
    return `never fires (no date in the next ${CRON_SEARCH_DAYS / 366} years matches it, ` +
      "e.g. day 30 or 31 of February or day 31 of a 30-day month); Deno.cron would crash on it";
  }
  return null;
}

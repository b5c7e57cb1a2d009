/**
 * A small, strict flag parser for the CLIs: `--name value` and `--name=value`, known flags only,
 * typed values, and errors that name the flag. CLIs print the message and exit 2; no stack traces.
 *
 * @module
 */

/** How one flag is read. */
export type FlagKind = "string" | "int" | "number" | "boolean";

/** Raised for bad command lines; `message` is fit to print as is. */
export class UsageError extends Error {}

/** Parsed flags plus the positional arguments. */
export interface Parsed {
  flags: Record<string, string | number | boolean>;
  positional: string[];
}

/** Parses `args` against `spec` (flag name without dashes → kind). */
export function parseFlags(args: string[], spec: Record<string, FlagKind>): Parsed {
  const flags: Record<string, string | number | boolean> = {};
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (!arg.startsWith("--")) {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const kind = spec[name];
    if (!kind) throw new UsageError(`unknown flag --${name}`);
    if (kind === "boolean") {
      flags[name] = eq < 0 ? true : arg.slice(eq + 1) !== "false";
      continue;
    }
    let raw: string | undefined = eq < 0 ? args[++i] : arg.slice(eq + 1);
    if (raw === undefined || (eq < 0 && raw.startsWith("--"))) {
      throw new UsageError(`flag --${name} needs a value`);
    }
    raw = raw.trim();
    flags[name] = convert(name, kind, raw);
  }
  return { flags, positional };
}

/** Converts one raw value, naming the flag (or field) when it does not fit. */
export function convert(name: string, kind: FlagKind, raw: string): string | number | boolean {
  if (kind === "int") {
    if (!/^-?\d+$/.test(raw)) throw new UsageError(`--${name} must be an integer, got "${raw}"`);
    return Number(raw);
  }
  if (kind === "number") {
    const n = Number(raw);
    if (raw === "" || !Number.isFinite(n)) {
      throw new UsageError(`--${name} must be a number, got "${raw}"`);
    }
    return n;
  }
  if (kind === "boolean") return raw !== "false";
  return raw;
}

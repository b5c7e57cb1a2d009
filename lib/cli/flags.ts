/**
 * The command lines of every tool (`generate`, `calibrate`, `evaluate`, `frontier`, `manifest`,
 * `split`, `bench`, `thumbnails`, `compile`, `build`): `node:util` `parseArgs` in strict mode,
 * plus typed values and errors that name the flag. Every command answers `--help` / `-h` with
 * its usage (exit 0) and a bad command line with one message naming the flag (exit 2; the usage
 * follows when the flag itself is unknown or lacks its value). No stack traces.
 *
 * @module
 */
import { parseArgs } from "node:util";

/** How one flag is read. */
export type FlagKind = "string" | "int" | "number" | "boolean";

/** Raised for bad command lines; `message` is fit to print as is. */
export class UsageError extends Error {
  override name = "UsageError";
  /**
   * `showUsage`: print the command's usage after the message (unknown flags, missing values,
   * stray arguments: the user needs the list of what the command takes).
   */
  constructor(message: string, readonly showUsage = false) {
    super(message);
  }
}

/** Parsed flags plus the positional arguments. */
export interface Parsed {
  flags: Record<string, string | number | boolean>;
  positional: string[];
  /** `--help` or `-h` was given (every command takes it). */
  help: boolean;
}

/** The option name parseArgs' error message quotes (`'--colour'`, `'-x'`, `'-h, --help'`). */
function quotedOption(message: string): string {
  const m = /'([^']+)'/.exec(message);
  const name = m ? m[1].split(", ").at(-1)!.split(" ")[0] : "";
  return name || "(flag)";
}

/**
 * Parses `args` against `spec` (flag name without dashes → kind): `--name value`,
 * `--name=value`, booleans as `--name`; `--help`/`-h` are always known. A negative number after a
 * numeric flag (`--seed -1`) is its value. Throws {@link UsageError} naming the flag.
 */
export function parseFlags(args: string[], spec: Record<string, FlagKind>): Parsed {
  if ("help" in spec) {
    // --help is read into Parsed.help, never into flags: a spec naming it would be silently dead
    throw new Error("parseFlags: --help/-h is built in; read Parsed.help instead of declaring it");
  }
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = {
    help: { type: "boolean", short: "h" },
  };
  for (const [name, kind] of Object.entries(spec)) {
    options[name] = { type: kind === "boolean" ? "boolean" : "string" };
  }
  // parseArgs reads "-1" as a flag; for numeric flags it is the value.
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const kind = args[i].startsWith("--") ? spec[args[i].slice(2)] : undefined;
    if ((kind === "int" || kind === "number") && /^-[\d.]/.test(args[i + 1] ?? "")) {
      joined.push(`${args[i]}=${args[++i]}`);
    } else joined.push(args[i]);
  }
  let values: Record<string, string | boolean | undefined>, positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: joined,
      options,
      strict: true,
      allowPositionals: true,
    }) as { values: Record<string, string | boolean | undefined>; positionals: string[] });
  } catch (e) {
    const code = (e as { code?: string }).code;
    const message = (e as Error).message;
    const flag = quotedOption(message);
    if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
      // a request field's API name (--negative_prompt) where the CLI has a shorter flag
      const short = Object.entries(REQUEST_FLAGS).find(([f, field]) =>
        f !== field && `--${field}` === flag && f in spec
      )?.[0];
      throw new UsageError(
        `unknown flag ${flag}${short ? ` (the request field ${flag.slice(2)} is --${short})` : ""}`,
        true,
      );
    }
    if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") {
      throw new UsageError(
        /does not take an argument/.test(message)
          ? `flag ${flag} takes no value`
          : `flag ${flag} needs a value`,
        true,
      );
    }
    throw new UsageError(message, true);
  }
  const flags: Record<string, string | number | boolean> = {};
  for (const [name, raw] of Object.entries(values)) {
    if (name === "help" || raw === undefined) continue;
    flags[name] = typeof raw === "boolean" ? raw : convert(name, spec[name], raw.trim());
  }
  return { flags, positional: positionals, help: values.help === true };
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

/** Throws a {@link UsageError} (with the usage) for the first positional argument, if any. */
export function noPositionals(positional: string[]): void {
  if (positional.length) throw new UsageError(`unexpected argument "${positional[0]}"`, true);
}

/**
 * The text a command prints for a bad command line: `<command>: <message>`, then the usage when
 * the error asks for it.
 */
export function usageMessage(command: string, usage: string, e: UsageError): string {
  return `${command}: ${e.message}${e.showUsage ? `\n${usage}` : ""}`;
}

/** The image-request flags of the CLIs and the request fields (lib/pipeline/request.ts) they set. */
export const REQUEST_FLAGS = {
  prompt: "prompt",
  negative: "negative_prompt",
  seed: "seed",
  steps: "steps",
  guidance: "guidance_scale",
  solver: "solver",
  cache: "cache",
} as const;

/** The request fields the given flags set (absent flags are left out). */
export function requestFields(
  flags: Record<string, string | number | boolean | undefined>,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [flag, field] of Object.entries(REQUEST_FLAGS)) {
    if (flags[flag] !== undefined) out[field] = flags[flag];
  }
  return out;
}

/**
 * A request field's problem as a flag's: `guidance_scale must be …` → `--guidance must be …`
 * (`field` is the request field the message starts with).
 */
export function flagProblem(field: string, message: string): string {
  const flag = Object.entries(REQUEST_FLAGS).find(([, f]) => f === field)?.[0] ?? field;
  return message.startsWith(`${field} `)
    ? `--${flag}${message.slice(field.length)}`
    : `--${flag}: ${message}`;
}

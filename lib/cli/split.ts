/**
 * `deno task split <model.onnx> --out <dir> [--mode residual|output]
 * [--quantize fp32|fp16|int8|uint8] [--blocks <regex>] [--external-threshold-mb <n>]`
 *
 * Cuts a monolithic UNet ONNX export into a block-split plan folder (see `lib/onnx/split.ts`).
 * Bad flags exit with code 2 and a message naming the flag; a model the splitter refuses exits
 * with code 1 and the reason. No stack traces.
 *
 * @module
 */

import type { CacheMode } from "../unet/plan.ts";
import type { Precision } from "../onnx/quantize.ts";
import { DEFAULT_BLOCK_PATTERN, splitModel, SplitError } from "../onnx/split.ts";

/** Parsed command line of the split tool. */
export interface SplitArgs {
  model: string;
  out: string;
  mode: CacheMode;
  precision: Precision;
  blockPattern: string;
  externalThreshold?: number;
}

/** A command-line mistake; the message names the flag. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Usage text. */
export const USAGE = `usage: deno task split <model.onnx> --out <dir> [options]

  --out <dir>                 plan folder to write (an earlier plan there is replaced)
  --mode residual|output      cache the block residual (default) or the whole block output
  --quantize fp32|fp16|int8|uint8
                              weight precision of the segment files (default fp32)
  --blocks <regex>            module paths of the cacheable blocks
                              (default ${DEFAULT_BLOCK_PATTERN})
  --external-threshold-mb <n> segments with more weight bytes than this keep them in a
                              .weights file beside the .onnx (default 1536)
`;

const MODES = ["residual", "output"];
const PRECISIONS = ["fp32", "fp16", "int8", "uint8"];

/** Parses the split tool's arguments; throws {@link UsageError} naming the bad flag. */
export function parseSplitArgs(args: string[]): SplitArgs {
  const positional: string[] = [];
  const flags = new Map<string, string>();
  const known = new Set(["out", "mode", "quantize", "blocks", "external-threshold-mb"]);
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--help" || a === "-h") throw new UsageError("");
    if (!a.startsWith("--")) {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf("=");
    const name = a.slice(2, eq < 0 ? undefined : eq);
    if (!known.has(name)) throw new UsageError(`unknown flag --${name}`);
    let value: string | undefined = eq < 0 ? undefined : a.slice(eq + 1);
    if (value === undefined) {
      value = args[++i];
      if (value === undefined || value.startsWith("--")) throw new UsageError(`flag --${name} needs a value`);
    }
    if (flags.has(name)) throw new UsageError(`flag --${name} given twice`);
    flags.set(name, value);
  }
  if (positional.length === 0) throw new UsageError("missing the model file (<model.onnx>)");
  if (positional.length > 1) throw new UsageError(`one model file expected, got: ${positional.join(" ")}`);
  const out = flags.get("out");
  if (!out) throw new UsageError("flag --out is required (the plan folder to write)");
  const mode = flags.get("mode") ?? "residual";
  if (!MODES.includes(mode)) throw new UsageError(`flag --mode must be residual or output, got ${mode}`);
  const precision = flags.get("quantize") ?? "fp32";
  if (!PRECISIONS.includes(precision)) {
    throw new UsageError(`flag --quantize must be one of ${PRECISIONS.join(", ")}, got ${precision}`);
  }
  const blockPattern = flags.get("blocks") ?? DEFAULT_BLOCK_PATTERN;
  try {
    new RegExp(blockPattern);
  } catch (e) {
    throw new UsageError(`flag --blocks is not a valid regular expression: ${(e as Error).message}`);
  }
  const parsed: SplitArgs = {
    model: positional[0],
    out,
    mode: mode as CacheMode,
    precision: precision as Precision,
    blockPattern,
  };
  const mb = flags.get("external-threshold-mb");
  if (mb !== undefined) {
    const n = Number(mb);
    if (!Number.isFinite(n) || n <= 0) {
      throw new UsageError(`flag --external-threshold-mb must be a positive number, got ${mb}`);
    }
    parsed.externalThreshold = n * 1024 * 1024;
  }
  return parsed;
}

/** Runs the tool; returns the exit code (0 ok, 1 refused, 2 bad usage). */
export async function main(
  args: string[],
  out: (line: string) => void = console.log,
  err: (line: string) => void = console.error,
): Promise<number> {
  let parsed: SplitArgs;
  try {
    parsed = parseSplitArgs(args);
  } catch (e) {
    if (e instanceof UsageError) {
      if (e.message) err(`error: ${e.message}`);
      err(USAGE);
      return 2;
    }
    throw e;
  }
  try {
    const { plan, dir } = await splitModel(parsed.model, {
      out: parsed.out,
      mode: parsed.mode,
      precision: parsed.precision,
      blockPattern: parsed.blockPattern,
      externalThreshold: parsed.externalThreshold,
      log: out,
    });
    const blocks = plan.segments.filter((s) => s.kind === "block").length;
    out(`wrote ${dir}: ${plan.segments.length} segments, ${blocks} cacheable blocks (${plan.mode}, ${plan.precision})`);
    return 0;
  } catch (e) {
    err(`error: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}

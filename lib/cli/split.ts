/**
 * `deno task split <model.onnx> --out <dir> [--mode residual|output]
 * [--quantize fp32|fp16|int8|uint8] [--blocks <regex>] [--external-threshold-mb <n>]`
 *
 * Cuts a monolithic UNet ONNX export into a block-split split folder (see `lib/onnx/split.ts`).
 * `--help` prints the usage; bad flags exit with code 2 and a message naming the flag; a model the
 * splitter refuses exits with code 1 and the reason. No stack traces.
 *
 * @module
 */

import { cacheableBlocks, type CacheMode } from "../unet/split_manifest.ts";
import type { Precision } from "../onnx/quantize.ts";
import { DEFAULT_BLOCK_PATTERN, splitModel } from "../onnx/split.ts";
import { type FlagKind, parseFlags, UsageError, usageMessage } from "./flags.ts";

export { UsageError };

/** Parsed command line of the split tool. */
export interface SplitArgs {
  model: string;
  out: string;
  mode: CacheMode;
  precision: Precision;
  blockPattern: string;
  externalThreshold?: number;
}

/** Usage text. */
export const USAGE = `usage: deno task split <model.onnx> --out <dir> [options]

  --out <dir>                 split folder to write (an earlier manifest there is replaced)
  --mode residual|output      cache the block residual (default) or the whole block output
  --quantize fp32|fp16|int8|uint8
                              weight precision of the segment files (default fp32)
  --blocks <regex>            module paths of the cacheable blocks
                              (default ${DEFAULT_BLOCK_PATTERN})
  --external-threshold-mb <n> segments with more weight bytes than this keep them in a
                              .weights file beside the .onnx (default 1536)
  -h, --help                  this text`;

const MODES = ["residual", "output"];
const PRECISIONS = ["fp32", "fp16", "int8", "uint8"];

const FLAGS: Record<string, FlagKind> = {
  out: "string",
  mode: "string",
  quantize: "string",
  blocks: "string",
  "external-threshold-mb": "number",
};

/** Parses the split tool's arguments; throws {@link UsageError} naming the bad flag. */
export function parseSplitArgs(args: string[]): SplitArgs {
  const { flags, positional } = parseFlags(args, FLAGS);
  if (positional.length === 0) throw new UsageError("missing the model file (<model.onnx>)", true);
  if (positional.length > 1) {
    throw new UsageError(`one model file expected, got: ${positional.join(" ")}`, true);
  }
  const out = flags.out as string | undefined;
  if (!out) throw new UsageError("flag --out is required (the split folder to write)", true);
  const mode = (flags.mode as string | undefined) ?? "residual";
  if (!MODES.includes(mode)) {
    throw new UsageError(`--mode must be residual or output, got "${mode}"`);
  }
  const precision = (flags.quantize as string | undefined) ?? "fp32";
  if (!PRECISIONS.includes(precision)) {
    throw new UsageError(`--quantize must be one of ${PRECISIONS.join(", ")}, got "${precision}"`);
  }
  const blockPattern = (flags.blocks as string | undefined) ?? DEFAULT_BLOCK_PATTERN;
  try {
    new RegExp(blockPattern);
  } catch (e) {
    throw new UsageError(`--blocks is not a valid regular expression: ${(e as Error).message}`);
  }
  const parsed: SplitArgs = {
    model: positional[0],
    out,
    mode: mode as CacheMode,
    precision: precision as Precision,
    blockPattern,
  };
  const mb = flags["external-threshold-mb"] as number | undefined;
  if (mb !== undefined) {
    if (mb <= 0) throw new UsageError(`--external-threshold-mb must be positive, got ${mb}`);
    parsed.externalThreshold = mb * 1024 * 1024;
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
    if (parseFlags(args, FLAGS).help) return (out(USAGE), 0);
    parsed = parseSplitArgs(args);
  } catch (e) {
    if (e instanceof UsageError) {
      err(usageMessage("split", USAGE, e));
      return 2;
    }
    throw e;
  }
  try {
    const { manifest, dir } = await splitModel(parsed.model, {
      out: parsed.out,
      mode: parsed.mode,
      precision: parsed.precision,
      blockPattern: parsed.blockPattern,
      externalThreshold: parsed.externalThreshold,
      log: out,
    });
    const blocks = cacheableBlocks(manifest).length;
    out(
      `wrote ${dir}: ${manifest.segments.length} segments, ${blocks} cacheable blocks (${manifest.mode}, ${manifest.precision})`,
    );
    return 0;
  } catch (e) {
    err(`split: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}

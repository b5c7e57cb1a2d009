/**
 * The block-split UNet manifest: the manifest `deno task split` writes beside the segment files and
 * the engine reads. It is the only contract between the offline graph tools (`lib/onnx/`) and the
 * serving path (`lib/unet/`), so it lives here as plain data types with a validator.
 *
 * @module
 */

/** Element types a manifest's tensors may have (ONNX names, lower-case). */
export type TensorDType =
  | "float32"
  | "float16"
  | "int64"
  | "int32"
  | "bool"
  | "int8"
  | "uint8"
  | "float64";

/**
 * A named tensor at a segment boundary. Symbolic dimensions are strings (e.g. `"batch"`); a
 * dimension the splitter could not derive is `"?"`.
 */
export interface TensorSpec {
  name: string;
  dtype: TensorDType;
  shape: (number | string)[];
  /** Set when even the rank is unknown (then `shape` is empty and means nothing). */
  rankUnknown?: true;
}

/** A file beside a segment that holds its weights (ONNX external data, for big segments). */
export interface ExternalFile {
  /** File name inside the split folder; the segment's tensors refer to it as their `location`. */
  file: string;
  sha256: string;
}

/** What a cacheable block's segment exposes. */
export type CacheMode =
  /** The segment outputs the residual `C_i` (block output minus input); the residual `Add` moved into the next glue. */
  | "residual"
  /** The segment outputs the whole block output (NVIDIA cache_diffusion style). */
  | "output";

/** One ONNX file of the manifest, run in order. */
export interface Segment {
  /** `glue_00`, … for always-run glue; the module path (`down_blocks.0.attentions.0`) for a block. */
  name: string;
  file: string;
  sha256: string;
  kind: "glue" | "block";
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  /** Only for `kind: "block"`: the one output the cache stores (the residual or the block output). */
  cached?: string;
  /** Only for `kind: "block"`: the block's input tensor (the operand the residual is added to). */
  blockInput?: string;
  /** Weights files of this segment when they are too big to be inline (over ~1.5 GB). */
  externalData?: ExternalFile[];
}

/** The manifest `split.json`. */
export interface SplitManifest {
  format: "blockcache-split/1";
  /** Where the manifest came from: the monolithic model's file name and sha256. */
  source: { file: string; sha256: string };
  mode: CacheMode;
  /** Weight precision of the segment files. */
  precision: "fp32" | "fp16" | "int8" | "uint8";
  /** The regular expression (source) that picked the cacheable blocks. */
  blockPattern: string;
  /** The UNet's graph inputs and outputs (as in the monolithic model). */
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  segments: Segment[];
}

/** Names of the manifest's cacheable blocks in execution order. */
export function cacheableBlocks(manifest: SplitManifest): string[] {
  return manifest.segments.filter((s) => s.kind === "block").map((s) => s.name);
}

/** The index of the segment that outputs each tensor, by tensor name. */
export function segmentProducers(manifest: SplitManifest): Map<string, number> {
  const producer = new Map<string, number>();
  manifest.segments.forEach((s, i) => s.outputs.forEach((o) => producer.set(o.name, i)));
  return producer;
}

/** Checks a parsed `split.json`; throws an Error naming the first bad field. */
export function validateSplitManifest(value: unknown): SplitManifest {
  const p = value as Partial<SplitManifest>;
  if (!p || typeof p !== "object") throw new Error("split.json: not an object");
  if (p.format !== "blockcache-split/1") {
    throw new Error(
      `split.json: format must be "blockcache-split/1", got ${JSON.stringify(p.format)}`,
    );
  }
  if (p.mode !== "residual" && p.mode !== "output") throw new Error("split.json: bad mode");
  if (!Array.isArray(p.segments) || p.segments.length === 0) {
    throw new Error("split.json: segments must be a non-empty list");
  }
  for (const [i, s] of p.segments.entries()) {
    if (typeof s.file !== "string" || typeof s.sha256 !== "string") {
      throw new Error(`split.json: segments[${i}] needs file and sha256`);
    }
    if (
      s.externalData !== undefined &&
      (!Array.isArray(s.externalData) ||
        s.externalData.some((x) => typeof x?.file !== "string" || typeof x?.sha256 !== "string"))
    ) {
      throw new Error(`split.json: segments[${i}].externalData must list {file, sha256}`);
    }
    if (s.kind === "block" && (typeof s.cached !== "string" || typeof s.blockInput !== "string")) {
      throw new Error(
        `split.json: segments[${i}] (${s.name}) is a block without cached/blockInput`,
      );
    }
  }
  if (!Array.isArray(p.inputs) || !Array.isArray(p.outputs)) {
    throw new Error("split.json: inputs and outputs must be lists");
  }
  return p as SplitManifest;
}

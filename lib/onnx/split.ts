/**
 * `splitModel`: cuts a monolithic UNet ONNX model into a block-split split folder: one `.onnx`
 * per segment (glue, block, glue, …) and `split.json` (see `lib/unet/split_manifest.ts`) with the sha256 of
 * every file, plus the export's `config.json` (diffusers' UNet config) when one sits beside the
 * model. Weights in external data are read lazily, one segment at a time. The folder is
 * written beside the target under a temporary name and renamed at the end, so a failure never
 * leaves a half-written manifest.
 *
 * @module
 */

import type {
  CacheMode,
  Segment,
  SplitManifest,
  TensorDType,
  TensorSpec,
} from "../unet/split_manifest.ts";
import { ExternalDataReader } from "./external.ts";
import { type Dim, inferGraph, type TensorInfo } from "./infer.ts";
import {
  decodeModel,
  type Dimension,
  type Model,
  type Node,
  OnnxFormatError,
  type ValueInfo,
} from "./model.ts";
import {
  DEFAULT_BLOCK_PATTERN,
  partitionGraph,
  type SegmentPart,
  SplitError,
} from "./partition.ts";
import { type Precision, quantizeModel } from "./quantize.ts";
import { dataTypeName, isExternal } from "./tensor.ts";
import { sha256File } from "../io/hash.ts";
import { writeChunks, writeModelFile } from "./write.ts";
import { statOrUndefined } from "../io/fs.ts";

export { DEFAULT_BLOCK_PATTERN, SplitError };

/** Options of {@link splitModel}. */
export interface SplitOptions {
  /** The split folder to create (replaced if it holds an earlier manifest). */
  out: string;
  /** `residual` (default): blocks output their residual; `output`: their whole output. */
  mode?: CacheMode;
  /** Weight precision of the segment files (default `fp32`). */
  precision?: Precision;
  /** Regular expression (source) on module paths selecting the cacheable blocks. */
  blockPattern?: string;
  /** A segment with more inline weight bytes than this writes them to a `.weights` file. */
  externalThreshold?: number;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

/** What {@link splitModel} wrote. */
export interface SplitResult {
  dir: string;
  manifest: SplitManifest;
}

const PLAN_DTYPES = new Set([
  "float32",
  "float16",
  "int64",
  "int32",
  "bool",
  "int8",
  "uint8",
  "float64",
]);

/** The diffusers config beside a UNet export, carried into the split folder. */
export const EXPORT_CONFIG = "config.json";

function dirname(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? "." : i === 0 ? "/" : path.slice(0, i);
}

function basename(path: string): string {
  return path.replace(/\/+$/, "").split("/").pop()!;
}

/** Refuses a target that exists and is not an earlier split folder (or empty). */
async function checkTarget(out: string): Promise<boolean> {
  const st = await statOrUndefined(out);
  if (!st) return false;
  if (!st.isDirectory) throw new SplitError(`output ${out} exists and is not a folder`);
  let empty = true;
  for await (const _ of Deno.readDir(out)) {
    empty = false;
    break;
  }
  if (!empty && !(await statOrUndefined(`${out}/split.json`))) {
    throw new SplitError(
      `output folder ${out} exists and is not a split folder; refusing to overwrite it`,
    );
  }
  return true;
}

function tensorSpec(name: string, info: TensorInfo | undefined): TensorSpec {
  const dtype = dataTypeName(info?.elemType ?? 0);
  if (!PLAN_DTYPES.has(dtype)) {
    throw new SplitError(`tensor ${name} at a segment boundary has unsupported type ${dtype}`);
  }
  const spec: TensorSpec = {
    name,
    dtype: dtype as TensorDType,
    shape: info?.shape ? [...info.shape] : [],
  };
  if (!info?.shape) spec.rankUnknown = true;
  return spec;
}

function valueInfo(spec: TensorSpec, elemType: number): ValueInfo {
  const dim = (
    d: Dim,
  ): Dimension => (typeof d === "number" ? { value: d } : d === "?" ? {} : { param: d });
  return {
    name: spec.name,
    type: { tensor: { elemType, shape: spec.rankUnknown ? undefined : spec.shape.map(dim) } },
  };
}

/** Builds a segment's model: nodes, initializers, boundary value infos. Tensors are shared. */
function segmentModel(
  src: Model,
  part: SegmentPart,
  info: Map<string, TensorInfo>,
): Model {
  const internal = new Set(part.nodes.flatMap((n) => n.output));
  const vi = (name: string) =>
    valueInfo(tensorSpec(name, info.get(name)), info.get(name)?.elemType ?? 0);
  const input = part.inputs.map(vi);
  if (src.irVersion < 4) {
    // before IR 4 every initializer must also be a graph input
    for (const t of part.initializers) {
      input.push({
        name: t.name,
        type: { tensor: { elemType: t.dataType, shape: t.dims.map((d) => ({ value: d })) } },
      });
    }
  }
  return {
    irVersion: src.irVersion,
    opsetImport: src.opsetImport,
    producerName: "blockcache split",
    producerVersion: src.producerName
      ? `${src.producerName} ${src.producerVersion ?? ""}`.trim()
      : undefined,
    graph: {
      name: part.name,
      node: part.nodes,
      initializer: part.initializers,
      input,
      output: part.outputs.map(vi),
      valueInfo: src.graph.valueInfo.filter((v) =>
        internal.has(v.name) && !part.outputs.includes(v.name)
      ),
    },
    metadataProps: [{ key: "blockcache.segment", value: part.name }],
    // local functions (field 25) are needed by nodes that call them
    unknown: src.unknown?.filter((f) => f.field === 25),
  };
}

/** Loads every external tensor a segment uses (initializers and node attributes) into memory. */
async function inlineSegment(model: Model, reader: ExternalDataReader): Promise<Model> {
  const initializer = await Promise.all(model.graph.initializer.map((t) => reader.inline(t)));
  const node: Node[] = [];
  for (const n of model.graph.node) {
    if (!n.attribute.some((a) => (a.t && isExternal(a.t)) || a.tensors?.some(isExternal))) {
      node.push(n);
      continue;
    }
    const attribute = [];
    for (const a of n.attribute) {
      attribute.push({
        ...a,
        t: a.t ? await reader.inline(a.t) : undefined,
        tensors: a.tensors ? await Promise.all(a.tensors.map((t) => reader.inline(t))) : undefined,
      });
    }
    node.push({ ...n, attribute });
  }
  return { ...model, graph: { ...model.graph, initializer, node } };
}

function fileSafe(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]/g, "_");
}

/**
 * Splits the ONNX model at `modelPath` into a split folder at `opts.out`. Throws
 * {@link SplitError} for inputs a person must fix (not ONNX, pattern matches nothing, dangling
 * cut, output folder in the way); nothing is left behind on failure.
 */
export async function splitModel(modelPath: string, opts: SplitOptions): Promise<SplitResult> {
  const log = opts.log ?? (() => {});
  const mode = opts.mode ?? "residual";
  const precision = opts.precision ?? "fp32";
  const patternSource = opts.blockPattern ?? DEFAULT_BLOCK_PATTERN;
  let pattern: RegExp;
  try {
    pattern = new RegExp(patternSource);
  } catch (e) {
    throw new SplitError(
      `block pattern ${patternSource} is not a valid regular expression: ${(e as Error).message}`,
    );
  }
  const out = opts.out.replace(/\/+$/, "") || ".";

  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(modelPath);
  } catch (e) {
    throw new SplitError(`cannot read model ${modelPath}: ${(e as Error).message}`);
  }
  let model: Model;
  try {
    model = decodeModel(bytes);
  } catch (e) {
    if (e instanceof OnnxFormatError) throw new SplitError(`${modelPath}: ${e.message}`);
    throw e;
  }
  await checkTarget(out);
  const parts = partitionGraph(model, { mode, blockPattern: pattern });
  const info = inferGraph(model.graph);
  log(
    `${model.graph.node.length} nodes -> ${parts.length} segments (${
      parts.filter((p) => p.kind === "block").length
    } blocks)`,
  );

  const parent = dirname(out);
  const tmp = `${parent}/.${basename(out)}.partial-${Date.now()}-${
    Math.random().toString(36).slice(2, 8)
  }`;
  await Deno.mkdir(tmp, { recursive: true });
  const reader = new ExternalDataReader(dirname(modelPath));
  try {
    const segments: Segment[] = [];
    for (const [i, part] of parts.entries()) {
      const file = `${String(i).padStart(2, "0")}_${fileSafe(part.name)}.onnx`;
      let seg = await inlineSegment(segmentModel(model, part, info), reader);
      if (precision !== "fp32") seg = quantizeModel(seg, precision);
      const written = await writeModelFile(tmp, file, seg, {
        externalThreshold: opts.externalThreshold,
      });
      const spec = (name: string) => tensorSpec(name, info.get(name));
      const s: Segment = {
        name: part.name,
        file,
        sha256: written.model.sha256,
        kind: part.kind,
        inputs: part.inputs.map(spec),
        outputs: part.outputs.map(spec),
      };
      if (part.kind === "block") {
        s.cached = part.cached;
        s.blockInput = part.blockInput;
      }
      if (written.external) {
        s.externalData = [{ file: written.external.file, sha256: written.external.sha256 }];
      }
      segments.push(s);
      log(
        `${file}: ${part.nodes.length} nodes, ${(written.model.bytes / 1e6).toFixed(2)} MB` +
          (written.external ? ` + ${(written.external.bytes / 1e6).toFixed(1)} MB external` : ""),
      );
    }
    const gi = new Set(model.graph.initializer.map((t) => t.name));
    const manifest: SplitManifest = {
      format: "blockcache-split/1",
      source: { file: basename(modelPath), sha256: await sha256File(modelPath) },
      mode,
      precision,
      blockPattern: patternSource,
      inputs: model.graph.input.filter((v) => !gi.has(v.name)).map((v) =>
        tensorSpec(v.name, info.get(v.name))
      ),
      outputs: model.graph.output.map((v) => tensorSpec(v.name, info.get(v.name))),
      segments,
    };
    const json = new TextEncoder().encode(JSON.stringify(manifest, null, 2) + "\n");
    await writeChunks(`${tmp}/split.json`, [json]);
    // the export's diffusers config (sample_size, block_out_channels) says which sizes it serves
    const config = `${dirname(modelPath)}/${EXPORT_CONFIG}`;
    if (await statOrUndefined(config)) await Deno.copyFile(config, `${tmp}/${EXPORT_CONFIG}`);
    await replaceFolder(tmp, out);
    return { dir: out, manifest };
  } catch (e) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw e;
  } finally {
    reader.close();
  }
}

/** Moves a finished temp folder onto the target, replacing an earlier split folder there. */
async function replaceFolder(tmp: string, out: string): Promise<void> {
  const had = await checkTarget(out);
  if (!had) {
    await Deno.rename(tmp, out);
    return;
  }
  const old = `${tmp}.old`;
  await Deno.rename(out, old);
  try {
    await Deno.rename(tmp, out);
  } catch (e) {
    await Deno.rename(old, out);
    throw e;
  }
  await Deno.remove(old, { recursive: true });
}

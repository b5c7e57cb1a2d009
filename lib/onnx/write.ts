/**
 * Writing ONNX model files: streams the encoded chunks to disk while hashing them (sha256), and
 * moves the weights of a large model into an external data file beside it (protobuf messages
 * cannot exceed 2 GB, and ORT-web takes big weights as `externalData`).
 *
 * @module
 */

import { createHash } from "node:crypto";
import { encodeModelChunks, type Model, type TensorProto } from "./model.ts";
import { inlineBytes, isExternal, payloadSize } from "./tensor.ts";

/** A file written, with its sha256 (hex) and size. */
export interface WrittenFile {
  file: string;
  sha256: string;
  bytes: number;
}

/** Default limit of inline weights per file: above it they go to an external data file. */
export const DEFAULT_EXTERNAL_THRESHOLD = 1.5 * 1024 ** 3;

/** Tensors smaller than this stay inline even in a model with external data. */
const EXTERNAL_MIN_TENSOR = 1024;

/** Writes chunks to a new file, returning the sha256 of what was written. */
export async function writeChunks(
  path: string,
  chunks: Iterable<Uint8Array>,
): Promise<WrittenFile> {
  const hash = createHash("sha256");
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  let bytes = 0;
  try {
    for (const c of chunks) {
      hash.update(c);
      let off = 0;
      while (off < c.length) off += await file.write(c.subarray(off));
      bytes += c.length;
    }
  } finally {
    file.close();
  }
  return { file: path.split("/").pop()!, sha256: hash.digest("hex"), bytes };
}

/** Options of {@link writeModelFile}. */
export interface WriteModelOptions {
  /** Inline weights above this many bytes go to `<name>.weights` beside the model. */
  externalThreshold?: number;
}

/**
 * Writes a model whose tensors are all inline. When its weights exceed the threshold, the large
 * initializers are written to `<file without .onnx>.weights` and referenced as external data
 * (`location` = that file name, so the pair must stay together).
 */
export async function writeModelFile(
  dir: string,
  fileName: string,
  model: Model,
  opts: WriteModelOptions = {},
): Promise<{ model: WrittenFile; external?: WrittenFile }> {
  const threshold = opts.externalThreshold ?? DEFAULT_EXTERNAL_THRESHOLD;
  const inits = model.graph.initializer;
  if (inits.some(isExternal)) {
    throw new Error(`${fileName}: initializers must be inline before writing`);
  }
  const total = inits.reduce((s, t) => s + payloadSize(t), 0);
  if (total <= threshold) {
    return { model: await writeChunks(`${dir}/${fileName}`, encodeModelChunks(model)) };
  }
  const weightsName = fileName.replace(/\.onnx$/, "") + ".weights";
  let offset = 0;
  const pieces: Uint8Array[] = [];
  const moved: TensorProto[] = inits.map((t) => {
    if (payloadSize(t) < EXTERNAL_MIN_TENSOR || t.stringData) return t;
    const bytes = inlineBytes(t);
    const pad = (64 - (offset % 64)) % 64; // keep tensors 64-byte aligned
    if (pad) pieces.push(new Uint8Array(pad)), offset += pad;
    pieces.push(bytes);
    const entry: TensorProto = {
      name: t.name,
      dims: t.dims,
      dataType: t.dataType,
      dataLocation: 1,
      externalData: [
        { key: "location", value: weightsName },
        { key: "offset", value: String(offset) },
        { key: "length", value: String(bytes.length) },
      ],
    };
    offset += bytes.length;
    return entry;
  });
  const external = await writeChunks(`${dir}/${weightsName}`, pieces);
  const written = await writeChunks(
    `${dir}/${fileName}`,
    encodeModelChunks({ ...model, graph: { ...model.graph, initializer: moved } }),
  );
  return { model: written, external };
}

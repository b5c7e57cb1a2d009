/**
 * The declared inputs and outputs of an ONNX model file (its graph's `input` minus initializers,
 * and `output`), read without onnxruntime: so a model folder can be checked before any session
 * exists (onnxruntime-web does not check an input's rank before running).
 *
 * @module
 */
import { decodeModel, type Model, OnnxFormatError, type ValueInfo } from "./model.ts";
import { dataTypeName } from "./tensor.ts";

/** A declared tensor: dtype as the split manifest names it; a dimension is a size, a symbol, or `"?"`. */
export interface DeclaredTensor {
  name: string;
  dtype: string;
  /** `undefined` when the rank is not declared. */
  shape?: (number | string)[];
}

/** What a model file declares. */
export interface OnnxSignature {
  inputs: DeclaredTensor[];
  outputs: DeclaredTensor[];
}

function declared(v: ValueInfo): DeclaredTensor {
  const t = v.type?.tensor;
  return {
    name: v.name,
    dtype: dataTypeName(t?.elemType ?? 0),
    shape: t?.shape?.map((d) => d.value ?? d.param ?? "?"),
  };
}

/** The signature of a decoded model (inputs that are initializers are left out, as before IR 4). */
export function onnxSignature(model: Model): OnnxSignature {
  const inits = new Set(model.graph.initializer.map((t) => t.name));
  return {
    inputs: model.graph.input.filter((v) => !inits.has(v.name)).map(declared),
    outputs: model.graph.output.map(declared),
  };
}

/**
 * Reads and decodes `path` and returns its signature. Throws an Error naming the file (as
 * `label`, default the path) when it cannot be read or is not an ONNX model.
 */
export async function readOnnxSignature(path: string, label = path): Promise<OnnxSignature> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new Error(
      e instanceof Deno.errors.NotFound
        ? `${label} not found`
        : `${label} cannot be read (${(e as Error).message})`,
    );
  }
  try {
    return onnxSignature(decodeModel(bytes));
  } catch (e) {
    if (e instanceof OnnxFormatError) throw new Error(`${label}: ${e.message}`);
    throw e;
  }
}

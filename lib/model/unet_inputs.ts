/**
 * The UNet's input contract, as the split manifest (`unet/split.json`) declares it, and the one
 * place the pipeline builds the timestep tensor from it.
 *
 * Real Stable Diffusion exports declare the timestep three ways (see `/work/shared/notes/stack.md`):
 *
 * | exporter                                   | dtype   | shape     |
 * | ------------------------------------------ | ------- | --------- |
 * | diffusers' `convert_stable_diffusion_…`    | float32 | `[batch]` |
 * | optimum ≤ 1.23 (`optimum-cli export onnx`) | int64   | `[steps]` |
 * | optimum 1.24–1.27                          | float32 | `[]`      |
 *
 * plus fixed `[1]` (this project's recipe) and float16 / int32 variants. The UNet expands the
 * timestep to the sample's batch itself (diffusers' `UNet2DConditionModel.get_time_embed`), so a
 * symbolic length gets one value per sample of the batch, a fixed length exactly that many, and a
 * scalar a rank-0 tensor. onnxruntime does not check an input's rank before running, so feeding
 * `[1]` to a scalar export fails deep inside the graph (`/time_proj/Mul: … cannot broadcast`);
 * hence the contract is checked when the folder is read, before any session exists.
 *
 * @module
 */
import type { TensorSpec } from "../unet/split_manifest.ts";
import { numericTensor } from "../runtime/tensors.ts";
import type { Tensor } from "../runtime/ort.ts";

/** Element types a timestep may have. */
export const TIMESTEP_DTYPES = ["float32", "float16", "int64", "int32"] as const;

/** A timestep element type. */
export type TimestepDType = typeof TIMESTEP_DTYPES[number];

/** How the UNet wants its timestep. */
export interface TimestepContract {
  dtype: TimestepDType;
  /**
   * `scalar`: a rank-0 tensor; `fixed`: rank 1 of exactly `length` values; `per-sample`: rank 1
   * of symbolic length (`batch`, `steps`), fed one value per sample of the UNet batch.
   */
  form: "scalar" | "fixed" | "per-sample";
  /** Only for `fixed`. */
  length?: number;
}

/** The UNet's inputs as the pipeline feeds them. */
export interface UNetInputContract {
  timestep: TimestepContract;
  /** Latent channels (dimension 1 of `sample`), when fixed. */
  latentChannels?: number;
  /** Latent height and width of `sample`: numbers when the export is fixed-size, else null. */
  latentHeight: number | null;
  latentWidth: number | null;
  /** Width of a text embedding (last dimension of `encoder_hidden_states`), when fixed. */
  crossAttentionDim?: number;
}

/** A UNet export whose declared inputs the pipeline cannot feed; the message says why and what to do. */
export class UNetContractError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UNetContractError";
  }
}

function describe(spec: TensorSpec): string {
  return `${spec.dtype} [${spec.shape.join(", ")}]`;
}

/** Reads the timestep contract from the timestep's declared spec; throws {@link UNetContractError}. */
export function timestepContract(spec: TensorSpec): TimestepContract {
  if (!(TIMESTEP_DTYPES as readonly string[]).includes(spec.dtype)) {
    throw new UNetContractError(
      `unet timestep is ${spec.dtype}; supported: ${TIMESTEP_DTYPES.join(", ")}`,
    );
  }
  const dtype = spec.dtype as TimestepDType;
  if (spec.rankUnknown) {
    throw new UNetContractError(
      "unet timestep has no declared shape; re-export with a shape ([], [1] or [batch])",
    );
  }
  if (spec.shape.length === 0) return { dtype, form: "scalar" };
  const [d] = spec.shape;
  if (spec.shape.length === 1 && typeof d === "number" && d >= 1) {
    return { dtype, form: "fixed", length: d };
  }
  if (spec.shape.length === 1 && typeof d === "string" && d !== "?") {
    return { dtype, form: "per-sample" };
  }
  throw new UNetContractError(
    `unet timestep is declared ${describe(spec)}; supported shapes are [] (scalar), [n] and ` +
      "[batch] (one value per sample)",
  );
}

function find(inputs: TensorSpec[], name: string): TensorSpec {
  const spec = inputs.find((i) => i.name === name);
  if (!spec) {
    throw new UNetContractError(
      `unet has no input ${name} (inputs: ${inputs.map((i) => i.name).join(", ")}); ` +
        "expected sample, timestep, encoder_hidden_states as diffusers and optimum export them",
    );
  }
  return spec;
}

const numberOrNull = (d: number | string | undefined) => typeof d === "number" ? d : null;

/**
 * Checks the UNet's declared inputs and outputs (`split.json` `inputs`/`outputs`): `sample`
 * float32 rank 4, `timestep` per {@link timestepContract}, `encoder_hidden_states` float32 rank 3,
 * one float32 or float16 output of rank 4. Throws {@link UNetContractError} naming the input.
 */
export function unetInputContract(inputs: TensorSpec[], outputs: TensorSpec[]): UNetInputContract {
  const sample = find(inputs, "sample");
  const hidden = find(inputs, "encoder_hidden_states");
  const floatExport = "export the model in float32 and let `deno task split --quantize fp16` " +
    "make the float16 plan (its inputs and outputs stay float32)";
  if (sample.dtype !== "float32" || sample.shape.length !== 4) {
    throw new UNetContractError(
      `unet sample is ${describe(sample)}; expected float32 [batch, channels, height, width]` +
        (sample.dtype === "float16" ? ` (${floatExport})` : ""),
    );
  }
  if (hidden.dtype !== "float32" || hidden.shape.length !== 3) {
    throw new UNetContractError(
      `unet encoder_hidden_states is ${describe(hidden)}; expected float32 [batch, sequence, dim]` +
        (hidden.dtype === "float16" ? ` (${floatExport})` : ""),
    );
  }
  const extra = inputs.filter((i) =>
    !["sample", "timestep", "encoder_hidden_states"].includes(i.name)
  );
  if (extra.length) {
    throw new UNetContractError(
      `unet has inputs the pipeline does not feed: ${extra.map((i) => i.name).join(", ")} ` +
        "(SD-XL's text_embeds/time_ids and ControlNet residuals are not supported)",
    );
  }
  const out = outputs[0];
  if (
    outputs.length !== 1 || !["float32", "float16"].includes(out.dtype) || out.shape.length !== 4
  ) {
    throw new UNetContractError(
      `unet must have one float output [batch, channels, height, width], has ${
        outputs.map((o) => `${o.name} ${describe(o)}`).join(", ")
      }`,
    );
  }
  const contract: UNetInputContract = {
    timestep: timestepContract(find(inputs, "timestep")),
    latentHeight: numberOrNull(sample.shape[2]),
    latentWidth: numberOrNull(sample.shape[3]),
  };
  if (typeof sample.shape[1] === "number") contract.latentChannels = sample.shape[1];
  if (typeof hidden.shape[2] === "number") contract.crossAttentionDim = hidden.shape[2];
  return contract;
}

/**
 * The timestep tensor for one UNet evaluation of `batch` samples at training timestep `t`:
 * rank 0 for `scalar`, `[batch]` copies for `per-sample`, `[length]` copies for `fixed` (which
 * must be 1 or `batch`). Integer dtypes take `t` rounded to the nearest integer (Euler's
 * timesteps may be fractional). Throws {@link UNetContractError} for a fixed length that fits
 * neither.
 */
export function timestepTensor(c: TimestepContract, t: number, batch: number): Tensor {
  if (c.form === "scalar") return numericTensor([t], [], c.dtype);
  const n = c.form === "per-sample" ? batch : c.length!;
  if (c.form === "fixed" && n !== 1 && n !== batch) {
    throw new UNetContractError(
      `unet timestep has a fixed length ${n}; this evaluation has a batch of ${batch}`,
    );
  }
  return numericTensor(new Array(n).fill(t), [n], c.dtype);
}

/** What fills the UNet inputs' symbolic dimensions for one evaluation. */
export interface UNetShapeParams {
  /** Samples in the UNet batch (2 per image with guidance). */
  batch: number;
  latentHeight: number;
  latentWidth: number;
  /** Latent channels, where `sample` does not fix them. */
  channels: number;
  /** Text tokens, where `encoder_hidden_states` does not fix them (CLIP: 77). */
  sequence: number;
}

/**
 * Concrete shapes of the UNet's declared inputs: `sample` [batch, channels, height, width],
 * `encoder_hidden_states` [batch, sequence, dim], the timestep as {@link timestepTensor} builds
 * it, and any other symbolic dimension as the batch. Fixed dimensions are kept.
 */
export function unetInputShapes(inputs: TensorSpec[], p: UNetShapeParams): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const spec of inputs) {
    const fill = (values: number[]) =>
      spec.shape.map((d, i) => (typeof d === "number" ? d : values[i] ?? p.batch));
    if (spec.name === "sample") {
      out.set(spec.name, fill([p.batch, p.channels, p.latentHeight, p.latentWidth]));
    } else if (spec.name === "encoder_hidden_states") {
      out.set(spec.name, fill([p.batch, p.sequence]));
    } else out.set(spec.name, fill([]));
  }
  return out;
}

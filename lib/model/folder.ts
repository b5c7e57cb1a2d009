/**
 * A model folder in optimum's Stable Diffusion layout (`model_index.json`, `scheduler/`,
 * `tokenizer/`, `text_encoder/`, `unet/` as a block-split UNet, `vae_decoder/`), read and checked
 * into plain data: paths, configs, the tokenizer, the UNet's input contract and the sizes it
 * serves — no sessions. The default model and a user's SD export load alike.
 *
 * {@link readModelFolder} checks everything that can be checked without onnxruntime, so that a
 * bad folder is refused with its name and reason before any session exists: the JSON files, the
 * scheduler class, the tokenizer, the text encoder's and VAE decoder's declared inputs and outputs
 * (decoded from their ONNX files), `unet/split.json` with its timestep contract and the presence of
 * every segment file (their sha256 is checked by the engine before its sessions), and that the
 * parts fit together (embedding width, sequence length, latent channels).
 *
 * @module
 */
import {
  parseSchedulerConfig,
  type SchedulerClassMapping,
  schedulerClassMapping,
  type SchedulerConfig,
} from "../solvers/scheduler_config.ts";
import { isFile } from "../io/fs.ts";
import { permissionAdvice } from "../io/permissions.ts";
import { readOnnxSignature } from "../onnx/signature.ts";
import { validateSplitManifest } from "../unet/split_manifest.ts";
import type { SplitManifest } from "../unet/split_manifest.ts";
import { loadTokenizer, type Tokenizer } from "./tokenizer.ts";
import { type SizeSupport, sizeSupport } from "./sizes.ts";
import { type UNetInputContract, unetInputContract } from "./unet_inputs.ts";

/** A linear latent→RGB map for cheap previews: `rgb[c] = Σ_k weights[c][k]·latent[k] + bias[c]`. */
export interface PreviewMap {
  weights: number[][];
  bias: number[];
}

/** Everything the pipeline needs to know about a model folder. */
export interface ModelFolder {
  /** `model_index.json` `_name_or_path` when it is a plain name, else the folder's name. */
  name: string;
  dir: string;
  scheduler: SchedulerConfig;
  /** `_class_name` of the scheduler config (null when absent) and the solver that serves it. */
  schedulerClass: string | null;
  schedulerMapping: SchedulerClassMapping;
  /** Loaded from `tokenizer/` (pure TypeScript, no runtime). */
  tokenizer: Tokenizer;
  textEncoderFile: string;
  /** Element type of the text encoder's `input_ids` (`int32` or `int64`). */
  inputIdsDType: "int32" | "int64";
  /** Name of the text encoder output the UNet takes (`last_hidden_state`, or its only output). */
  textEncoderOutput: string;
  /** The block-split UNet folder (contains split.json). */
  unetDir: string;
  /** The split manifest, validated. */
  split: SplitManifest;
  /** How the UNet wants its inputs (the timestep contract, fixed latent dims). */
  unetInputs: UNetInputContract;
  /** null for a pixel-space model (identity decode). */
  vaeDecoderFile: string | null;
  vaeScalingFactor: number;
  preview: PreviewMap | null;
  /** The sizes the model serves (native, and a range for dynamic-size exports). */
  sizes: SizeSupport;
  /** Native output side in pixels and native latent side (square models). */
  imageSize: number;
  latentSize: number;
  latentChannels: number;
}

/** A model folder that cannot be served; `reason` says which file and what is wrong. */
export class ModelFolderError extends Error {
  constructor(readonly dir: string, readonly reason: string) {
    super(`model folder ${dir}: ${reason}`);
    this.name = "ModelFolderError";
  }
}

type Json = Record<string, unknown>;

async function readJson(path: string, rel: string, required: true): Promise<Json>;
async function readJson(path: string, rel: string, required: false): Promise<Json | undefined>;
async function readJson(path: string, rel: string, required: boolean): Promise<Json | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound && !required) return undefined;
    throw new Error(
      e instanceof Deno.errors.NotFound
        ? `${rel} not found`
        : `${rel}: ${permissionAdvice(e, "read", path) ?? (e as Error).message}`,
    );
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new Error(`${rel} is not valid JSON`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new Error(`${rel} must be a JSON object`);
  }
  return v as Json;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** The model's id: `_name_or_path` when it is a plain name (not a hub path or a local path). */
function modelName(index: Json, dir: string): string {
  const given = index._name_or_path;
  if (typeof given === "string" && NAME.test(given)) return given;
  return dir.replace(/\/+$/, "").split("/").pop() || "model";
}

async function readSplit(dir: string): Promise<SplitManifest> {
  const json = await readJson(
    `${dir}/unet/split.json`,
    "unet/split.json (run `deno task split` on the UNet export first)",
    true,
  );
  let manifest: SplitManifest;
  try {
    manifest = validateSplitManifest(json);
  } catch (e) {
    throw new Error(`unet/${(e as Error).message}`);
  }
  for (const s of manifest.segments) {
    for (const file of [s.file, ...(s.externalData ?? []).map((x) => x.file)]) {
      if (!(await isFile(`${dir}/unet/${file}`))) {
        throw new Error(`unet/${file} (listed in split.json) is missing; split the model again`);
      }
    }
  }
  return manifest;
}

const fixedDim = (d: number | string | undefined) => typeof d === "number" ? d : undefined;

/** Reads and checks a model folder; throws {@link ModelFolderError} with the reason. */
export async function readModelFolder(dir: string): Promise<ModelFolder> {
  try {
    return await read(dir);
  } catch (e) {
    if (e instanceof ModelFolderError) throw e;
    throw new ModelFolderError(dir, (e as Error).message);
  }
}

/**
 * Checks a model folder as {@link readModelFolder} does; returns the reason it cannot be served,
 * or null when it can.
 */
export async function checkModelFolder(dir: string): Promise<string | null> {
  try {
    await readModelFolder(dir);
    return null;
  } catch (e) {
    return e instanceof ModelFolderError ? e.reason : (e as Error).message;
  }
}

async function read(dir: string): Promise<ModelFolder> {
  const index = await readJson(`${dir}/model_index.json`, "model_index.json", true);
  const schedulerJson = await readJson(
    `${dir}/scheduler/scheduler_config.json`,
    "scheduler/scheduler_config.json",
    true,
  );
  const scheduler = parseSchedulerConfig(schedulerJson);
  const schedulerMapping = schedulerClassMapping(schedulerJson._class_name);
  const tokenizer = await loadTokenizer(`${dir}/tokenizer`);

  const split = await readSplit(dir);
  const unetInputs = unetInputContract(split.inputs, split.outputs);

  const textEncoderFile = `${dir}/text_encoder/model.onnx`;
  const te = await readOnnxSignature(textEncoderFile, "text_encoder/model.onnx");
  const ids = te.inputs.find((i) => i.name === "input_ids") ?? te.inputs[0];
  if (te.inputs.length !== 1 || (ids.dtype !== "int32" && ids.dtype !== "int64")) {
    throw new Error(
      `text_encoder/model.onnx must take one input_ids tensor of int32 or int64, takes ${
        te.inputs.map((i) => `${i.name} ${i.dtype}`).join(", ")
      }`,
    );
  }
  const out = te.outputs.find((o) => o.name === "last_hidden_state") ?? te.outputs[0];
  if (!out || out.dtype !== "float32" || out.shape?.length !== 3) {
    throw new Error(
      "text_encoder/model.onnx must output last_hidden_state float32 [batch, sequence, dim]",
    );
  }
  const seq = fixedDim(ids.shape?.[1]);
  if (seq !== undefined && seq !== tokenizer.maxLength) {
    throw new Error(
      `text_encoder takes ${seq} tokens, tokenizer/tokenizer_config.json model_max_length is ${tokenizer.maxLength}`,
    );
  }
  const width = fixedDim(out.shape[2]), wanted = unetInputs.crossAttentionDim;
  if (width !== undefined && wanted !== undefined && width !== wanted) {
    throw new Error(
      `text_encoder gives ${width}-wide embeddings, the UNet's encoder_hidden_states are ${wanted} wide ` +
        "(the text encoder and the UNet come from different models)",
    );
  }

  const vaeDecoderFile = `${dir}/vae_decoder/model.onnx`;
  const hasVae = await isFile(vaeDecoderFile);
  const vaeConfig = hasVae
    ? await readJson(`${dir}/vae_decoder/config.json`, "vae_decoder/config.json", false)
    : undefined;
  const unetConfig = await readJson(`${dir}/unet/config.json`, "unet/config.json", false);
  const latentChannels = unetInputs.latentChannels ?? numberOr(unetConfig?.in_channels, 4);
  if (hasVae) {
    const vae = await readOnnxSignature(vaeDecoderFile, "vae_decoder/model.onnx");
    const z = vae.inputs[0], img = vae.outputs[0];
    if (
      vae.inputs.length !== 1 || z.dtype !== "float32" || z.shape?.length !== 4 || !img ||
      img.shape?.length !== 4
    ) {
      throw new Error(
        "vae_decoder/model.onnx must map one float32 latent [batch, channels, h, w] to an image",
      );
    }
    const zc = fixedDim(z.shape[1]);
    if (zc !== undefined && zc !== latentChannels) {
      throw new Error(
        `vae_decoder takes ${zc}-channel latents, the UNet makes ${latentChannels}-channel latents`,
      );
    }
  }
  const sizes = sizeSupport({
    latentHeight: unetInputs.latentHeight,
    latentWidth: unetInputs.latentWidth,
    unetConfig,
    vaeConfig: hasVae ? vaeConfig ?? {} : undefined,
    hasVae,
  });
  const scaling = vaeConfig?.scaling_factor;
  if (scaling !== undefined && (typeof scaling !== "number" || !(scaling > 0))) {
    throw new Error("vae_decoder/config.json: scaling_factor must be a positive number");
  }
  const preview = await readJson(
    `${dir}/vae_decoder/preview.json`,
    "vae_decoder/preview.json",
    false,
  ) as PreviewMap | undefined;
  return {
    name: modelName(index, dir),
    dir,
    scheduler,
    schedulerClass: typeof schedulerJson._class_name === "string"
      ? schedulerJson._class_name
      : null,
    schedulerMapping,
    tokenizer,
    textEncoderFile,
    inputIdsDType: ids.dtype,
    textEncoderOutput: out.name,
    unetDir: `${dir}/unet`,
    split,
    unetInputs,
    vaeDecoderFile: hasVae ? vaeDecoderFile : null,
    // diffusers' AutoencoderKL default (SD-1.x/2.x); SD-XL's VAE config says 0.13025
    vaeScalingFactor: (scaling as number | undefined) ?? 0.18215,
    preview: preview ?? null,
    sizes,
    imageSize: sizes.native.width,
    latentSize: sizes.native.width / sizes.vaeScaleFactor,
    latentChannels,
  };
}

function numberOr(x: unknown, fallback: number): number {
  return typeof x === "number" && Number.isInteger(x) && x > 0 ? x : fallback;
}

/** The model listed first (the service's default) when its folder is present. */
export const DEFAULT_MODEL = "emoji-ldm";

/**
 * The model folders under `modelsDir` (each subfolder with a `model_index.json`, the default
 * model first, then by name), or `modelsDir` itself when it is a model folder.
 */
export async function modelFolders(modelsDir: string): Promise<string[]> {
  const dir = modelsDir.replace(/\/+$/, "") || "/";
  const names: string[] = [];
  try {
    if (await isFile(`${dir}/model_index.json`)) return [dir];
    for await (const e of Deno.readDir(dir)) {
      if (e.isDirectory && await isFile(`${dir}/${e.name}/model_index.json`)) names.push(e.name);
    }
  } catch (e) {
    throw new Error(
      `models folder ${dir} cannot be read (${
        permissionAdvice(e, "read", dir) ?? (e as Error).message
      })`,
    );
  }
  if (names.length === 0) {
    throw new Error(`no model folders (with model_index.json) in ${dir}`);
  }
  names.sort((a, b) =>
    a === DEFAULT_MODEL ? -1 : b === DEFAULT_MODEL ? 1 : a < b ? -1 : a > b ? 1 : 0
  );
  return names.map((n) => `${dir}/${n}`);
}

/**
 * A model folder in optimum's Stable Diffusion layout (`model_index.json`, `scheduler/`,
 * `tokenizer/`, `text_encoder/`, `unet/` as a block-split UNet, `vae_decoder/`), read into plain
 * data: paths and configs, no sessions. The default model and a user's SD export load alike.
 *
 * @module
 */
import { parseSchedulerConfig, type SchedulerConfig } from "../solvers/scheduler_config.ts";
import { isFile } from "../io/fs.ts";
import { permissionAdvice } from "../io/permissions.ts";

/** A linear latent→RGB map for cheap previews: `rgb[c] = Σ_k weights[c][k]·latent[k] + bias[c]`. */
export interface PreviewMap {
  weights: number[][];
  bias: number[];
}

/** Everything the pipeline needs to know about a model folder. */
export interface ModelFolder {
  name: string;
  dir: string;
  scheduler: SchedulerConfig;
  tokenizerDir: string;
  textEncoderFile: string;
  /** The block-split UNet folder (contains split.json). */
  unetDir: string;
  /** null for a pixel-space model (identity decode). */
  vaeDecoderFile: string | null;
  vaeScalingFactor: number;
  preview: PreviewMap | null;
  /** Output image side in pixels and latent side (sample_size of the UNet). */
  imageSize: number;
  latentSize: number;
  latentChannels: number;
}

async function readJson<T>(path: string, what: string): Promise<T> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    const advice = permissionAdvice(e, "read", path);
    if (advice) throw new Error(`${what}: ${advice}`);
    if (e instanceof Deno.errors.NotFound) throw new Error(`${what}: ${path} not found`);
    throw new Error(`${what}: cannot read ${path} (${(e as Error).message})`);
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new Error(`${what}: ${path} is not valid JSON`);
  }
}

/** Reads a model folder; throws an Error naming the missing or bad file. */
export async function readModelFolder(dir: string): Promise<ModelFolder> {
  const index = await readJson<Record<string, unknown>>(`${dir}/model_index.json`, "model");
  const scheduler = parseSchedulerConfig(
    await readJson<unknown>(`${dir}/scheduler/scheduler_config.json`, "scheduler"),
  );
  const split = await readJson<{ inputs: { name: string; shape: (number | string)[] }[] }>(
    `${dir}/unet/split.json`,
    "unet (run `deno task split` on the UNet export first)",
  );
  const sampleShape = split.inputs.find((i) => i.name === "sample")?.shape ?? [];
  const latentChannels = typeof sampleShape[1] === "number" ? sampleShape[1] : 4;
  const latentSize = typeof sampleShape[2] === "number"
    ? sampleShape[2]
    : Number(index.latent_size ?? 64);
  const hasVae = await isFile(`${dir}/vae_decoder/model.onnx`);
  const vaeConfig = hasVae && await isFile(`${dir}/vae_decoder/config.json`)
    ? await readJson<{ scaling_factor?: number }>(`${dir}/vae_decoder/config.json`, "vae_decoder")
    : {};
  const preview = await isFile(`${dir}/vae_decoder/preview.json`)
    ? await readJson<PreviewMap>(`${dir}/vae_decoder/preview.json`, "vae_decoder preview")
    : null;
  return {
    name: String(index._name_or_path ?? dir.split("/").pop()),
    dir,
    scheduler,
    tokenizerDir: `${dir}/tokenizer`,
    textEncoderFile: `${dir}/text_encoder/model.onnx`,
    unetDir: `${dir}/unet`,
    vaeDecoderFile: hasVae ? `${dir}/vae_decoder/model.onnx` : null,
    vaeScalingFactor: vaeConfig.scaling_factor ?? 0.18215,
    preview,
    imageSize: Number(index.sample_size ?? latentSize * (hasVae ? 8 : 1)),
    latentSize,
    latentChannels,
  };
}

/** Side in pixels of the images the model makes (the latent side for a pixel-space model). */
export function outputSize(m: ModelFolder): number {
  return m.vaeDecoderFile ? m.imageSize : m.latentSize;
}

/** The model listed first (the service's default) when its folder is present. */
export const DEFAULT_MODEL = "emoji-ldm";

/**
 * The model folders under `modelsDir` (each subfolder with a `model_index.json`, the default
 * model first, then by name), or `modelsDir` itself when it is a model folder.
 */
export async function modelFolders(modelsDir: string): Promise<string[]> {
  const dir = modelsDir.replace(/\/+$/, "") || "/";
  if (await isFile(`${dir}/model_index.json`)) return [dir];
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isDirectory && await isFile(`${dir}/${e.name}/model_index.json`)) names.push(e.name);
    }
  } catch (e) {
    throw new Error(`models folder ${dir} cannot be read (${(e as Error).message})`);
  }
  if (names.length === 0) {
    throw new Error(`no model folders (with model_index.json) in ${dir}`);
  }
  names.sort((a, b) =>
    a === DEFAULT_MODEL ? -1 : b === DEFAULT_MODEL ? 1 : a < b ? -1 : a > b ? 1 : 0
  );
  return names.map((n) => `${dir}/${n}`);
}

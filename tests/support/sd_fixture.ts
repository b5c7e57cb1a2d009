/**
 * The Stable-Diffusion-shaped test folder (`tests/fixtures/sd_tiny`, made by
 * `tests/fixtures/make_sd_folder.py`), materialised as a user's optimum export: its ONNX files are
 * committed gzipped (their graphs are mostly node names), so this unpacks them into a temporary
 * folder, with the UNet in one of the three timestep contracts real exports use and the text
 * encoder taking int32 or int64 ids; {@link splitSdFolder} then does the README's split step.
 *
 * @module
 */
import { splitModel } from "../../lib/onnx/split.ts";
import type { Precision } from "../../lib/onnx/quantize.ts";

/** The fixture folder as committed. */
const SD_FIXTURE = new URL("../fixtures/sd_tiny", import.meta.url).pathname;
const VARIANTS = new URL("../fixtures/sd_tiny_variants", import.meta.url).pathname;

/** How an export declares the UNet timestep (see stack.md). */
export type TimestepForm = "float32_batch" | "int64_steps" | "float32_scalar";

/** The three forms, with the exporter that writes each. */
export const TIMESTEP_FORMS: { form: TimestepForm; exporter: string }[] = [
  { form: "float32_batch", exporter: "diffusers' converter: float32 [batch]" },
  { form: "int64_steps", exporter: "optimum <= 1.23: int64 [steps]" },
  { form: "float32_scalar", exporter: "optimum 1.24-1.27: float32 []" },
];

/** Writes the gunzipped contents of the file `from` to `to`. */
export async function gunzip(from: string, to: string): Promise<void> {
  const file = await Deno.open(from);
  const out = new Response(file.readable.pipeThrough(new DecompressionStream("gzip")));
  await Deno.writeFile(to, new Uint8Array(await out.arrayBuffer()));
}

async function copyTree(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const e of Deno.readDir(from)) {
    if (e.isDirectory) await copyTree(`${from}/${e.name}`, `${to}/${e.name}`);
    else if (e.name.endsWith(".onnx.gz")) {
      await gunzip(`${from}/${e.name}`, `${to}/${e.name.slice(0, -3)}`);
    } else await Deno.copyFile(`${from}/${e.name}`, `${to}/${e.name}`);
  }
}

/** Options of {@link materializeSdFolder}. */
export interface SdFolderOptions {
  /** Timestep contract of `unet/model.onnx` (default `float32_batch`). */
  timestep?: TimestepForm;
  /** Element type of the text encoder's `input_ids` (default `int32`, as optimum exports). */
  inputIds?: "int32" | "int64";
}

/** Writes the optimum-layout folder (monolithic `unet/model.onnx`) to `dir`; returns `dir`. */
export async function materializeSdFolder(
  dir: string,
  opts: SdFolderOptions = {},
): Promise<string> {
  await copyTree(SD_FIXTURE, dir);
  const form = opts.timestep ?? "float32_batch";
  if (form !== "float32_batch") {
    await gunzip(`${VARIANTS}/unet_${form}.onnx.gz`, `${dir}/unet/model.onnx`);
  }
  if (opts.inputIds === "int64") {
    await gunzip(`${VARIANTS}/text_encoder_int64.onnx.gz`, `${dir}/text_encoder/model.onnx`);
  }
  return dir;
}

/**
 * The README's split step on a materialised folder: splits `unet/model.onnx` into `unet-split/`,
 * then moves the monolithic UNet aside (`unet-monolithic/`) and the split folder into `unet/`.
 */
async function splitSdFolder(dir: string, precision: Precision = "fp32"): Promise<void> {
  await splitModel(`${dir}/unet/model.onnx`, { out: `${dir}/unet-split`, precision });
  await Deno.rename(`${dir}/unet`, `${dir}/unet-monolithic`);
  await Deno.rename(`${dir}/unet-split`, `${dir}/unet`);
}

/** A split SD fixture folder at `dir` (materialise + split). */
export async function sdModel(
  dir: string,
  opts: SdFolderOptions & { precision?: Precision } = {},
): Promise<string> {
  await materializeSdFolder(dir, opts);
  await splitSdFolder(dir, opts.precision);
  return dir;
}

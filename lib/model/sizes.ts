/**
 * The image sizes a model folder supports, from its own configs, the way diffusers derives them:
 *
 * - the VAE's scale factor (pixels per latent value along a side) is `2^(len(block_out_channels) − 1)`
 *   of `vae_decoder/config.json` (diffusers' `StableDiffusionPipeline.vae_scale_factor`: 8 for
 *   every Stable Diffusion VAE); without `block_out_channels`, the VAE config's `sample_size`
 *   over the UNet's latent size; 1 for a pixel-space model (no VAE);
 * - the native latent size is the export's fixed latent height/width, else `unet/config.json`
 *   `sample_size` (SD-1.5: 64, SD-2.x-768: 96, SD-Turbo: 64); native pixels = latent × factor;
 * - an export with symbolic height/width (diffusers' and optimum's exports) runs other sizes too:
 *   a side must be a multiple of `factor · 2^(len(unet block_out_channels) − 1)` (the UNet halves
 *   the latent at every level but the last: SD's 64 px) and lie within
 *   [{@link MIN_SIDE_FRACTION} × native, {@link MAX_SIDE_FACTOR} × native], where SD models still
 *   make images (SD-1.5 at 1024 px repeats its subject; memory is checked per plan apart from this).
 *
 * @module
 */

/** An image size in pixels. */
export interface ImageSize {
  width: number;
  height: number;
}

/** What sizes a model serves. */
export interface SizeSupport {
  /** The size the model was trained at (its default). */
  native: ImageSize;
  /** Pixels per latent value along a side (1 without a VAE). */
  vaeScaleFactor: number;
  /** false: the export fixes the latent size, so only `native` runs. */
  dynamic: boolean;
  /** A side must be a multiple of this many pixels (dynamic exports). */
  multipleOf: number;
  /** Smallest and largest side in pixels (equal to native for a fixed export). */
  min: number;
  max: number;
}

/** Largest side served, as a multiple of the native side. */
export const MAX_SIDE_FACTOR = 2;
/** Smallest side served, as a fraction of the native side. */
export const MIN_SIDE_FRACTION = 0.5;

/** The parts of the folder's configs sizes come from (all optional). */
export interface SizeSources {
  /** The export's fixed latent height/width (`split.json` `sample` dims 2 and 3), or null. */
  latentHeight: number | null;
  latentWidth: number | null;
  /** `unet/config.json`. */
  unetConfig?: { sample_size?: unknown; block_out_channels?: unknown };
  /** `vae_decoder/config.json`; undefined when the model has no VAE decoder. */
  vaeConfig?: { sample_size?: unknown; block_out_channels?: unknown };
  hasVae: boolean;
}

/** A size question the folder's configs cannot answer; the message names the file and key. */
export class SizeConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SizeConfigError";
  }
}

const positiveInt = (x: unknown): x is number =>
  typeof x === "number" && Number.isInteger(x) && x > 0;

function channelCount(x: unknown, where: string): number | undefined {
  if (x === undefined || x === null) return undefined;
  if (!Array.isArray(x) || x.length === 0 || !x.every(positiveInt)) {
    throw new SizeConfigError(`${where}: block_out_channels must be a list of positive integers`);
  }
  return x.length;
}

/** `sample_size` as [height, width] (a number, or a pair as diffusers allows). */
function sampleSize(x: unknown, where: string): [number, number] | undefined {
  if (x === undefined || x === null) return undefined;
  if (positiveInt(x)) return [x, x];
  if (Array.isArray(x) && x.length === 2 && x.every(positiveInt)) return [x[0], x[1]];
  throw new SizeConfigError(`${where}: sample_size must be a positive integer or [height, width]`);
}

/** Derives a folder's {@link SizeSupport}; throws {@link SizeConfigError} naming the missing key. */
export function sizeSupport(src: SizeSources): SizeSupport {
  const unetSample = sampleSize(src.unetConfig?.sample_size, "unet/config.json");
  const fixed = src.latentHeight !== null && src.latentWidth !== null;
  const latent: [number, number] | undefined = fixed
    ? [src.latentHeight!, src.latentWidth!]
    : unetSample;
  if (!latent) {
    throw new SizeConfigError(
      "unet/config.json: sample_size is needed (the export's latent height and width are " +
        "symbolic); keep the export's unet/config.json in the split folder (deno task split " +
        "copies it)",
    );
  }
  let factor = 1;
  if (src.hasVae) {
    const levels = channelCount(src.vaeConfig?.block_out_channels, "vae_decoder/config.json");
    const vaeSample = sampleSize(src.vaeConfig?.sample_size, "vae_decoder/config.json");
    if (levels !== undefined) factor = 2 ** (levels - 1);
    else if (vaeSample && vaeSample[0] % latent[0] === 0) factor = vaeSample[0] / latent[0];
    else {
      throw new SizeConfigError(
        "vae_decoder/config.json: block_out_channels (or sample_size) is needed to know the " +
          "VAE's scale factor; optimum writes the VAE's config.json there",
      );
    }
  }
  const unetLevels = channelCount(src.unetConfig?.block_out_channels, "unet/config.json") ?? 4;
  const native = { width: latent[1] * factor, height: latent[0] * factor };
  const multipleOf = factor * 2 ** (unetLevels - 1);
  if (fixed) {
    const side = Math.max(native.width, native.height);
    return {
      native,
      vaeScaleFactor: factor,
      dynamic: false,
      multipleOf,
      min: Math.min(native.width, native.height),
      max: side,
    };
  }
  const side = Math.max(native.width, native.height);
  const min = Math.max(multipleOf, Math.ceil(side * MIN_SIDE_FRACTION / multipleOf) * multipleOf);
  const max = Math.floor(side * MAX_SIDE_FACTOR / multipleOf) * multipleOf;
  return { native, vaeScaleFactor: factor, dynamic: true, multipleOf, min, max };
}

/** A requested size the model does not serve; `field` is the request field to name in a 4xx answer. */
export class UnsupportedSizeError extends Error {
  readonly field = "size";
  constructor(message: string) {
    super(message);
    this.name = "UnsupportedSizeError";
  }
}

/** Why `size` cannot be made by a model with support `s` (a sentence), or undefined when it can. */
export function sizeProblem(
  s: Omit<SizeSupport, "vaeScaleFactor">,
  size: ImageSize,
): string | undefined {
  const { width, height } = size;
  if (width === s.native.width && height === s.native.height) return undefined;
  const native = `${s.native.width}x${s.native.height}`;
  if (!s.dynamic) return `this model makes ${native} images only (its export has a fixed size)`;
  for (const side of [width, height]) {
    if (!Number.isInteger(side) || side % s.multipleOf !== 0 || side < s.min || side > s.max) {
      return `width and height must be multiples of ${s.multipleOf} in ${s.min}..${s.max} ` +
        `(native ${native})`;
    }
  }
  return undefined;
}

/** Latent height and width (values along each side of the UNet's sample). */
export interface LatentShape {
  height: number;
  width: number;
}

/**
 * The latent shape of an image size the model serves; throws {@link UnsupportedSizeError} with
 * {@link sizeProblem}'s reason otherwise.
 */
export function latentShapeOf(s: SizeSupport, size: ImageSize): LatentShape {
  const problem = sizeProblem(s, size);
  if (problem) throw new UnsupportedSizeError(`size ${size.width}x${size.height}: ${problem}`);
  return { height: size.height / s.vaeScaleFactor, width: size.width / s.vaeScaleFactor };
}

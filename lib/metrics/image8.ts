/**
 * The 8-bit image the paired metrics (PSNR, SSIM) take: interleaved RGB or RGBA bytes, row by
 * row, as a decoded PNG gives them. Alpha is never compared.
 *
 * @module
 */

/** An 8-bit interleaved RGB(A) image. */
export interface Image8 {
  width: number;
  height: number;
  /** 3 (RGB) or 4 (RGBA; alpha ignored by the metrics). */
  channels: 3 | 4;
  data: Uint8Array | Uint8ClampedArray;
}

/** Checks that two images are well-formed and the same size; throws naming the problem. */
export function checkImagePair(a: Image8, b: Image8, metric: string): void {
  for (const [name, im] of [["first", a], ["second", b]] as const) {
    if (
      !Number.isInteger(im.width) || !Number.isInteger(im.height) || im.width < 1 || im.height < 1
    ) {
      throw new Error(`${metric}: ${name} image has a bad size ${im.width}x${im.height}`);
    }
    if (im.channels !== 3 && im.channels !== 4) {
      throw new Error(`${metric}: ${name} image has ${im.channels} channels (expected 3 or 4)`);
    }
    if (im.data.length !== im.width * im.height * im.channels) {
      throw new Error(
        `${metric}: ${name} image has ${im.data.length} bytes, expected ` +
          `${im.width}x${im.height}x${im.channels}`,
      );
    }
  }
  if (a.width !== b.width || a.height !== b.height) {
    throw new Error(
      `${metric}: images differ in size (${a.width}x${a.height} vs ${b.width}x${b.height})`,
    );
  }
}

/** An RGBA image (`{ width, height, data }`, 4 bytes per pixel) as an {@link Image8}. */
export function rgba8(img: { width: number; height: number; data: Uint8Array }): Image8 {
  return { ...img, channels: 4 };
}

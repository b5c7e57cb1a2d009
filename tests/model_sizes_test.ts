/**
 * Sizes from a folder's own configs, with the configs real models ship: SD-1.5 (unet sample_size
 * 64, VAE block_out_channels of 4 levels: factor 8, 512 px), SD-2.x-768 (sample_size 96: 768 px),
 * a fixed-size export (the default model: 16x16 latent, VAE factor from its sample_size: 64 px),
 * and clear errors when a config is missing.
 */
import { assert, assertEquals, assertThrows } from "./_assert.ts";
import {
  latentShapeOf,
  sizeProblem,
  sizeSupport,
  UnsupportedSizeError,
} from "../lib/model/sizes.ts";

const SD_VAE = { block_out_channels: [128, 256, 512, 512], sample_size: 512 };
const SD15_UNET = { sample_size: 64, block_out_channels: [320, 640, 1280, 1280] };

Deno.test("SD-1.5: 512 px native, factor 8, multiples of 64 in 256..1024", () => {
  const s = sizeSupport({
    latentHeight: null,
    latentWidth: null,
    unetConfig: SD15_UNET,
    vaeConfig: SD_VAE,
    hasVae: true,
  });
  assertEquals(s, {
    native: { width: 512, height: 512 },
    vaeScaleFactor: 8,
    dynamic: true,
    multipleOf: 64,
    min: 256,
    max: 1024,
  });
  assertEquals(sizeProblem(s, { width: 768, height: 512 }), undefined);
  assertEquals(latentShapeOf(s, { width: 768, height: 512 }), { height: 64, width: 96 });
  assert(sizeProblem(s, { width: 520, height: 512 })!.includes("multiples of 64 in 256..1024"));
  assert(sizeProblem(s, { width: 2048, height: 512 })!.includes("native 512x512"));
  const e = assertThrows(() => latentShapeOf(s, { width: 100, height: 100 }), "size 100x100");
  assert(e instanceof UnsupportedSizeError && e.field === "size");
});

Deno.test("SD-2.x-768 serves 768 px natively; a [h, w] sample_size is read too", () => {
  const s = sizeSupport({
    latentHeight: null,
    latentWidth: null,
    unetConfig: { sample_size: 96, block_out_channels: [320, 640, 1280, 1280] },
    vaeConfig: SD_VAE,
    hasVae: true,
  });
  assertEquals([s.native.width, s.min, s.max], [768, 384, 1536]);
  const pair = sizeSupport({
    latentHeight: null,
    latentWidth: null,
    unetConfig: { sample_size: [64, 96] },
    vaeConfig: SD_VAE,
    hasVae: true,
  });
  assertEquals(pair.native, { width: 768, height: 512 });
});

Deno.test("a fixed-size export serves its native size only; the VAE factor from sample_size", () => {
  const s = sizeSupport({
    latentHeight: 16,
    latentWidth: 16,
    vaeConfig: { sample_size: 64 },
    hasVae: true,
  });
  assertEquals([s.native.width, s.vaeScaleFactor, s.dynamic], [64, 4, false]);
  assert(sizeProblem(s, { width: 128, height: 128 })!.includes("64x64 images only"));
  assertEquals(sizeProblem(s, { width: 64, height: 64 }), undefined);
  const pixel = sizeSupport({ latentHeight: 32, latentWidth: 32, hasVae: false });
  assertEquals([pixel.native.width, pixel.vaeScaleFactor], [32, 1]);
});

Deno.test("missing configs are named", () => {
  assertThrows(
    () => sizeSupport({ latentHeight: null, latentWidth: null, vaeConfig: SD_VAE, hasVae: true }),
    "unet/config.json: sample_size is needed",
  );
  assertThrows(
    () =>
      sizeSupport({
        latentHeight: null,
        latentWidth: null,
        unetConfig: SD15_UNET,
        vaeConfig: {},
        hasVae: true,
      }),
    "vae_decoder/config.json: block_out_channels",
  );
  assertThrows(
    () =>
      sizeSupport({
        latentHeight: null,
        latentWidth: null,
        unetConfig: { sample_size: "64" },
        hasVae: false,
      }),
    "sample_size must be a positive integer",
  );
});

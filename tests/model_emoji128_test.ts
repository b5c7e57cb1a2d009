/**
 * emoji-128, the GPU-class model whose weights are not trained yet (models/emoji-128/README.md):
 * its UNet topology, as the recipe's config sets it (tests/fixtures/tiny_unet128.onnx.gz, tiny
 * widths), splits into the cacheable blocks that config implies and runs split as it runs whole,
 * int8 included; and the service lists its folder only once it holds a model_index.json.
 */
import { assert, assertEquals } from "./_assert.ts";
import { isFile } from "../lib/io/fs.ts";
import { splitModel, type SplitResult } from "../lib/onnx/split.ts";
import { modelFolders } from "../lib/model/folder.ts";
import { createSession } from "../lib/runtime/session.ts";
import { ort, type Tensor } from "../lib/runtime/ort.ts";
import { toFloat32 } from "../lib/runtime/tensors.ts";
import { UNetEngine } from "../lib/unet/engine.ts";
import { gunzip } from "./support/sd_fixture.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const MODEL = `${ROOT}models/emoji-128`;
const UNET = JSON.parse(await Deno.readTextFile(`${MODEL}/recipe/config.json`)).unet as {
  sample_size: number;
  layers_per_block: number;
  down_block_types: string[];
  up_block_types: string[];
};
const TMP = await Deno.makeTempDir({ prefix: "emoji128-test-" });

/** The cacheable blocks (Transformer2D modules) of a diffusers-layout UNet config, in order. */
function expectedBlocks(): string[] {
  const attn = (t: string) => t.startsWith("CrossAttn");
  const n = UNET.layers_per_block;
  return [
    ...UNET.down_block_types.flatMap((t, i) =>
      attn(t) ? Array.from({ length: n }, (_, j) => `down_blocks.${i}.attentions.${j}`) : []
    ),
    "mid_block.attentions.0",
    ...UNET.up_block_types.flatMap((t, i) =>
      attn(t) ? Array.from({ length: n + 1 }, (_, j) => `up_blocks.${i}.attentions.${j}`) : []
    ),
  ];
}

let model: Promise<string> | undefined;
/** The fixture, unzipped into the temporary folder once. */
function fixture(): Promise<string> {
  model ??= gunzip(`${ROOT}tests/fixtures/tiny_unet128.onnx.gz`, `${TMP}/unet.onnx`)
    .then(() => `${TMP}/unet.onnx`);
  return model;
}

let splits: Promise<{ fp32: SplitResult; int8: SplitResult }> | undefined;
/** The fixture split with fp32 and with int8 weights, once. */
function getSplits() {
  splits ??= (async () => ({
    fp32: await splitModel(await fixture(), { out: `${TMP}/fp32` }),
    int8: await splitModel(await fixture(), { out: `${TMP}/int8`, precision: "int8" }),
  }))();
  return splits;
}

function inputs(): Record<string, Tensor> {
  let s = 7;
  const rnd = () => ((s = (s * 16807) % 2147483647) / 2147483647) * 2 - 1;
  const side = UNET.sample_size;
  return {
    sample: new ort.Tensor("float32", Float32Array.from({ length: 2 * 4 * side * side }, rnd), [
      2,
      4,
      side,
      side,
    ]),
    timestep: new ort.Tensor("int64", BigInt64Array.of(500n), [1]),
    encoder_hidden_states: new ort.Tensor(
      "float32",
      Float32Array.from({ length: 2 * 4 * 8 }, rnd),
      [
        2,
        4,
        8,
      ],
    ),
  };
}

async function splitOutput(dir: string): Promise<Float32Array> {
  const engine = await UNetEngine.load(dir, { backend: "wasm", log: () => {} });
  try {
    return await toFloat32((await engine.run(inputs())).out_sample);
  } finally {
    await engine.release();
  }
}

Deno.test("emoji-128: the UNet splits into the blocks its config implies, on a 32x32x4 latent", async () => {
  const { manifest } = (await getSplits()).fp32;
  const blocks = manifest.segments.filter((s) => s.kind === "block").map((s) => s.name);
  assertEquals(blocks, expectedBlocks());
  // no attention at 32x32 on the way down: the first block is at 16x16, the last two at 32x32
  assertEquals(blocks[0], "down_blocks.1.attentions.0");
  const sample = manifest.inputs.find((i) => i.name === "sample")!;
  assertEquals(sample.shape.slice(1), [4, UNET.sample_size, UNET.sample_size]);
});

Deno.test("emoji-128: split fp32 equals the whole UNet within 1e-5, int8 within 3% (wasm)", async () => {
  const { fp32: f, int8: q } = await getSplits();
  const whole = await createSession(await Deno.readFile(await fixture()), "wasm");
  const want = await toFloat32((await whole.run(inputs())).out_sample);
  await whole.release();
  const fp32 = await splitOutput(f.dir);
  let maxAbs = 0;
  for (let i = 0; i < want.length; i++) maxAbs = Math.max(maxAbs, Math.abs(fp32[i] - want[i]));
  assert(maxAbs <= 1e-5, `fp32 split: max |split − whole| = ${maxAbs}`);
  const int8 = await splitOutput(q.dir);
  let err = 0, norm = 0;
  for (let i = 0; i < want.length; i++) {
    err += (int8[i] - want[i]) ** 2;
    norm += want[i] ** 2;
  }
  assert(Math.sqrt(err / norm) < 0.03, `int8 split: relative L2 error ${Math.sqrt(err / norm)}`);
});

Deno.test("emoji-128: the service lists the folder only when it holds a model_index.json", async () => {
  const listed = await modelFolders(`${ROOT}models`);
  for (const dir of listed) assert(await isFile(`${dir}/model_index.json`), dir);
  const trained = await isFile(`${MODEL}/model_index.json`);
  assertEquals(listed.some((d) => d.endsWith("/emoji-128")), trained);
});

Deno.test("emoji-128: clean up", async () => {
  await Deno.remove(TMP, { recursive: true });
});

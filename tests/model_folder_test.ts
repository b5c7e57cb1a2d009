/**
 * Reading and checking a model folder before any session exists: the SD-shaped fixture in optimum's
 * layout reads with its configs' sizes, scheduler class and text-encoder contract, and every kind
 * of broken folder is refused with a reason that names the file and what is wrong.
 */
import { assert, assertEquals, assertRejects } from "./_assert.ts";
import { checkModelFolder, ModelFolderError, readModelFolder } from "../lib/model/folder.ts";
import { sdModel } from "./support/sd_fixture.ts";

const TMP = await Deno.makeTempDir({ prefix: "model-folder-test-" });
const GOOD = await sdModel(`${TMP}/sd-good`);

/** A copy of the good folder, changed by `edit`, at `${TMP}/<name>`. */
async function broken(name: string, edit: (dir: string) => Promise<void>): Promise<string> {
  const dir = `${TMP}/${name}`;
  await new Deno.Command("cp", { args: ["-r", GOOD, dir] }).output();
  await edit(dir);
  return dir;
}

async function editJson(path: string, edit: (json: Record<string, unknown>) => void) {
  const json = JSON.parse(await Deno.readTextFile(path));
  edit(json);
  await Deno.writeTextFile(path, JSON.stringify(json));
}

type Spec = { name: string; shape: (number | string)[] };

Deno.test("an optimum-layout SD folder reads with its own sizes, scheduler and contracts", async () => {
  const m = await readModelFolder(GOOD);
  assertEquals(m.name, "sd-good", "no _name_or_path: the folder names the model");
  assertEquals(m.sizes, {
    native: { width: 64, height: 64 },
    vaeScaleFactor: 8,
    dynamic: true,
    multipleOf: 32,
    min: 32,
    max: 128,
  });
  assertEquals([m.imageSize, m.latentSize, m.latentChannels], [64, 8, 4]);
  assertEquals(m.unetInputs.timestep, { dtype: "float32", form: "per-sample" });
  assertEquals([m.schedulerClass, m.schedulerMapping], ["PNDMScheduler", {
    solver: "dpm",
    exact: false,
  }]);
  assertEquals(m.scheduler.steps_offset, 1);
  assertEquals([m.inputIdsDType, m.textEncoderOutput], ["int32", "last_hidden_state"]);
  assertEquals(m.vaeScalingFactor, 0.18215);

  const int64 = await sdModel(`${TMP}/sd-int64`, { timestep: "int64_steps", inputIds: "int64" });
  const m64 = await readModelFolder(int64);
  assertEquals([m64.inputIdsDType, m64.unetInputs.timestep.dtype], ["int64", "int64"]);
  const scalar = await readModelFolder(
    await sdModel(`${TMP}/sd-scalar`, { timestep: "float32_scalar" }),
  );
  assertEquals(scalar.unetInputs.timestep.form, "scalar");
});

Deno.test("the default model reads as before: 16x16 latent, 64 px, fixed size", async () => {
  const m = await readModelFolder(new URL("../models/emoji-ldm", import.meta.url).pathname);
  assertEquals([m.name, m.latentSize, m.imageSize, m.sizes.dynamic], ["emoji-ldm", 16, 64, false]);
  assertEquals(m.unetInputs.timestep, { dtype: "int64", form: "fixed", length: 1 });
});

Deno.test("broken folders are refused before any session, naming the file and the reason", async () => {
  const cases: [string, (dir: string) => Promise<void>, string][] = [
    ["no-index", (d) => Deno.remove(`${d}/model_index.json`), "model_index.json not found"],
    [
      "bad-json",
      (d) => Deno.writeTextFile(`${d}/scheduler/scheduler_config.json`, "{"),
      "scheduler/scheduler_config.json is not valid JSON",
    ],
    [
      "lcm",
      (d) =>
        editJson(`${d}/scheduler/scheduler_config.json`, (j) => (j._class_name = "LCMScheduler")),
      "LCMScheduler is not supported",
    ],
    [
      "no-merges",
      (d) => Deno.remove(`${d}/tokenizer/merges.txt`),
      "merges.txt: not found",
    ],
    [
      "no-text-encoder",
      (d) => Deno.remove(`${d}/text_encoder/model.onnx`),
      "text_encoder/model.onnx not found",
    ],
    [
      "corrupt-vae",
      async (d) => {
        const bytes = await Deno.readFile(`${d}/vae_decoder/model.onnx`);
        await Deno.writeFile(`${d}/vae_decoder/model.onnx`, bytes.subarray(0, 1000));
      },
      "vae_decoder/model.onnx: not an ONNX model",
    ],
    [
      "unsplit",
      async (d) => {
        await Deno.remove(`${d}/unet`, { recursive: true });
        await Deno.rename(`${d}/unet-monolithic`, `${d}/unet`);
      },
      "unet/split.json (run `deno task split` on the UNet export first) not found",
    ],
    [
      "missing-segment",
      async (d) => {
        const split = JSON.parse(await Deno.readTextFile(`${d}/unet/split.json`));
        await Deno.remove(`${d}/unet/${split.segments[3].file}`);
      },
      "is missing; split the model again",
    ],
    [
      "timestep-rank-2",
      (d) =>
        editJson(`${d}/unet/split.json`, (j) => {
          const t = (j.inputs as Spec[]).find((i) => i.name === "timestep")!;
          t.shape = ["batch", 1];
        }),
      "timestep is declared float32 [batch, 1]",
    ],
    [
      "width-mismatch",
      (d) =>
        editJson(`${d}/unet/split.json`, (j) => {
          const h = (j.inputs as Spec[]).find((i) => i.name === "encoder_hidden_states")!;
          h.shape = ["batch", "sequence", 768];
        }),
      "text_encoder gives 8-wide embeddings, the UNet's encoder_hidden_states are 768 wide",
    ],
    [
      "no-unet-config",
      (d) => Deno.remove(`${d}/unet/config.json`),
      "unet/config.json: sample_size is needed",
    ],
  ];
  for (const [name, edit, reason] of cases) {
    const dir = await broken(name, edit);
    const got = await checkModelFolder(dir);
    assert(got !== null && got.includes(reason), `${name}: ${got}`);
    const e = await assertRejects(() => readModelFolder(dir), reason);
    assert(e instanceof ModelFolderError && e.dir === dir && e.reason === got, name);
  }
});

Deno.test("clean up", async () => {
  await Deno.remove(TMP, { recursive: true });
});

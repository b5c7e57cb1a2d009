/**
 * The model folder's manifest (lib/model/manifest.ts) and `deno task manifest` (lib/cli/manifest.ts)
 * on copies of the shipped model: every listed file is checked before serving (the issue: 16
 * bytes flipped in the text encoder or the VAE decoder went unnoticed), each named; the manifest
 * tool checks by default and rewrites only with --write.
 */
import { assert, assertEquals } from "./_assert.ts";
import { ModelIntegrityError, readManifest, verifyModelFolder } from "../lib/model/manifest.ts";
import { manifestCommand } from "../lib/cli/manifest.ts";
import { generateCommand } from "../lib/cli/generate.ts";
import { SplitIntegrityError, UNetEngine } from "../lib/unet/engine.ts";

const MODEL = new URL("../models/emoji-ldm", import.meta.url).pathname;

/** A copy of the shipped model folder (without its recipe) in a temporary folder. */
async function copyModel(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "model-copy-" });
  const manifest = await readManifest(MODEL);
  for (const f of [...manifest!.files.map((f) => f.path), "manifest.json"]) {
    const to = `${dir}/${f}`;
    await Deno.mkdir(to.slice(0, to.lastIndexOf("/")), { recursive: true });
    await Deno.copyFile(`${MODEL}/${f}`, to);
  }
  return dir;
}

/** Flips 16 bytes in the middle of a file (its size stays the same). */
async function flip16(path: string): Promise<void> {
  const bytes = await Deno.readFile(path);
  const at = Math.floor(bytes.length / 2);
  for (let i = at; i < at + 16; i++) bytes[i] ^= 0x5a;
  await Deno.writeFile(path, bytes);
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected a rejection");
}

Deno.test("verifyModelFolder: the shipped model passes, every listed file checked", async () => {
  const n = await verifyModelFolder(MODEL);
  assertEquals(n, (await readManifest(MODEL))!.files.length);
  assert(n > 20);
});

Deno.test("verifyModelFolder: any changed listed file is named, whichever part it is", async () => {
  const dir = await copyModel();
  try {
    for (const file of ["text_encoder/model.onnx", "vae_decoder/model.onnx", "unet/split.json"]) {
      const original = await Deno.readFile(`${dir}/${file}`);
      await flip16(`${dir}/${file}`);
      const e = await rejection(verifyModelFolder(dir));
      assert(e instanceof ModelIntegrityError, String(e));
      assertEquals(e.problems.length, 1);
      assert(e.problems[0].startsWith(`${file} has sha256 `), e.problems[0]);
      assert(e.message.includes(`deno task manifest ${dir} --write`), e.message);
      assert(!e.message.includes("split the model again"));
      await Deno.writeFile(`${dir}/${file}`, original);
    }
    // cut short, and missing
    const vocab = await Deno.readTextFile(`${dir}/tokenizer/vocab.json`);
    await Deno.writeTextFile(`${dir}/tokenizer/vocab.json`, vocab.slice(0, 100));
    await Deno.remove(`${dir}/scheduler/scheduler_config.json`);
    const e = await rejection(verifyModelFolder(dir)) as ModelIntegrityError;
    assertEquals(e.problems, [
      `scheduler/scheduler_config.json is missing`,
      `tokenizer/vocab.json is 100 bytes, manifest.json says ${
        new TextEncoder().encode(vocab).length
      }`,
    ]);
    // a folder without a manifest (a user's export) has nothing to check
    await Deno.remove(`${dir}/manifest.json`);
    assertEquals(await verifyModelFolder(dir), 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task generate refuses a damaged model folder, naming the file, before loading", async () => {
  const dir = await copyModel();
  try {
    await flip16(`${dir}/text_encoder/model.onnx`);
    const err: string[] = [];
    const code = await generateCommand(
      ["--prompt", "google red apple", "--out", `${dir}/a.png`, "--model", dir],
      { print: () => {}, printError: (l) => err.push(l) },
    );
    assertEquals(code, 1);
    assertEquals(err.length, 1);
    assert(err[0].includes("text_encoder/model.onnx has sha256"), err[0]);
    assert(!(await Deno.stat(`${dir}/a.png`).then(() => true, () => false)));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task manifest: checks by default (writes nothing), rewrites only with --write", async () => {
  const dir = await copyModel();
  try {
    const run = async (args: string[]) => {
      const out: string[] = [], err: string[] = [];
      const code = await manifestCommand(args, (l) => out.push(l), (l) => err.push(l));
      return { code, out, err };
    };
    assertEquals((await run([dir])).code, 0);
    await flip16(`${dir}/text_encoder/model.onnx`);
    const before = await Deno.readTextFile(`${dir}/manifest.json`);
    const checked = await run([dir]);
    assertEquals(checked.code, 1);
    assert(checked.err[0].includes("text_encoder/model.onnx has sha256"), checked.err[0]);
    assert(checked.err.at(-1)!.includes("--write"));
    assertEquals(await Deno.readTextFile(`${dir}/manifest.json`), before); // not rewritten
    assertEquals((await run([dir, "--verify"])).code, 1);
    const written = await run([dir, "--write"]);
    assertEquals(written.code, 0);
    assert(
      written.out.some((l) => l.startsWith("changed text_encoder/model.onnx")),
      written.out[0],
    );
    assertEquals((await run([dir])).code, 0);
    await Deno.remove(`${dir}/manifest.json`);
    const none = await run([dir]);
    assertEquals([none.code, none.err[0].includes("not found (create it with --write)")], [
      1,
      true,
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a damaged UNet segment: the load error says restore it, not 'split the model again'", async () => {
  const dir = await copyModel();
  try {
    await flip16(`${dir}/unet/00_glue_00.onnx`);
    const e = await rejection(UNetEngine.load(`${dir}/unet`, { backend: "wasm", log: () => {} }));
    assert(e instanceof SplitIntegrityError, String(e));
    assert(e.message.includes("00_glue_00.onnx has sha256"), e.message);
    assert(e.message.includes(`git checkout -- ${dir}/unet`), e.message);
    assert(!e.message.includes("split the model again"), e.message);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

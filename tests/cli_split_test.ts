import { assert, assertEquals, assertThrows } from "./_assert.ts";
import { main, parseSplitArgs } from "../lib/cli/split.ts";
import { DEFAULT_BLOCK_PATTERN } from "../lib/onnx/split.ts";

const FIXTURE = new URL("./fixtures/tiny_unet.onnx", import.meta.url).pathname;
const CLI = new URL("../lib/cli/split.ts", import.meta.url).pathname;

Deno.test("flags parse into split options with defaults", () => {
  assertEquals(parseSplitArgs(["m.onnx", "--out", "plans/x"]), {
    model: "m.onnx",
    out: "plans/x",
    mode: "residual",
    precision: "fp32",
    blockPattern: DEFAULT_BLOCK_PATTERN,
  });
  assertEquals(
    parseSplitArgs([
      "--out=p",
      "--mode",
      "output",
      "--quantize",
      "int8",
      "--blocks",
      "^mid_block$",
      "--external-threshold-mb",
      "2",
      "m.onnx",
    ]),
    {
      model: "m.onnx",
      out: "p",
      mode: "output",
      precision: "int8",
      blockPattern: "^mid_block$",
      externalThreshold: 2 * 1024 * 1024,
    },
  );
});

Deno.test("bad flags are refused naming the flag", () => {
  assertThrows(
    () => parseSplitArgs(["m.onnx", "--out", "p", "--bogus", "1"]),
    "unknown flag --bogus",
  );
  assertThrows(
    () => parseSplitArgs(["m.onnx", "--out", "p", "--mode", "blocks"]),
    "--mode must be residual or output",
  );
  assertThrows(
    () => parseSplitArgs(["m.onnx", "--out", "p", "--quantize", "int4"]),
    "--quantize must be one of",
  );
  assertThrows(() => parseSplitArgs(["m.onnx"]), "flag --out is required");
  assertThrows(() => parseSplitArgs(["m.onnx", "--out"]), "flag --out needs a value");
  assertThrows(() => parseSplitArgs(["--out", "p"]), "missing the model file");
  assertThrows(() => parseSplitArgs(["a.onnx", "b.onnx", "--out", "p"]), "one model file expected");
  assertThrows(
    () => parseSplitArgs(["m.onnx", "--out", "p", "--blocks", "(("]),
    "--blocks is not a valid regular expression",
  );
  assertThrows(
    () => parseSplitArgs(["m.onnx", "--out", "p", "--external-threshold-mb", "x"]),
    "--external-threshold-mb must be a number",
  );
  assertThrows(
    () => parseSplitArgs(["m.onnx", "--out", "p", "--external-threshold-mb", "-1"]),
    "must be positive",
  );
});

Deno.test("main: exit 2 on bad usage, 1 on a refused model, 0 on success", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "cli-split-test-" });
  try {
    const out: string[] = [], err: string[] = [];
    const run = (args: string[]) => main(args, (l) => out.push(l), (l) => err.push(l));
    assertEquals(await run(["--quantize", "fp8", FIXTURE, "--out", `${tmp}/p`]), 2);
    assertEquals(err, ['split: --quantize must be one of fp32, fp16, int8, uint8, got "fp8"']);
    err.length = 0;
    assertEquals(await run(["--out", `${tmp}/p`]), 2);
    assert(err[0].startsWith("split: missing the model file"), err[0]);
    assert(err[0].includes("usage: deno task split"), err[0]);

    err.length = 0;
    await Deno.writeTextFile(`${tmp}/x.onnx`, "hello");
    assertEquals(await run([`${tmp}/x.onnx`, "--out", `${tmp}/p`]), 1);
    assert(err[0].startsWith("split: ") && err[0].includes("not an ONNX model"), err[0]);

    assertEquals(await run([FIXTURE, "--out", `${tmp}/p`, "--mode", "output"]), 0);
    assert(
      out.at(-1)!.startsWith(`wrote ${tmp}/p: 15 segments, 7 cacheable blocks (output, fp32)`),
      out.at(-1),
    );
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("the task's command line exits 2 on a bad flag without a stack trace", async () => {
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      CLI,
      FIXTURE,
      "--out",
      "/nonexistent/p",
      "--mode",
      "both",
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(stderr);
  assertEquals(code, 2);
  assert(text.includes("split: --mode must be residual or output"), text);
  assert(!/^\s+at /m.test(text), `no stack trace: ${text}`);
});

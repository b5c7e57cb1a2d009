import { assert, assertEquals } from "./_assert.ts";
import { calibrateCommand } from "../lib/cli/calibrate.ts";

async function run(args: string[]): Promise<{ code: number; err: string }> {
  const errors: string[] = [];
  const original = console.error;
  console.error = (...a: unknown[]) => void errors.push(a.join(" "));
  try {
    return { code: await calibrateCommand(args), err: errors.join("\n") };
  } finally {
    console.error = original;
  }
}

const MODEL = new URL("../models/emoji-ldm", import.meta.url).pathname;

Deno.test("calibrate: bad flags are refused naming the flag, before any model runs", async () => {
  const cases: [string[], string][] = [
    [["--bogus"], "unknown flag --bogus"],
    [["--steps"], "--steps needs a value"],
    [["--steps", "x"], "--steps must be an integer"],
    [["--model", "/nonexistent"], "--model: /nonexistent is not a model folder"],
    [["--model", MODEL, "--solver", "heun"], "--solver must be one of"],
    [["--model", MODEL, "--steps", "500"], "--steps must be in 2..100"],
    [["--model", MODEL, "--deltas", "a,b"], "--deltas must be a comma-separated list"],
    [["--model", MODEL, "--deltas", "1", "--skip-targets", "0.5"], "not both"],
    [["--model", MODEL, "--skip-targets", "1.5"], "--skip-targets must be fractions"],
    [["--model", MODEL, "--uniform", "1.5"], "--uniform must list positive integers"],
    [["--model", MODEL, "--backend", "cuda"], "--backend must be"],
    [
      ["--model", MODEL, "--scale-shift-form", "taylor"],
      "--scale-shift-form must be history or paper",
    ],
    [["--model", MODEL, "--prompts", "/nonexistent.txt"], "--prompts: cannot read"],
    // without --out, the shipped schedules are not overwritten
    [
      ["--model", MODEL, "--solver", "dpm", "--steps", "20"],
      "schedules/emoji-ldm already holds dpm-20 schedules (dpm-20-delta-",
    ],
    [
      ["--model", MODEL, "--steps", "20"],
      "Pass --out DIR to write elsewhere, or --out schedules/emoji-ldm to replace them",
    ],
  ];
  for (const [args, message] of cases) {
    const r = await run(args);
    assertEquals(r.code, 2, args.join(" "));
    assert(r.err.includes(message), `${args.join(" ")}: ${r.err}`);
    assert(!r.err.includes("    at "), "no stack trace");
  }
});

Deno.test("calibrate: a small run writes curves, schedules with scale-shift, pictures and the index", async () => {
  const out = await Deno.makeTempDir({ prefix: "calibrate-" });
  const prompts = `${out}/prompts.txt`;
  await Deno.writeTextFile(prompts, "google red apple\ntwitter dog face\n");
  const log = console.log;
  console.log = () => {};
  let code: number;
  try {
    code = await calibrateCommand([
      "--model",
      MODEL,
      "--solver",
      "ddim",
      "--steps",
      "4",
      "--skip-targets",
      "0.5",
      "--uniform",
      "2",
      "--seeds",
      "1",
      "--prompts",
      prompts,
      "--out",
      out,
      "--recommend",
      "0.5",
      "--backend",
      "wasm",
    ]);
  } finally {
    console.log = log;
  }
  assertEquals(code, 0);
  const files = [...Deno.readDirSync(out)].map((e) => e.name).sort();
  assert(files.includes("ddim-4.curves.json") && files.includes("ddim-4.curves.svg"), files.join());
  assert(files.includes("ddim-4-uniform-2.json") && files.includes("ddim-4-uniform-2.svg"));
  const index = JSON.parse(await Deno.readTextFile(`${out}/index.json`));
  const recommended = JSON.parse(
    await Deno.readTextFile(`${out}/ddim-4-${index.recommended["ddim-4"]}.json`),
  );
  assertEquals(recommended.kind, "delta");
  assert(recommended.skippedFraction > 0, "the 0.5 target reuses blocks");
  assert(Object.keys(recommended.scaleShift).length > 0, "scale-shift fitted");
  assert(!files.some((f) => f.endsWith(".tmp")), "no temporary files left");
});

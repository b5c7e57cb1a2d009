/**
 * `deno task generate` (lib/cli/generate.ts): a message naming the flag or line for every bad
 * input (exit 2, no stack trace, no model loaded), single and batch runs on the default model,
 * and no partial files when an image fails or the run is interrupted.
 */
import { assert, assertEquals } from "./_assert.ts";
import {
  DEFAULT_MODEL_DIR,
  generateCommand,
  type GenerateCommandOptions,
  groupJobs,
  parseBatchLines,
  parseGenerateArgs,
} from "../lib/cli/generate.ts";
import { decodePng } from "../lib/image/png.ts";
import type { Pipeline } from "../lib/pipeline/pipeline.ts";
import type { GenerateRequest } from "../lib/pipeline/types.ts";
import { testPipeline, writeUniformSchedule } from "./support/generator.ts";

/** Runs the command in-process with captured output and the shared test pipeline. */
async function run(args: string[], extra: Partial<GenerateCommandOptions> = {}) {
  const out: string[] = [], err: string[] = [];
  let loads = 0;
  const code = await generateCommand(args, {
    print: (l) => out.push(l),
    printError: (l) => err.push(l),
    load: (dir, backend) => {
      loads++;
      assertEquals(dir, DEFAULT_MODEL_DIR);
      return testPipeline(backend === "auto" ? "wasm" : backend);
    },
    ...extra,
  });
  return { code, out, err, loads };
}

async function tempDir(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "cli-generate-" });
}

async function listing(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

function request(over: Partial<GenerateRequest>): GenerateRequest {
  return {
    prompt: "x",
    negativePrompt: "",
    seed: 0,
    steps: 20,
    guidanceScale: 4,
    solver: "dpm",
    cache: "auto",
    ...over,
  };
}

async function sameAsPipeline(p: Pipeline, file: string, req: GenerateRequest): Promise<boolean> {
  const bytes = await Deno.readFile(file);
  const ref = (await p.generate(req)).png;
  return bytes.length === ref.length && bytes.every((v, i) => v === ref[i]);
}

Deno.test("bad flags: exit 2 with one message naming the flag, no model loaded", async (t) => {
  const o = ["--out", "a.png"];
  const cases: [string, string[], string][] = [
    ["unknown flag", ["--prompt", "x", ...o, "--colour", "red"], "unknown flag --colour"],
    [
      "a request field's API name",
      ["--prompt", "x", ...o, "--negative_prompt", "blurry"],
      "unknown flag --negative_prompt (the request field negative_prompt is --negative)",
    ],
    [
      "a request field's API name, with =",
      ["--prompt", "x", ...o, "--guidance_scale=2"],
      "unknown flag --guidance_scale (the request field guidance_scale is --guidance)",
    ],
    ["missing value", ["--prompt"], "flag --prompt needs a value"],
    ["missing value before a flag", ["--prompt", "x", "--seed", "--out", "a.png"], "flag --seed"],
    [
      "bad integer",
      ["--prompt", "x", ...o, "--seed", "abc"],
      '--seed must be an integer, got "abc"',
    ],
    [
      "negative seed",
      ["--prompt", "x", ...o, "--seed", "-1"],
      "--seed must be an integer from 0 to 4294967295",
    ],
    [
      "steps 0",
      ["--prompt", "x", ...o, "--steps", "0"],
      "--steps must be an integer from 1 to 100",
    ],
    [
      "steps 101",
      ["--prompt", "x", ...o, "--steps", "101"],
      "--steps must be an integer from 1 to 100",
    ],
    ["steps 2.5", ["--prompt", "x", ...o, "--steps", "2.5"], "--steps must be an integer"],
    ["unknown solver", ["--prompt", "x", ...o, "--solver", "heun"], "--solver must be one of"],
    ["guidance text", ["--prompt", "x", ...o, "--guidance", "lots"], "--guidance must be a number"],
    ["guidance 31", ["--prompt", "x", ...o, "--guidance", "31"], "--guidance must be from 0 to 30"],
    ["unknown backend", ["--prompt", "x", ...o, "--backend", "cuda"], "--backend must be one of"],
    ["unknown model", ["--prompt", "x", ...o, "--model", "nope"], "--model: nope is not a model"],
    ["empty prompt", ["--prompt", " ", ...o], "--prompt must not be empty"],
    ["missing --out", ["--prompt", "x"], "missing --out"],
    ["nothing to do", ["--steps", "3"], "give --prompt TEXT --out FILE.png, or --batch"],
    ["both modes", ["--prompt", "x", "--batch", "p.jsonl"], "cannot be used together"],
    ["missing --out-dir", ["--batch", "p.jsonl"], "missing --out-dir"],
    ["--out with --batch", ["--batch", "p.jsonl", "--out", "a.png"], "--out goes with --prompt"],
    ["stray argument", ["--prompt", "x", ...o, "extra"], 'unexpected argument "extra"'],
    ["missing batch file", ["--batch", "no-such.jsonl", "--out-dir", "d"], "--batch: cannot read"],
    [
      "bad batch size",
      ["--batch", "p.jsonl", "--out-dir", "d", "--batch-size", "0"],
      "--batch-size must be in 1..16",
    ],
  ];
  for (const [name, args, message] of cases) {
    await t.step(name, async () => {
      const r = await run(args);
      assertEquals(r.code, 2, name);
      assertEquals(r.err.length, 1, `${name}: ${r.err.join(" | ")}`);
      assert(r.err[0].startsWith("generate: "), r.err[0]);
      assert(r.err[0].includes(message), `${name}: "${r.err[0]}" lacks "${message}"`);
      assertEquals([r.loads, r.out.length], [0, 0]);
    });
  }
});

Deno.test("bad batch lines: exit 2 naming the file, line and field, before loading", async (t) => {
  const dir = await tempDir();
  try {
    const ok = '{"id":"a","prompt":"apple"}';
    const cases: [string, string, string][] = [
      ["not JSON", `${ok}\n{"id":"b", prompt}`, "line 2: not valid JSON"],
      ["not an object", `[1, 2]`, "line 1: must be a JSON object"],
      ["missing prompt", `{"id":"b"}`, "line 1: missing prompt"],
      ["missing id", `{"prompt":"x"}`, "line 1: missing id"],
      ["duplicate id", `${ok}\n\n{"id":"a","prompt":"pear"}`, 'line 3: id "a" repeats line 1'],
      ["duplicate id by case", `${ok}\n{"id":"A","prompt":"pear"}`, 'line 2: id "A" repeats'],
      ["path in id", `{"id":"../evil","prompt":"x"}`, "line 1: id must be a plain file name"],
      ["slash in id", `{"id":"a/b","prompt":"x"}`, "line 1: id must be a plain file name"],
      ["hidden id", `{"id":".a","prompt":"x"}`, "line 1: id must be a plain file name"],
      ["number id", `{"id":5,"prompt":"x"}`, "line 1: id must be a plain file name"],
      ["unknown field", `{"id":"b","prompt":"x","size":64}`, 'line 1: unknown field "size"'],
      [
        "steps out of range",
        `{"id":"b","prompt":"x","steps":500}`,
        "line 1: steps must be an integer from 1 to 100",
      ],
      ["seed a string", `{"id":"b","prompt":"x","seed":"7"}`, "line 1: seed must be an integer"],
      ["unknown solver", `{"id":"b","prompt":"x","solver":"heun"}`, "line 1: solver must be one"],
      ["empty file", "\n\n", "has no lines"],
    ];
    for (const [name, text, message] of cases) {
      await t.step(name, async () => {
        const file = `${dir}/p.jsonl`;
        await Deno.writeTextFile(file, text);
        const r = await run(["--batch", file, "--out-dir", `${dir}/out`]);
        assertEquals(r.code, 2, name);
        assertEquals(r.err.length, 1);
        assert(r.err[0].includes(message), `${name}: "${r.err[0]}" lacks "${message}"`);
        assert(r.err[0].includes(file) || name === "empty file", r.err[0]);
        assertEquals(r.loads, 0);
      });
    }
    assertEquals(await listing(dir), ["p.jsonl"]); // nothing else was created
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("batch lines take the flags as defaults; groups share settings in order", () => {
  const lines = parseBatchLines(
    [
      '{"id":"a","prompt":"apple"}',
      '{"id":"b","prompt":"pear","steps":3}',
      '{"id":"c","prompt":"plum","seed":9}',
      '{"id":"d","prompt":"fig"}',
    ].join("\n"),
    "p.jsonl",
    { steps: 2, seed: 1, negative_prompt: "blurry" },
  );
  assertEquals(lines.map((l) => [l.id, l.req.steps, l.req.seed, l.req.negativePrompt]), [
    ["a", 2, 1, "blurry"],
    ["b", 3, 1, "blurry"],
    ["c", 2, 9, "blurry"],
    ["d", 2, 1, "blurry"],
  ]);
  const jobs = lines.map((l) => ({ out: `${l.id}.png`, label: l.id, req: l.req }));
  assertEquals(groupJobs(jobs, 2).map((g) => g.map((j) => j.label)), [["a", "c"], ["b"], ["d"]]);
  assertEquals(groupJobs(jobs, 1).length, 4);
});

Deno.test("a bad --cache is named after loading, listing the schedules with solver and steps", async () => {
  const p = await testPipeline("wasm");
  const dir = await tempDir();
  try {
    const r = await run(["--prompt", "x", "--out", `${dir}/a.png`, "--cache", "no-such"]);
    assertEquals(r.code, 2);
    assert(
      r.err[0].startsWith("generate: --cache: unknown schedule no-such; use none, auto"),
      r.err[0],
    );
    assert(p.schedules.schedules.length > 1);
    for (const s of p.schedules.schedules) {
      assert(
        r.err[0].includes(
          `${s.solver}-${s.steps}-${s.name} (${s.solver}, ${s.steps} steps, skips `,
        ),
        r.err[0],
      );
    }
    // a shipped schedule's id for another solver and step count says which flags fit it
    const other = p.schedules.schedules.find((s) => s.solver !== "dpm")!;
    const id = `${other.solver}-${other.steps}-${other.name}`;
    const r2 = await run(["--prompt", "x", "--out", `${dir}/a.png`, "--cache", id]);
    assertEquals(r2.code, 2);
    assert(r2.err[0].includes(`add --solver ${other.solver} --steps ${other.steps}`), r2.err[0]);
    assertEquals(await listing(dir), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("prompts with no known token are refused before loading, naming the flag or line", async () => {
  for (const prompt of ["🍎", "红苹果", "تفاحة حمراء", "!!! ???"]) {
    const r = await run(["--prompt", prompt, "--out", "a.png"]);
    assertEquals([r.code, r.loads, r.out], [2, 0, []], prompt);
    assertEquals(r.err.length, 1);
    assert(
      r.err[0].startsWith(
        `generate: --prompt ${JSON.stringify(prompt)} has no token the model knows`,
      ),
      r.err[0],
    );
  }
  const dir = await tempDir();
  try {
    const file = `${dir}/p.jsonl`;
    await Deno.writeTextFile(
      file,
      '{"id":"a","prompt":"google red apple"}\n{"id":"b","prompt":"🍎"}\n',
    );
    const r = await run(["--batch", file, "--out-dir", `${dir}/out`]);
    assertEquals([r.code, r.loads], [2, 0]);
    assert(r.err[0].startsWith(`generate: ${file} line 2: prompt "🍎" has no token`), r.err[0]);
    assertEquals(await listing(dir), ["p.jsonl"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a prompt longer than the text encoder reads: a warning names the limit and the ignored words", async () => {
  const dir = await tempDir();
  try {
    const prompt = "twitter red apple" + " heart".repeat(11) + " google dog face grinning";
    const r = await run([
      "--prompt",
      prompt,
      "--out",
      `${dir}/a.png`,
      "--steps",
      "1",
      "--negative",
      "🍎",
    ]);
    assertEquals(r.code, 0);
    assertEquals(r.err, [
      'generate: warning: --prompt is 18 tokens, the text encoder reads the first 14: "google dog face grinning" is ignored',
      "generate: warning: --negative has no token the model knows; it acts as no negative prompt",
    ]);
    assertEquals(await listing(dir), ["a.png"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("prompt length is counted in Unicode code points, as the service counts it", async () => {
  const ok = "twitter red apple " + "🍎".repeat(600); // 618 code points, 1218 UTF-16 units
  const plan = await parseGenerateArgs(["--prompt", ok, "--out", "a.png"]);
  assertEquals(plan.jobs[0].req.prompt, ok);
  const r = await run(["--prompt", "a".repeat(1001), "--out", "a.png"]);
  assertEquals(r.code, 2);
  assert(
    r.err[0].includes("--prompt is 1001 characters (Unicode code points); at most 1000"),
    r.err[0],
  );
});

Deno.test("the sample examples/prompts.jsonl runs as --batch", async () => {
  const dir = await tempDir();
  try {
    const sample = new URL("../examples/prompts.jsonl", import.meta.url).pathname;
    const r = await run(["--batch", sample, "--out-dir", dir, "--steps", "2"]);
    assertEquals([r.code, r.err], [0, []]);
    const ids = (await Deno.readTextFile(sample)).trim().split("\n").map((l) => JSON.parse(l).id);
    assert(ids.length >= 3);
    assertEquals(await listing(dir), ids.map((id) => `${id}.png`).sort());
    for (const id of ids) decodePng(await Deno.readFile(`${dir}/${id}.png`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the task entry point: exit 2, one line on stderr, no stack trace", async () => {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("../lib/cli/generate.ts", import.meta.url).pathname,
      "--prompt",
      "x",
      "--out",
      "a.png",
      "--steps",
      "0",
    ],
    stdout: "piped",
    stderr: "piped",
  });
  const { code, stdout, stderr } = await cmd.output();
  const err = new TextDecoder().decode(stderr);
  assertEquals(code, 2);
  assertEquals(err, "generate: --steps must be an integer from 1 to 100, got 0\n");
  assertEquals(stdout.length, 0);
});

Deno.test("a single run writes a valid PNG equal to the pipeline's and reports its timings", async () => {
  const p = await testPipeline("wasm");
  const dir = await tempDir();
  try {
    const out = `${dir}/apple.png`;
    const r = await run([
      "--prompt",
      "red apple",
      "--out",
      out,
      "--steps",
      "3",
      "--seed",
      "11",
      "--negative",
      "google",
      "--guidance",
      "3.5",
      "--solver",
      "ddim",
      "--cache",
      "none",
      "--backend",
      "wasm",
      "--model",
      "emoji-ldm",
    ]);
    assertEquals([r.code, r.err], [0, []]);
    assertEquals(r.loads, 1);
    const img = decodePng(await Deno.readFile(out));
    assertEquals([img.width, img.height], [p.model.imageSize, p.model.imageSize]);
    const req = request({
      prompt: "red apple",
      negativePrompt: "google",
      seed: 11,
      steps: 3,
      guidanceScale: 3.5,
      solver: "ddim",
      cache: "none",
    });
    assert(await sameAsPipeline(p, out, req), "the CLI's image differs from the pipeline's");
    assertEquals(r.out.length, 2);
    assert(r.out[0].includes("backend wasm"), r.out[0]);
    for (
      const part of ["seed 11", "ddim 3 steps", "schedule none", "text encoder", "UNet", "decoder"]
    ) {
      assert(r.out[1].includes(part), `"${r.out[1]}" lacks "${part}"`);
    }
    assertEquals(await listing(dir), ["apple.png"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a batch run writes every file, grouped runs equal single runs", async () => {
  const p = await testPipeline("wasm");
  const dir = await tempDir();
  try {
    const sched = await writeUniformSchedule(p, dir, "dpm", 3, 2);
    const lines = [
      { id: "apple", prompt: "google red apple", seed: 1 },
      { id: "face", prompt: "twitter grinning face", seed: 2, steps: 2 },
      { id: "heart.v2", prompt: "apple red heart", seed: 3 },
      { id: "cached", prompt: "apple red heart", seed: 3, cache: sched },
    ];
    const file = `${dir}/prompts.jsonl`;
    await Deno.writeTextFile(file, lines.map((l) => JSON.stringify(l)).join("\n") + "\n");
    const outDir = `${dir}/out`;
    const r = await run(["--batch", file, "--out-dir", outDir, "--steps", "3", "--cache", "none"]);
    assertEquals([r.code, r.err], [0, []]);
    assertEquals(await listing(outDir), ["apple.png", "cached.png", "face.png", "heart.v2.png"]);
    for (const l of lines) {
      const req = request({
        prompt: l.prompt,
        seed: l.seed,
        steps: l.steps ?? 3,
        cache: l.cache ?? "none",
      });
      assert(await sameAsPipeline(p, `${outDir}/${l.id}.png`, req), `${l.id}.png differs`);
    }
    const report = r.out.find((x) => x.includes("cached.png"))!;
    assert(report.includes("schedule uniform-2 (skipped 33.3%)"), report);
    assert(r.out.some((x) => x.includes("apple.png") && x.includes("batch of 2")));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a failing line leaves no partial file; the others are written; exit 1", async () => {
  const dir = await tempDir();
  try {
    const file = `${dir}/p.jsonl`;
    await Deno.writeTextFile(
      file,
      ["a", "b", "c"].map((id) => JSON.stringify({ id, prompt: `emoji ${id}`, seed: 1 })).join(
        "\n",
      ),
    );
    const outDir = `${dir}/out`;
    await Deno.mkdir(`${outDir}/b.png`, { recursive: true }); // b's file cannot be written
    const r = await run(["--batch", file, "--out-dir", outDir, "--steps", "2"]);
    assertEquals(r.code, 1);
    assert(r.err.some((e) => e.includes("line 2 (b)") && e.includes("cannot write")), r.err.join());
    assert(r.err.at(-1)!.includes("1 of 3 images failed"));
    assertEquals(await listing(outDir), ["a.png", "b.png", "c.png"]);
    assert((await Deno.stat(`${outDir}/b.png`)).isDirectory);
    for (const f of ["a.png", "c.png"]) decodePng(await Deno.readFile(`${outDir}/${f}`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an interrupted batch stops: written images stay whole, nothing else exists", async () => {
  const dir = await tempDir();
  try {
    const file = `${dir}/p.jsonl`;
    await Deno.writeTextFile(
      file,
      ["a", "b", "c"].map((id) => JSON.stringify({ id, prompt: `emoji ${id}` })).join("\n"),
    );
    const outDir = `${dir}/out`;
    const ctl = new AbortController();
    const out: string[] = [];
    const r = await run(
      ["--batch", file, "--out-dir", outDir, "--steps", "2", "--batch-size", "1"],
      {
        signal: ctl.signal,
        print: (l) => {
          out.push(l);
          if (l.includes("a.png")) ctl.abort(new Error("interrupted"));
        },
      },
    );
    assertEquals(r.code, 130);
    assert(r.err[0].includes("interrupted; 1 of 3 images written"), r.err[0]);
    assertEquals(await listing(outDir), ["a.png"]);
    decodePng(await Deno.readFile(`${outDir}/a.png`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

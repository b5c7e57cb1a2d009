import { assert, assertEquals } from "./_assert.ts";
import { frontierCommand } from "../lib/cli/frontier.ts";
import { Pipeline } from "../lib/pipeline/pipeline.ts";
import { parseFrontier } from "../lib/planning/frontier.ts";
import { parseSchedule, serializeSchedule } from "../lib/cache/schedule.ts";

const MODEL = new URL("../models/emoji-ldm", import.meta.url).pathname;

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [], err: string[] = [];
  const log = console.log, error = console.error;
  console.log = (...a: unknown[]) => void out.push(a.join(" "));
  console.error = (...a: unknown[]) => void err.push(a.join(" "));
  try {
    return { code: await frontierCommand(args), out: out.join("\n"), err: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

Deno.test("frontier: bad flags are refused naming the flag, before any model runs", async () => {
  const cases: [string[], string][] = [
    [["--bogus"], "unknown flag --bogus"],
    [["--model", "/nonexistent"], "--model: /nonexistent is not a model folder"],
    [["--solvers", "dpm,heun"], "--solvers: heun is not one of"],
    [["--steps", "4,x"], "--steps must be a comma-separated list"],
    [["--steps", "4,200"], "--steps must be in 1..100"],
    [
      ["--steps", "4,8", "--calibrate-steps", "6"],
      "--calibrate-steps must be step counts of --steps",
    ],
    [["--steps", "4,8", "--cached-steps", "4,5"], "--cached-steps must be step counts of --steps"],
    [["--skip-targets", "1.5"], "--skip-targets must be fractions"],
    [["--uniform", "1"], "--uniform periods must be >= 2"],
    [["--prompts", "1"], "--prompts must be in 2..2048"],
    [["--only", "some"], "--only must be uncached, cached or all"],
    [["extra"], `unexpected argument "extra"`],
  ];
  for (const [args, message] of cases) {
    const r = await run(args);
    assertEquals(r.code, 2, args.join(" "));
    assert(r.err.includes(message), `${args.join(" ")}: ${r.err}`);
    assert(!r.err.includes("    at "), "no stack trace");
  }
});

Deno.test("frontier: --help and -h print the usage and start no measurement", async () => {
  // a folder that passes the model check but cannot load: a run that starts measuring fails
  const dir = await Deno.makeTempDir({ prefix: "frontier-help-" });
  const cwd = Deno.cwd();
  try {
    await Deno.mkdir(`${dir}/model/eval`, { recursive: true });
    await Deno.writeTextFile(`${dir}/model/model_index.json`, "{}");
    await Deno.writeTextFile(`${dir}/model/eval/config.json`, "{}");
    Deno.chdir(dir); // the default --work is .frontier/<model> here
    for (const flag of ["--help", "-h"]) {
      const r = await run(["--model", `${dir}/model`, "--steps", "2", flag]);
      assertEquals(r.code, 0, `${flag}: ${r.err}`);
      assertEquals(r.err, "");
      assert(r.out.startsWith("usage: deno task frontier"), r.out);
      assert(r.out.includes("--prompts N") && r.out.includes("[128]"), r.out);
      assert(r.out.includes("-h, --help"), r.out);
      const made = [];
      for await (const e of Deno.readDir(dir)) made.push(e.name);
      assertEquals(made, ["model"], "no .frontier work folder");
    }
  } finally {
    Deno.chdir(cwd);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("frontier: a bad command line is prefixed with the command's name", async () => {
  const r = await run(["--nope"]);
  assertEquals(r.code, 2);
  assert(r.err.startsWith("frontier: unknown flag --nope\nusage: deno task frontier"), r.err);
  const v = await run(["--only", "some"]);
  assertEquals(v.err, "frontier: --only must be uncached, cached or all");
});

Deno.test("frontier: a small real run writes a valid file that the pipeline loads and plans with, and resumes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "frontier-cli-" });
  const out = `${dir}/schedules`, work = `${dir}/work`;
  const args = [
    "--model",
    MODEL,
    "--solvers",
    "ddim",
    "--steps",
    "2,3",
    "--calibrate-steps",
    "3",
    "--skip-targets",
    "0.5",
    "--uniform",
    "2",
    "--calibration-prompts",
    "4",
    "--prompts",
    "4",
    "--batch",
    "4",
    "--timing-runs",
    "1",
    "--out",
    out,
    "--work",
    work,
  ];
  try {
    const first = await run(args);
    assertEquals(first.code, 0, first.err);
    const f = parseFrontier(
      await Deno.readTextFile(`${out}/ddim.frontier.json`),
      "ddim.frontier.json",
    );
    assertEquals([f.model, f.solver, f.reference, f.prompts.count], [
      "emoji-ldm",
      "ddim",
      "ddim-3-none",
      4,
    ]);
    assert(f.measured.command.startsWith("deno task frontier --model"), f.measured.command);
    assert(f.measured.machine.includes("vCPUs") && f.measured.backend === "wasm");
    const ids = f.plans.map((p) => p.id);
    assertEquals(ids.slice(0, 2), ["ddim-3-none", "ddim-2-none"]);
    assert(
      ids.some((id) => id.startsWith("ddim-3-delta-")) && ids.includes("ddim-3-uniform-2"),
      ids.join(),
    );
    for (const p of f.plans) {
      assert(Number.isFinite(p.quality.fd) && p.quality.accuracy >= 0, p.id);
      assert(p.measuredMs !== undefined && p.measuredMs.unet > 0, `${p.id} timed`);
    }
    const u2 = f.plans.find((p) => p.id === "ddim-3-uniform-2")!;
    assertEquals(u2.cost.evaluations["mid_block.attentions.0"], 2); // steps 0 and 2
    assertEquals(u2.cost.evaluations["glue_00"], 3);
    assertEquals(f.plans[0].quality.psnr, null); // the reference against itself
    // FD's seed spread: the 3-step uncached plan with its own seeds and two other seed sets
    assertEquals(f.fdSpread?.plan, "ddim-3-none");
    assertEquals(f.fdSpread?.fd.length, 3);
    assertEquals(f.fdSpread?.fd[0], f.plans[0].quality.fd);

    // a rerun with the same flags measures nothing again
    const again = await run(args);
    assertEquals(again.code, 0, again.err);
    assert(!again.out.includes("FD ") && !again.out.includes("timing:"), again.out);

    // the pipeline loads it and resolves cache "auto" through the planner with it
    const p = await Pipeline.load(MODEL, { backend: "wasm", log: () => {}, schedulesDir: out });
    try {
      assertEquals(p.frontiers.map((x) => x.solver), ["ddim"]);
      const at3 = f.plans.filter((x) =>
        x.steps === 3
      ).sort((a, b) => a.quality.fd - b.quality.fd)[0];
      const auto = await p.resolveSchedule("auto", "ddim", 3);
      assertEquals(auto?.name ?? null, at3.schedule);
    } finally {
      await p.release();
    }

    // a schedule recalibrated after the frontier was measured: the model no longer loads
    const file = `${out}/ddim-3-uniform-2.json`;
    const s = parseSchedule(await Deno.readTextFile(file));
    const [block] = Object.keys(s.scaleShift!);
    const [step] = Object.keys(s.scaleShift![block]);
    s.scaleShift![block][step].scale[0] += 0.5;
    await Deno.writeTextFile(file, serializeSchedule(s));
    const e = await Pipeline.load(MODEL, { backend: "wasm", log: () => {}, schedulesDir: out })
      .then((x) => x.release(), (e: Error) => e);
    assert(
      e instanceof Error && e.message.includes("ddim.frontier.json") &&
        e.message.includes("ddim-3-uniform-2") && e.message.includes("sha256 differs"),
      String(e),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

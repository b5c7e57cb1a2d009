/**
 * Every command as a user types it (`deno task <command>`): `--help` prints its usage with the
 * defaults and exits 0; an unknown flag exits 2 with a message naming the flag, then the usage;
 * no stack trace. And `deno task bench` with no benchmark named keeps the committed results.
 */
import { assert, assertEquals } from "./_assert.ts";
import { LOCAL_RESULTS_DIR, RESULTS_DIR, selectBenches } from "../bench/main.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const COMMANDS = [
  "generate",
  "calibrate",
  "evaluate",
  "frontier",
  "manifest",
  "split",
  "bench",
  "thumbnails",
  "compile",
  "build",
];

async function task(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["task", "-q", ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
}

Deno.test("every command answers --help with its usage and defaults, exit 0", async () => {
  const results = await Promise.all(COMMANDS.map((c) => task([c, "--help"])));
  results.forEach((r, i) => {
    const c = COMMANDS[i];
    assertEquals(r.code, 0, `${c} --help: ${r.err}`);
    assert(r.out.includes(`deno task ${c}`) && r.out.includes("usage"), `${c}:\n${r.out}`);
    assert(r.out.includes("-h, --help"), `${c} lists --help`);
    assert(/\[[^\]]+\]/.test(r.out), `${c} states defaults in brackets:\n${r.out}`);
  });
});

Deno.test("every command refuses an unknown flag naming it, with the usage, exit 2", async () => {
  const results = await Promise.all(COMMANDS.map((c) => task([c, "--colour", "red"])));
  results.forEach((r, i) => {
    const c = COMMANDS[i];
    assertEquals(r.code, 2, `${c}: ${r.err}`);
    assert(r.err.includes(`${c}: unknown flag --colour`), `${c}:\n${r.err}`);
    assert(r.err.includes(`usage: deno task ${c}`) || r.err.includes(`  deno task ${c} `), r.err);
    assert(!/^\s+at /m.test(r.err), `no stack trace: ${r.err}`);
    // (compile's task builds the playground first, which reports it)
    assertEquals(r.out.replace(/^playground built .*\n/m, ""), "");
  });
});

Deno.test("bench with no name writes to a git-ignored folder, not the committed results", async () => {
  const quick = selectBenches([]);
  assertEquals([quick.names, quick.named, quick.resultsDir], [
    ["split", "pipeline"],
    false,
    LOCAL_RESULTS_DIR,
  ]);
  const named = selectBenches(["pipeline", "--runs", "1"]);
  assertEquals([named.names, named.resultsDir], [["pipeline"], RESULTS_DIR]);
  const git = (args: string[]) =>
    new Deno.Command("git", { args, cwd: ROOT, stdout: "piped", stderr: "null" }).output();
  assert((await git(["check-ignore", "-q", `${LOCAL_RESULTS_DIR}/pipeline.json`])).success);
  const tracked = new TextDecoder().decode((await git(["ls-files", "bench/results"])).stdout);
  assert(tracked.includes("bench/results/pipeline.json"), "the committed results stay tracked");
});

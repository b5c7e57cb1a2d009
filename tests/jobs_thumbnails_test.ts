import { assert, assertEquals, assertThrows } from "./_assert.ts";
import {
  checkJobModels,
  checkJobOutputs,
  checkThumbnailJobs,
  INDEX_FILE,
  JobsFileError,
  JobStats,
  loadThumbnailJobs,
  parseThumbnailJobs,
  registerThumbnailCrons,
  runAllThumbnailJobs,
  runThumbnailJob,
  thumbnailFileName,
  type ThumbnailIndex,
  type ThumbnailJob,
} from "../lib/jobs/thumbnails.ts";
import { TEMP_PREFIX, writeFileAtomic } from "../lib/io/atomic.ts";
import { readModelFolder } from "../lib/model/folder.ts";
import { memoryLogger } from "../lib/io/log.ts";
import type { ImageGenerator } from "../lib/pipeline/types.ts";
import { testGenerator } from "./support/generator.ts";
import { failingOn, gated } from "./support/wrap_generator.ts";
import { pngSize } from "./support/http.ts";

const PROMPTS = ["google red apple", "twitter grinning face", "apple red heart"];

async function tempOut(): Promise<string> {
  const dir = `tmp/jobs-test-${crypto.randomUUID().slice(0, 8)}`;
  await Deno.mkdir(dir, { recursive: true });
  return dir;
}

function job(gen: ImageGenerator, outDir: string, over: Partial<ThumbnailJob> = {}): ThumbnailJob {
  const m = gen.models()[0];
  return {
    name: "test",
    cron: "0 * * * *",
    prompts: PROMPTS,
    size: `${m.width}x${m.height}`,
    steps: 2,
    outDir,
    ...over,
  };
}

async function listing(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

async function index(dir: string): Promise<ThumbnailIndex> {
  return JSON.parse(await Deno.readTextFile(`${dir}/${INDEX_FILE}`));
}

/** The index lists exactly the PNGs in the folder, and nothing else is there. */
async function assertConsistent(dir: string): Promise<void> {
  const files = await listing(dir);
  const idx = await index(dir);
  assertEquals(files.filter((f) => f !== INDEX_FILE), idx.images.map((e) => e.file).sort());
  assert(!files.some((f) => f.endsWith(".tmp")), `temporary files left: ${files}`);
}

Deno.test("the shipped thumbnails.json is valid", async () => {
  const jobs = await loadThumbnailJobs("thumbnails.json");
  assert(jobs.length >= 1);
  assert(jobs[0].prompts.includes("google red apple"));
  assertEquals(jobs[0].outDir, "thumbnails/");
});

Deno.test("parseThumbnailJobs names the job and the bad field", () => {
  const good = {
    name: "a",
    cron: "0 3 * * *",
    prompts: ["x"],
    size: "64x64",
    outDir: "thumbnails/",
  };
  const bad: [unknown, string][] = [
    [[], "(root)"],
    [{ jobs: {} }, "jobs: must be an array"],
    [{ jobs: [good], extra: 1 }, "extra: unknown field"],
    [{ jobs: [{ ...good, cron: "every day" }] }, 'job "a" (jobs[0]).cron: "every day" is refused'],
    [
      { jobs: [{ ...good, cron: "61 * * * *" }] },
      'job "a" (jobs[0]).cron: "61 * * * *" is refused by Deno.cron: minute',
    ],
    // the expressions: Deno refuses the first and crashes on the others
    [
      { jobs: [{ ...good, cron: "0 0 * * 0-7" }] },
      'job "a" (jobs[0]).cron: "0 0 * * 0-7" is refused by Deno.cron: day of week',
    ],
    [
      { jobs: [{ ...good, cron: "0 0 31 2 *" }] },
      'job "a" (jobs[0]).cron: "0 0 31 2 *" never fires',
    ],
    [{ jobs: [{ ...good, cron: "0 0 30 2 *" }] }, "never fires"],
    [{ jobs: [{ ...good, cron: "0 0 31 4 *" }] }, "never fires"],
    [{ jobs: [{ ...good, name: "bad/name" }] }, "jobs[0].name"],
    [{ jobs: [good, good] }, "jobs[1].name: duplicate"],
    [{ jobs: [{ ...good, prompts: [] }] }, 'job "a" (jobs[0]).prompts'],
    [{ jobs: [{ ...good, prompts: ["x", ""] }] }, 'job "a" (jobs[0]).prompts[1]'],
    [{ jobs: [{ ...good, prompts: ["x", "x"] }] }, "(jobs[0]).prompts: has duplicates"],
    [
      { jobs: [{ ...good, prompts: ["🍎".repeat(1001)] }] },
      "is 1001 characters (Unicode code points)",
    ],
    [{ jobs: [{ ...good, size: "big" }] }, "(jobs[0]).size"],
    [{ jobs: [{ ...good, outDir: "../etc" }] }, "(jobs[0]).outDir"],
    [{ jobs: [{ ...good, outDir: "/tmp/x" }] }, "(jobs[0]).outDir"],
    [{ jobs: [{ ...good, steps: 0 }] }, "(jobs[0]).steps"],
    [{ jobs: [{ ...good, seed: -1 }] }, "(jobs[0]).seed"],
    [{ jobs: [{ ...good, colour: "red" }] }, 'job "a" (jobs[0]).colour: unknown field'],
  ];
  for (const [value, msg] of bad) {
    const e = assertThrows(() => parseThumbnailJobs(value), msg);
    assert(e instanceof JobsFileError);
  }
  assertEquals(parseThumbnailJobs({ jobs: [good] })[0].name, "a");
  // 1000 code points is the limit, whatever their UTF-16 length
  assertEquals(parseThumbnailJobs({ jobs: [{ ...good, prompts: ["🍎".repeat(1000)] }] }).length, 1);
});

Deno.test("loadThumbnailJobs names the file with the job", async () => {
  const dir = await tempOut();
  try {
    const file = `${dir}/jobs.json`;
    const job = {
      name: "nightly",
      cron: "0 0 31 2 *",
      prompts: ["x"],
      size: "64x64",
      outDir: "o/",
    };
    await Deno.writeTextFile(file, JSON.stringify({ jobs: [job] }));
    const e = await loadThumbnailJobs(file).then(() => undefined, (e) => e);
    assert(e instanceof JobsFileError);
    assert(
      e.message.startsWith(`${file}: job "nightly" (jobs[0]).cron: "0 0 31 2 *" never fires`),
      e.message,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const MODEL_DIR = new URL("../models/emoji-ldm", import.meta.url).pathname;

Deno.test("checkJobModels: unknown model, wrong size, prompts with no known token; truncation warned", async () => {
  const model = await readModelFolder(MODEL_DIR);
  assertEquals([model.name, model.imageSize], ["emoji-ldm", 64]);
  const base: ThumbnailJob = {
    name: "j",
    cron: "0 3 * * *",
    prompts: ["google red apple"],
    size: "64x64",
    outDir: "thumbnails/",
  };
  assertEquals(checkJobModels([base], [model], "t.json"), []);
  const cases: [Partial<ThumbnailJob>, string][] = [
    [
      { model: "sd15" },
      't.json: job "j" (jobs[0]).model: unknown model "sd15" (models: emoji-ldm)',
    ],
    [
      { size: "128x128" },
      't.json: job "j" (jobs[0]).size: 128x128 is not emoji-ldm\'s size (64x64)',
    ],
    [
      { prompts: ["google red apple", "🍎"] },
      't.json: job "j" (jobs[0]).prompts[1] "🍎" has no token the model knows',
    ],
    [{ prompts: ["红苹果"] }, '(jobs[0]).prompts[0] "红苹果" has no token'],
  ];
  for (const [over, msg] of cases) {
    assertThrows(() => checkJobModels([{ ...base, ...over }], [model], "t.json"), msg);
  }
  const long = "twitter red apple" + " heart".repeat(11) + " google dog face";
  assertEquals(checkJobModels([{ ...base, prompts: [long] }], [model], "t.json"), [
    't.json: job "j" (jobs[0]).prompts[0] is 17 tokens, the text encoder reads the first 14: "google dog face" is ignored',
  ]);
});

Deno.test("checkJobOutputs: an existing file where the folder should be is named with the job", async () => {
  const dir = await tempOut();
  try {
    await Deno.writeTextFile(`${dir}/taken`, "x");
    const ok: ThumbnailJob = {
      name: "ok",
      cron: "* * * * *",
      prompts: ["x"],
      size: "64x64",
      outDir: `${dir}/new/sub`,
    };
    await checkJobOutputs([ok], "t.json"); // created, probe written and removed
    assertEquals(await listing(`${dir}/new/sub`), []);
    const bad = { ...ok, name: "bad", outDir: `${dir}/taken/sub` };
    const e = await checkJobOutputs([ok, bad], "t.json").then(() => undefined, (e) => e);
    assert(e instanceof JobsFileError);
    assert(
      e.message.startsWith(
        `t.json: job "bad" (jobs[1]).outDir "${dir}/taken/sub": cannot write there`,
      ),
      e.message,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checkJobOutputs: a folder outside the write grant is refused at start (no prompt)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "jobs-grant-" });
  try {
    const jobs = JSON.stringify({
      jobs: [
        {
          name: "fine",
          cron: "* * * * *",
          prompts: ["google red apple"],
          size: "64x64",
          outDir: "thumbnails/",
        },
        {
          name: "never",
          cron: "* * * * *",
          prompts: ["google red apple"],
          size: "64x64",
          outDir: "out/",
        },
      ],
    });
    await Deno.writeTextFile(`${dir}/thumbnails.json`, jobs);
    const script = `import { checkThumbnailJobs } from ${
      JSON.stringify(new URL("../lib/jobs/thumbnails.ts", import.meta.url).href)
    };
try { await checkThumbnailJobs("thumbnails.json", [${
      JSON.stringify(MODEL_DIR)
    }]); console.log("passed"); }
catch (e) { console.log(e.message); }`;
    await Deno.writeTextFile(`${dir}/check.ts`, script);
    const r = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--config",
        new URL("../deno.json", import.meta.url).pathname,
        "--no-prompt",
        "--allow-read",
        "--allow-write=./thumbnails",
        "check.ts",
      ],
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(r.stdout).trim();
    assert(
      out.startsWith(
        'thumbnails.json: job "never" (jobs[1]).outDir "out/": this process may not write there',
      ),
      out + new TextDecoder().decode(r.stderr),
    );
    assert(out.includes("put the job's outDir under thumbnails/"), out);
    assertEquals(await listing(dir), ["check.ts", "thumbnails", "thumbnails.json"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checkThumbnailJobs passes the shipped jobs file against the shipped model", async () => {
  const { jobs, warnings } = await checkThumbnailJobs("thumbnails.json", [MODEL_DIR]);
  assert(jobs.length >= 1);
  assertEquals(warnings, []);
});

Deno.test("thumbnailFileName: readable, distinct, safe", () => {
  const a = thumbnailFileName("Google red apple!");
  assert(/^google-red-apple-[0-9a-f]{8}\.png$/.test(a), a);
  assert(a !== thumbnailFileName("google red apple"));
  assert(/^image-[0-9a-f]{8}\.png$/.test(thumbnailFileName("🍎")));
  assert(!thumbnailFileName("../../etc/passwd").includes("/"));
});

Deno.test("a run writes every image atomically and an index of them; the next run skips", async () => {
  const gen = await testGenerator();
  const m = gen.models()[0];
  const dir = await tempOut();
  try {
    const report = await runThumbnailJob(job(gen, dir), gen);
    assertEquals(report.written.length, 3);
    assertEquals(report.failed, []);
    await assertConsistent(dir);
    const idx = await index(dir);
    assertEquals(idx.images.map((e) => e.prompt).sort(), [...PROMPTS].sort());
    for (const e of idx.images) {
      assertEquals(pngSize(await Deno.readFile(`${dir}/${e.file}`)), {
        width: m.width,
        height: m.height,
      });
      assert(Number.isInteger(e.seed));
      assert(!Number.isNaN(Date.parse(e.created)));
      assertEquals(e.steps, 2);
    }
    const again = await runThumbnailJob(job(gen, dir), gen);
    assertEquals([again.written.length, again.skipped.length], [0, 3]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a run failing on the 2nd prompt: logged, no partial files, index consistent, retried", async () => {
  const gen = await testGenerator();
  const dir = await tempOut();
  try {
    const log = memoryLogger();
    const broken = failingOn(gen, 2);
    const report = await runThumbnailJob(job(gen, dir), broken, { logger: log });
    assertEquals(report.failed.map((f) => f.prompt), [PROMPTS[1]]);
    assertEquals(report.written.length, 2);
    assert(log.lines.some((l) => l.level === "error" && l.msg === "thumbnail failed"));
    await assertConsistent(dir);
    const files = await listing(dir);
    assert(!files.includes(thumbnailFileName(PROMPTS[1])));
    // Next tick: only the missing image is made.
    const retry = await runThumbnailJob(job(gen, dir), gen);
    assertEquals(retry.written, [thumbnailFileName(PROMPTS[1])]);
    assertEquals(retry.skipped.length, 2);
    await assertConsistent(dir);
    assertEquals((await index(dir)).images.length, 3);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a run repairs the folder: stray temp files removed, deleted images remade", async () => {
  const gen = await testGenerator();
  const dir = await tempOut();
  try {
    await runThumbnailJob(job(gen, dir), gen);
    const victim = thumbnailFileName(PROMPTS[0]);
    await Deno.remove(`${dir}/${victim}`);
    await Deno.writeTextFile(`${dir}/${TEMP_PREFIX}${victim}.abcd.tmp`, "partial");
    const r = await runThumbnailJob(job(gen, dir), gen);
    assertEquals(r.written, [victim]);
    await assertConsistent(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a thumbnail cut short or changed by hand is not up to date: it is made again", async () => {
  const gen = await testGenerator();
  const dir = await tempOut();
  try {
    await runThumbnailJob(job(gen, dir), gen);
    const [cut, changed] = [thumbnailFileName(PROMPTS[0]), thumbnailFileName(PROMPTS[1])];
    const whole = await Deno.readFile(`${dir}/${cut}`);
    await Deno.writeFile(`${dir}/${cut}`, whole.subarray(0, whole.length - 20)); // truncated
    const other = await Deno.readFile(`${dir}/${changed}`);
    other[other.length - 30] ^= 0xff; // same size, one byte changed
    await Deno.writeFile(`${dir}/${changed}`, other);
    const r = await runThumbnailJob(job(gen, dir), gen);
    assertEquals(r.written.sort(), [cut, changed].sort());
    assertEquals(r.skipped, [thumbnailFileName(PROMPTS[2])]);
    assertEquals(await Deno.readFile(`${dir}/${cut}`), whole);
    for (const e of (await index(dir)).images) {
      assertEquals(e.bytes, (await Deno.stat(`${dir}/${e.file}`)).size);
      assert(/^[0-9a-f]{64}$/.test(e.sha256));
    }
    await assertConsistent(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("JobStats counts runs, failures and skipped ticks, and renders them for /metrics", async () => {
  const gen = await testGenerator();
  const dir = await tempOut();
  try {
    const stats = new JobStats();
    const one = job(gen, dir, { prompts: [PROMPTS[0], PROMPTS[1]] });
    await runThumbnailJob(one, failingOn(gen, 2), { stats }); // 1 written, 1 failed
    await runThumbnailJob(one, gen, { stats }); // 1 written, 1 skipped
    const bad = job(gen, dir, { name: "bad", model: "nope" });
    await runAllThumbnailJobs([bad], gen, { stats }); // cannot run at all
    const g = gated(gen);
    const handlers: (() => Promise<void>)[] = [];
    registerThumbnailCrons([job(gen, dir, { name: "cron", prompts: ["fresh prompt"] })], g, {
      stats,
      cron: (_n, _s, h) => (handlers.push(h), Promise.resolve()),
    });
    assertEquals(stats.of("cron").runsOk, 0); // listed from registration
    const first = handlers[0]();
    await g.started;
    await handlers[0](); // skipped
    g.release();
    await first;
    assertEquals(stats.of("test"), {
      runsOk: 1,
      runsFailed: 1,
      ticksSkipped: 0,
      imagesWritten: 2,
      imagesSkipped: 1,
      imagesFailed: 1,
      lastRunEnd: stats.of("test").lastRunEnd,
    });
    assertEquals([stats.of("bad").runsFailed, stats.of("bad").lastError], [
      1,
      'job bad: unknown model "nope"',
    ]);
    assertEquals([stats.of("cron").runsOk, stats.of("cron").ticksSkipped], [1, 1]);
    const text = stats.prometheus();
    for (
      const line of [
        'imagegen_thumbnail_runs_total{job="test",outcome="ok"} 1',
        'imagegen_thumbnail_runs_total{job="test",outcome="failed"} 1',
        'imagegen_thumbnail_runs_total{job="bad",outcome="failed"} 1',
        'imagegen_thumbnail_images_total{job="test",result="failed"} 1',
        'imagegen_thumbnail_ticks_skipped_total{job="cron"} 1',
        'imagegen_thumbnail_last_run_ok{job="test"} 1',
        'imagegen_thumbnail_last_run_ok{job="bad"} 0',
        "# TYPE imagegen_thumbnail_runs_total counter",
      ]
    ) assert(text.split("\n").includes(line), `${line} missing from\n${text}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a job the model cannot serve is refused with a clear error", async () => {
  const gen = await testGenerator();
  const m = gen.models()[0];
  const dir = await tempOut();
  try {
    let err: unknown;
    try {
      await runThumbnailJob(job(gen, dir, { size: `${m.width * 2}x${m.height}` }), gen);
    } catch (e) {
      err = e;
    }
    assert(err instanceof JobsFileError && err.message.includes("size"));
    const reports = await runAllThumbnailJobs([job(gen, dir, { model: "nope" })], gen);
    assertEquals(reports[0].failed.length, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("registerThumbnailCrons: one cron per job, overlapping ticks skipped", async () => {
  const g = gated(await testGenerator());
  const dir = await tempOut();
  try {
    const handlers: (() => Promise<void>)[] = [];
    const log = memoryLogger();
    registerThumbnailCrons([job(g, dir, { prompts: ["a"] })], g, {
      logger: log,
      cron: (_n, _s, h) => (handlers.push(h), Promise.resolve()),
    });
    assertEquals(handlers.length, 1);
    const first = handlers[0]();
    await g.started;
    await handlers[0](); // the first run still holds the generator
    assert(log.lines.some((l) => l.msg.includes("tick skipped")));
    g.release();
    await first;
    await assertConsistent(dir);
    assertEquals(g.calls.length, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeFileAtomic leaves no temporary file when the rename fails", async () => {
  const dir = await tempOut();
  try {
    await Deno.mkdir(`${dir}/taken.png`); // a folder where the file should go
    let failed = false;
    try {
      await writeFileAtomic(`${dir}/taken.png`, new Uint8Array([1, 2, 3]));
    } catch {
      failed = true;
    }
    assert(failed);
    assertEquals(await listing(dir), ["taken.png"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

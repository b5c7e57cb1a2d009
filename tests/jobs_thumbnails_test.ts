import { assert, assertEquals, assertThrows } from "./_assert.ts";
import {
  cronError,
  INDEX_FILE,
  JobsFileError,
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

Deno.test("parseThumbnailJobs names the bad field", () => {
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
    [{ jobs: [{ ...good, cron: "every day" }] }, "jobs[0].cron"],
    [{ jobs: [{ ...good, cron: "61 * * * *" }] }, "jobs[0].cron: minute"],
    [{ jobs: [{ ...good, name: "bad/name" }] }, "jobs[0].name"],
    [{ jobs: [good, good] }, "jobs[1].name: duplicate"],
    [{ jobs: [{ ...good, prompts: [] }] }, "jobs[0].prompts"],
    [{ jobs: [{ ...good, prompts: ["x", ""] }] }, "jobs[0].prompts[1]"],
    [{ jobs: [{ ...good, prompts: ["x", "x"] }] }, "jobs[0].prompts: has duplicates"],
    [{ jobs: [{ ...good, size: "big" }] }, "jobs[0].size"],
    [{ jobs: [{ ...good, outDir: "../etc" }] }, "jobs[0].outDir"],
    [{ jobs: [{ ...good, outDir: "/tmp/x" }] }, "jobs[0].outDir"],
    [{ jobs: [{ ...good, steps: 0 }] }, "jobs[0].steps"],
    [{ jobs: [{ ...good, seed: -1 }] }, "jobs[0].seed"],
    [{ jobs: [{ ...good, colour: "red" }] }, "jobs[0].colour: unknown field"],
  ];
  for (const [value, msg] of bad) {
    const e = assertThrows(() => parseThumbnailJobs(value), msg);
    assert(e instanceof JobsFileError);
  }
  assertEquals(parseThumbnailJobs({ jobs: [good] })[0].name, "a");
});

Deno.test("cronError accepts standard expressions and explains bad ones", () => {
  for (const ok of ["* * * * *", "*/15 0-6 1,15 * 1-5", "0 3 * * 7", "5/10 * * 1-12 *"]) {
    assertEquals(cronError(ok), null, ok);
  }
  for (
    const bad of [
      "* * * *",
      "60 * * * *",
      "* 24 * * *",
      "* * 0 * *",
      "*/0 * * * *",
      "5-2 * * * *",
      "a * * * *",
    ]
  ) {
    assert(cronError(bad) !== null, bad);
  }
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

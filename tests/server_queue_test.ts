import { assert, assertEquals } from "./_assert.ts";
import {
  JobQueue,
  QueueClosedError,
  queuedGenerator,
  QueueFullError,
} from "../lib/server/queue.ts";
import { testGenerator } from "./support/generator.ts";

/** A job that runs until `done()` is called. */
function held() {
  let done!: (v: string) => void;
  const p = new Promise<string>((r) => (done = r));
  return { p, done };
}

Deno.test("queue: one job at a time, FIFO order", async () => {
  const q = new JobQueue({ maxQueued: 5 });
  const order: string[] = [];
  const a = held(), b = held();
  const ra = q.submit({ estimateMs: 10, run: () => (order.push("a"), a.p) });
  const rb = q.submit({ estimateMs: 10, run: () => (order.push("b"), b.p) });
  const rc = q.submit({ estimateMs: 10, run: () => (order.push("c"), Promise.resolve("c")) });
  await Promise.resolve();
  await Promise.resolve();
  assertEquals([q.running, q.waiting, order], [1, 2, ["a"]]);
  b.done("b"); // b finishing early does not matter: it has not started
  a.done("a");
  assertEquals(await Promise.all([ra, rb, rc]), ["a", "b", "c"]);
  assertEquals(order, ["a", "b", "c"]);
  await q.idle();
  assertEquals([q.running, q.waiting], [0, 0]);
});

Deno.test("queue: full → QueueFullError synchronously; force admits background work", async () => {
  let now = 0;
  const q = new JobQueue({ maxQueued: 1, clock: () => now });
  const a = held();
  const ra = q.submit({ estimateMs: 3000, run: () => a.p });
  const rb = q.submit({ estimateMs: 1000, run: () => Promise.resolve("b") });
  await Promise.resolve();
  now = 1000;
  assertEquals(q.pendingMs(), 2000 + 1000);
  let err: unknown;
  try {
    q.submit({ estimateMs: 1, run: () => Promise.resolve("c") });
  } catch (e) {
    err = e;
  }
  assert(err instanceof QueueFullError);
  assertEquals(err.retryAfterMs, 3000);
  const rf = q.submit({ estimateMs: 1, force: true, run: () => Promise.resolve("forced") });
  a.done("a");
  assertEquals(await Promise.all([ra, rb, rf]), ["a", "b", "forced"]);
});

Deno.test("queue: the expected wait is 0 while a slot is free, then the slot that frees first", async () => {
  let now = 0;
  const q = new JobQueue({ maxQueued: 4, concurrency: 2, clock: () => now });
  const a = held(), b = held(), c = held();
  const ra = q.submit({ estimateMs: 3000, run: () => a.p });
  await Promise.resolve();
  now = 1000;
  assertEquals(q.pendingMs(), 0, "one of two slots is free");
  const rb = q.submit({ estimateMs: 1000, run: () => b.p });
  await Promise.resolve();
  assertEquals(q.pendingMs(), 1000, "slots free in 2000 and 1000 ms");
  const rc = q.submit({ estimateMs: 1500, run: () => c.p });
  assertEquals(q.waiting, 1);
  assertEquals(q.pendingMs(), 2000, "the waiting job takes the slot freeing at 1000 (→ 2500)");
  a.done("a"), b.done("b"), c.done("c");
  assertEquals(await Promise.all([ra, rb, rc]), ["a", "b", "c"]);
  assertEquals(q.pendingMs(), 0);
});

Deno.test("queue: aborting a waiting job removes it and rejects with the reason", async () => {
  const q = new JobQueue({ maxQueued: 3 });
  const a = held();
  const ra = q.submit({ estimateMs: 1, run: () => a.p });
  const ctl = new AbortController();
  let ran = false;
  const rb = q.submit({
    estimateMs: 1,
    signal: ctl.signal,
    run: () => (ran = true, Promise.resolve("b")),
  });
  ctl.abort(new Error("gone"));
  assertEquals(q.waiting, 0);
  await rb.then(() => assert(false, "should reject"), (e) => assertEquals(e.message, "gone"));
  a.done("a");
  await ra;
  await q.idle();
  assertEquals(ran, false);
});

Deno.test("queue: close rejects waiting jobs, lets the running one finish, refuses new ones", async () => {
  const q = new JobQueue({ maxQueued: 3 });
  const a = held();
  const ra = q.submit({ estimateMs: 1, run: () => a.p });
  const rb = q.submit({ estimateMs: 1, run: () => Promise.resolve("b") });
  q.close();
  await rb.then(() => assert(false), (e) => assert(e instanceof QueueClosedError));
  let refused = false;
  try {
    q.submit({ estimateMs: 1, run: () => Promise.resolve("x") });
  } catch (e) {
    refused = e instanceof QueueClosedError;
  }
  assert(refused);
  a.done("a");
  assertEquals(await ra, "a");
  await q.idle();
});

Deno.test("queue: a failing job frees the slot for the next", async () => {
  const q = new JobQueue({ maxQueued: 3 });
  const r1 = q.submit({ estimateMs: 1, run: () => Promise.reject(new Error("boom")) });
  const r2 = q.submit({ estimateMs: 1, run: () => Promise.resolve(2) });
  await r1.then(() => assert(false), (e) => assertEquals(e.message, "boom"));
  assertEquals(await r2, 2);
});

Deno.test("queuedGenerator: background generations go through the same queue", async () => {
  const gen = await testGenerator();
  const q = new JobQueue({ maxQueued: 0 });
  const a = held();
  const ra = q.submit({ estimateMs: 1, run: () => a.p });
  const m = gen.models()[0];
  const rq = queuedGenerator(gen, q).generate(m.name, {
    prompt: "x",
    negativePrompt: "",
    seed: 1,
    steps: 2,
    guidanceScale: m.defaults.guidanceScale,
    solver: m.defaults.solver,
    cache: "none",
  }, {});
  await Promise.resolve();
  assertEquals([q.running, q.waiting], [1, 1]); // admitted although maxQueued is 0 and one runs
  a.done("a");
  await ra;
  const r = await rq;
  assertEquals([r.width, r.height], [m.width, m.height]);
});

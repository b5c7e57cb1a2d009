import { assert, assertEquals, assertThrows } from "./_assert.ts";
import { assertLoopback, formatLoadReport, runLoadInProcess } from "../bench/load.ts";
import { testGenerator } from "./support/generator.ts";

Deno.test("load: only loopback targets", () => {
  assertThrows(() => assertLoopback("http://example.com:8000"), "only loopback");
  assertThrows(() => assertLoopback("http://10.0.0.1/"), "only loopback");
  assertThrows(() => assertLoopback("nonsense"), "not a URL");
  assertEquals(assertLoopback("http://127.0.0.1:8000").port, "8000");
  assertEquals(assertLoopback("http://localhost/").hostname, "localhost");
});

Deno.test("load: in-process run accounts for every request and reports memory", async () => {
  const r = await runLoadInProcess(await testGenerator(), {
    requests: 10,
    concurrency: 3,
    deadlineMs: 60_000,
    timeLimitMs: 180_000,
    body: { steps: 2 },
    config: { queueMax: 1 },
  });
  assertEquals(r.sent, 10);
  const total = Object.values(r.status).reduce((a, b) => a + b, 0);
  assertEquals(total, 10);
  assertEquals(r.ok + r.rejected429 + r.rejected503 + r.timeouts504, 10);
  assert(r.ok >= 1);
  assert(r.peakRssBytes !== null && r.peakRssBytes > 0);
  assert(r.latency.p50Ms <= r.latency.p95Ms && r.latency.p95Ms <= r.latency.maxMs);
  assertEquals(r.predictionRatio.samples, r.ok);
  assert(formatLoadReport(r).includes("| 10 | 3 | 60000 ms |"));
});

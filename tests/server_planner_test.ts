import { assert, assertEquals } from "./_assert.ts";
import { resolveDeadline, retryAfterSeconds } from "../lib/server/planner.ts";

Deno.test("resolveDeadline: body, then Request-Timeout, then Prefer: wait, then default", () => {
  const base = { defaultMs: 5000, maxMs: 600_000 };
  assertEquals(resolveDeadline({ ...base, bodyMs: 250, requestTimeout: "9" }), {
    ok: true,
    ms: 250,
    source: "deadline_ms",
  });
  assertEquals(resolveDeadline({ ...base, requestTimeout: "1.5", prefer: "wait=9" }), {
    ok: true,
    ms: 1500,
    source: "Request-Timeout",
  });
  assertEquals(resolveDeadline({ ...base, prefer: "respond-async, wait=3" }), {
    ok: true,
    ms: 3000,
    source: "Prefer",
  });
  assertEquals(resolveDeadline({ ...base, prefer: "return=minimal" }), {
    ok: true,
    ms: 5000,
    source: "default",
  });
  const bad = resolveDeadline({ ...base, requestTimeout: "soon" });
  assert(!bad.ok);
  assertEquals(bad.param, "Request-Timeout");
  const big = resolveDeadline({ ...base, prefer: "wait=100000" });
  assert(!big.ok);
  assertEquals(big.param, "Prefer");
  const bodyBig = resolveDeadline({ ...base, bodyMs: 600_001 });
  assert(!bodyBig.ok);
  assertEquals(bodyBig.param, "deadline_ms");
});

Deno.test("retryAfterSeconds rounds up and is at least 1", () => {
  assertEquals([retryAfterSeconds(0), retryAfterSeconds(1001), retryAfterSeconds(3000)], [1, 2, 3]);
});

import { assert, assertEquals } from "./_assert.ts";
import { preferWait, resolveDeadline } from "../lib/server/deadline.ts";
import { retryAfterSeconds } from "../lib/server/queue.ts";

const base = { defaultMs: 5000, maxMs: 600_000 };

Deno.test("resolveDeadline: body, then Request-Timeout, then Prefer: wait, then default", () => {
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
    preferenceApplied: "wait=3",
  });
  assertEquals(resolveDeadline({ ...base, prefer: "return=minimal" }), {
    ok: true,
    ms: 5000,
    source: "default",
  });
});

Deno.test("Prefer is a preference (RFC 7240): unusable values ignored, large ones clamped", () => {
  for (const prefer of ["wait=0", "wait=abc", "wait=", "wait=-1", "wait=1e3"]) {
    assertEquals(resolveDeadline({ ...base, prefer }), { ok: true, ms: 5000, source: "default" });
  }
  assertEquals(resolveDeadline({ ...base, prefer: "wait=1000" }), {
    ok: true,
    ms: 600_000,
    source: "Prefer",
    preferenceApplied: "wait=600",
  });
  assertEquals(resolveDeadline({ ...base, prefer: 'wait="2.5"; x=1' }).ok, true);
  assertEquals(preferWait("handling=lenient, WAIT=7"), "7");
  assertEquals(preferWait("return=minimal"), undefined);
});

Deno.test("deadline_ms and Request-Timeout are checked and state the same limit in their own unit", () => {
  const header = resolveDeadline({ ...base, requestTimeout: "soon" });
  const body = resolveDeadline({ ...base, bodyMs: 600_001 });
  assert(!header.ok && !body.ok);
  assertEquals([header.param, body.param], ["Request-Timeout", "deadline_ms"]);
  assert(
    header.message.includes("seconds between 0.001 and 600 s (1 to 600000 ms)"),
    header.message,
  );
  assert(body.message.includes("between 1 and 600000 ms (600 s)"), body.message);
  for (const bodyMs of [0, 1.5, "100", -5]) {
    assert(!resolveDeadline({ ...base, bodyMs }).ok, String(bodyMs));
  }
  assert(!resolveDeadline({ ...base, requestTimeout: "601" }).ok);
});

Deno.test("retryAfterSeconds rounds up and is at least 1", () => {
  assertEquals([retryAfterSeconds(0), retryAfterSeconds(1001), retryAfterSeconds(3000)], [1, 2, 3]);
});

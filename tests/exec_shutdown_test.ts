/**
 * Graceful shutdown of the real service process (`main.ts`, one wasm worker, the shipped model):
 * SIGTERM during a generation → new requests get a 503 JSON answer (never a reset) and
 * `/healthz` says shutting_down while the listener stays open; the running generation is given
 * the grace period, then aborted; the process exits 0 within the grace plus a generous bound.
 */
import { assert, assertEquals } from "./_assert.ts";
import { jsonInit } from "./support/http.ts";

const ROOT = new URL("..", import.meta.url).pathname;

/** Reads JSON log lines from the child's stdout until one satisfies `want`. */
async function logLine(
  lines: AsyncIterator<string>,
  want: (l: Record<string, unknown>) => boolean,
): Promise<Record<string, unknown>> {
  while (true) {
    const r = await lines.next();
    if (r.done) throw new Error("the service exited before logging what the test waits for");
    try {
      const j = JSON.parse(r.value);
      if (want(j)) return j;
    } catch { /* not a JSON line */ }
  }
}

async function* splitLines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buf = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buf += chunk;
    let k;
    while ((k = buf.indexOf("\n")) >= 0) {
      yield buf.slice(0, k);
      buf = buf.slice(k + 1);
    }
  }
}

Deno.test("SIGTERM: 503 for new requests while draining, the running one aborted after the grace, exit 0", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts"],
    cwd: ROOT,
    env: {
      PORT: "0",
      HOST: "127.0.0.1",
      WORKERS: "1",
      BACKEND: "wasm",
      THUMBNAILS_FILE: "none",
      SHUTDOWN_GRACE_MS: "1000",
    },
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const lines = splitLines(child.stdout);
  try {
    const listening = await logLine(lines, (l) => l.msg === "listening");
    const url = `http://${listening.address}`;
    // a generation long enough to outlast the grace period on any machine
    const long = fetch(`${url}/generate`, jsonInit({ prompt: "google red apple", steps: 100 }));
    for (let i = 0; i < 500; i++) {
      if ((await (await fetch(`${url}/healthz`)).json()).queue.running > 0) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const t0 = performance.now();
    child.kill("SIGTERM");
    await logLine(lines, (l) => l.msg === "shutting down");
    const refused = await fetch(`${url}/generate`, jsonInit({ prompt: "x", steps: 2 }));
    assertEquals(refused.status, 503);
    assertEquals((await refused.json()).error.code, "shutting_down");
    const health = await fetch(`${url}/healthz`);
    assertEquals([health.status, (await health.json()).status], [503, "shutting_down"]);
    const res = await long;
    assert([200, 503].includes(res.status), `the running request got ${res.status}`);
    await res.body?.cancel();
    const { code } = await child.status;
    const ms = performance.now() - t0;
    assertEquals(code, 0);
    assert(ms < 1000 + 10_000, `exited ${ms} ms after SIGTERM`);
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* already exited */ }
    await child.stdout.cancel().catch(() => {});
  }
});

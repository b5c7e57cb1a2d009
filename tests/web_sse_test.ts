/** The playground's Server-Sent Events parser (web/src/sse.ts). */
import { assertEquals } from "./_assert.ts";
import { readSse, type SseMessage, SseParser } from "../web/src/sse.ts";

const STREAM = 'event: queued\ndata: {"position":0}\n\n: keep-alive\n\n' +
  'event: progress\ndata: {"step":1}\n\nevent: completed\ndata: {"a":1}\ndata: {"b":2}\n\n';
const EVENTS: SseMessage[] = [
  { event: "queued", data: '{"position":0}' },
  { event: "progress", data: '{"step":1}' },
  { event: "completed", data: '{"a":1}\n{"b":2}' },
];

Deno.test("sse: whole stream, comments skipped, multi-line data joined", () => {
  assertEquals(new SseParser().push(STREAM), EVENTS);
});

Deno.test("sse: the same events whatever the chunk boundaries", () => {
  for (const size of [1, 2, 3, 7, 13]) {
    const p = new SseParser();
    const out: SseMessage[] = [];
    for (let i = 0; i < STREAM.length; i += size) out.push(...p.push(STREAM.slice(i, i + size)));
    assertEquals(out, EVENTS, `chunks of ${size}`);
  }
});

Deno.test("sse: CRLF and CR line ends, split between chunks", () => {
  const crlf = STREAM.replaceAll("\n", "\r\n");
  const p = new SseParser();
  const out: SseMessage[] = [];
  for (let i = 0; i < crlf.length; i += 5) out.push(...p.push(crlf.slice(i, i + 5)));
  assertEquals(out, EVENTS);
  const cr = new SseParser();
  assertEquals([...cr.push(STREAM.replaceAll("\n", "\r")), ...cr.end()], EVENTS);
});

Deno.test("sse: unnamed events are 'message'; field without a space; no data → no event", () => {
  assertEquals(new SseParser().push("data:x\n\nevent: lone\n\ndata: y\n\n"), [
    { event: "message", data: "x" },
    { event: "message", data: "y" },
  ]);
});

Deno.test("sse: readSse yields events from a byte stream and drops a cut-off event", async () => {
  const bytes = new TextEncoder().encode(STREAM + "event: error\ndata: {}");
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      // Split inside a multi-byte-free stream at odd places, one byte chunk among them.
      c.enqueue(bytes.subarray(0, 10));
      c.enqueue(bytes.subarray(10, 11));
      c.enqueue(bytes.subarray(11));
      c.close();
    },
  });
  const out: SseMessage[] = [];
  for await (const ev of readSse(body)) out.push(ev);
  assertEquals(out, EVENTS);
});

Deno.test("sse: stopping early cancels the body", async () => {
  let cancelled = false;
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(new TextEncoder().encode(STREAM));
    },
    cancel() {
      cancelled = true;
    },
  });
  for await (const ev of readSse(body)) {
    assertEquals(ev.event, "queued");
    break;
  }
  assertEquals(cancelled, true);
});

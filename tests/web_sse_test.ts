/** The playground's Server-Sent Events reader (web/src/sse.ts over eventsource-parser). */
import { assertEquals } from "./_assert.ts";
import { readSse, type SseMessage } from "../web/src/sse.ts";

const STREAM = 'event: queued\ndata: {"position":0}\n\n: keep-alive\n\n' +
  'event: progress\ndata: {"step":1}\n\nevent: completed\ndata: {"a":1}\ndata: {"b":2}\n\n';
const EVENTS: SseMessage[] = [
  { event: "queued", data: '{"position":0}' },
  { event: "progress", data: '{"step":1}' },
  { event: "completed", data: '{"a":1}\n{"b":2}' },
];

/** A body that delivers `text` in chunks of `size` bytes. */
function body(text: string, size = text.length): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  return new ReadableStream({
    start(c) {
      for (let i = 0; i < bytes.length; i += size) c.enqueue(bytes.subarray(i, i + size));
      c.close();
    },
  });
}

async function read(b: ReadableStream<Uint8Array>): Promise<SseMessage[]> {
  const out: SseMessage[] = [];
  for await (const ev of readSse(b)) out.push(ev);
  return out;
}

Deno.test("sse: the same events whatever the chunk boundaries; comments skipped, data joined", async () => {
  for (const size of [1, 2, 3, 7, 13, STREAM.length]) {
    assertEquals(await read(body(STREAM, size)), EVENTS, `chunks of ${size}`);
  }
});

Deno.test("sse: CRLF and CR line ends, split between chunks", async () => {
  assertEquals(await read(body(STREAM.replaceAll("\n", "\r\n"), 5)), EVENTS);
  assertEquals(await read(body(STREAM.replaceAll("\n", "\r"), 4)), EVENTS);
});

Deno.test("sse: unnamed events are 'message'; field without a space; a cut-off event is dropped", async () => {
  assertEquals(await read(body("data:x\n\nevent: lone\n\ndata: y\n\nevent: error\ndata: {}")), [
    { event: "message", data: "x" },
    { event: "message", data: "y" },
  ]);
});

Deno.test("sse: stopping early cancels the body", async () => {
  let cancelled = false;
  const b = new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(new TextEncoder().encode(STREAM));
    },
    cancel() {
      cancelled = true;
    },
  });
  for await (const ev of readSse(b)) {
    assertEquals(ev.event, "queued");
    break;
  }
  assertEquals(cancelled, true);
});

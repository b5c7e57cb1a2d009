/**
 * Server-Sent Events over `fetch`: the playground POSTs its request (which `EventSource` cannot
 * do) and parses the `text/event-stream` body itself. Browser- and Deno-safe (no DOM, no imports),
 * so the parser is unit-tested under Deno and bundled unchanged into the page.
 *
 * @module
 */

/** One event: its name (`message` when the stream names none) and its data lines joined by `\n`. */
export interface SseMessage {
  event: string;
  data: string;
}

/**
 * Incremental `text/event-stream` parser: push decoded text as it arrives and get every event
 * that completed (a blank line ends an event). Handles `\n`, `\r\n` and `\r` line ends, comment
 * lines (`: keep-alive`), and events split across chunks anywhere.
 */
export class SseParser {
  #buf = "";
  #event = "";
  #data: string[] = [];

  /** Feeds a chunk of text; returns the events it completed, in order. */
  push(chunk: string): SseMessage[] {
    this.#buf += chunk;
    const out: SseMessage[] = [];
    while (true) {
      const m = /\r\n|\r|\n/.exec(this.#buf);
      // A lone trailing "\r" may be the first half of "\r\n": wait for the next chunk.
      if (!m || (m[0] === "\r" && m.index === this.#buf.length - 1)) break;
      const line = this.#buf.slice(0, m.index);
      this.#buf = this.#buf.slice(m.index + m[0].length);
      const ev = this.#line(line);
      if (ev) out.push(ev);
    }
    return out;
  }

  /** Ends the stream: a final lone `\r` still ends its line; an unfinished event is dropped. */
  end(): SseMessage[] {
    const out = this.#buf.endsWith("\r") ? this.push("\n") : [];
    this.#buf = "";
    this.#event = "";
    this.#data = [];
    return out;
  }

  #line(line: string): SseMessage | null {
    if (line === "") {
      if (this.#data.length === 0) {
        this.#event = "";
        return null;
      }
      const ev = { event: this.#event || "message", data: this.#data.join("\n") };
      this.#event = "";
      this.#data = [];
      return ev;
    }
    if (line.startsWith(":")) return null;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.#event = value;
    else if (field === "data") this.#data.push(value);
    return null;
  }
}

/**
 * Reads a `text/event-stream` body to its end, yielding each event as soon as it is complete.
 * An event the stream cut off (no closing blank line) is dropped, as the SSE spec says. Stopping
 * the iteration early cancels the body.
 */
export async function* readSse(body: ReadableStream<Uint8Array>): AsyncGenerator<SseMessage> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const parser = new SseParser();
  let done = false;
  try {
    while (true) {
      const r = await reader.read();
      if (r.done) break;
      yield* parser.push(decoder.decode(r.value, { stream: true }));
    }
    done = true;
    yield* parser.push(decoder.decode());
    yield* parser.end();
  } finally {
    // The consumer stopped early: cancel the body so the server sees the client go.
    if (!done) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}

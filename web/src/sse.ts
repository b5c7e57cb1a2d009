/**
 * Server-Sent Events over `fetch`: the playground POSTs its request (which `EventSource` cannot
 * do), so it reads the `text/event-stream` body itself, parsed by `eventsource-parser` (its
 * `EventSourceParserStream` follows the WHATWG parsing rules: `\n`, `\r\n` and `\r` line ends,
 * comment lines such as `: keep-alive`, events split across chunks anywhere).
 *
 * @module
 */
import { EventSourceParserStream } from "eventsource-parser/stream";

/** One event: its name (`message` when the stream names none) and its data lines joined by `\n`. */
export interface SseMessage {
  event: string;
  data: string;
}

/**
 * Reads a `text/event-stream` body to its end, yielding each event as soon as it is complete.
 * An event the stream cut off (no closing blank line) is dropped, as the SSE spec says. Stopping
 * the iteration early cancels the body (the server sees the client go).
 */
export async function* readSse(body: ReadableStream<Uint8Array>): AsyncGenerator<SseMessage> {
  const events = body
    .pipeThrough(new TextDecoderStream() as unknown as TransformStream<Uint8Array, string>)
    .pipeThrough(new EventSourceParserStream());
  for await (const ev of events) yield { event: ev.event ?? "message", data: ev.data };
}

/**
 * Helpers shared by the server tests: JSON requests, Server-Sent Event parsing, PNG checks.
 *
 * @module
 */
import { decodeBase64 } from "@std/encoding/base64";
import { createParser, type EventSourceMessage } from "eventsource-parser";

/** The 8-byte PNG signature. */
export const PNG_SIG = [137, 80, 78, 71, 13, 10, 26, 10];

/** Width and height from a PNG's IHDR, or throws if `bytes` is not a PNG. */
export function pngSize(bytes: Uint8Array): { width: number; height: number } {
  for (let i = 0; i < 8; i++) {
    if (bytes[i] !== PNG_SIG[i]) throw new Error("not a PNG (bad signature)");
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (String.fromCharCode(...bytes.subarray(12, 16)) !== "IHDR") throw new Error("no IHDR");
  return { width: v.getUint32(16), height: v.getUint32(20) };
}

/** `pngSize` of a base64 string. */
export function b64PngSize(b64: string): { width: number; height: number } {
  return pngSize(decodeBase64(b64));
}

/** A POST with a JSON body (or a raw string) and extra headers. */
export function jsonInit(
  body: unknown,
  headers: Record<string, string> = {},
  signal?: AbortSignal,
): RequestInit {
  return {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
    signal,
  };
}

/** One Server-Sent Event. */
export interface SseEvent {
  event: string;
  data: Record<string, unknown>;
}

/** An event as eventsource-parser dispatches it, its data parsed as JSON. */
function sseEvent(e: EventSourceMessage): SseEvent {
  return { event: e.event ?? "message", data: JSON.parse(e.data) };
}

/**
 * Parses a complete `text/event-stream` body with eventsource-parser, as the playground reads it
 * (web/src/sse.ts): comment lines such as keep-alives are no events.
 */
export function parseSse(text: string): SseEvent[] {
  const out: SseEvent[] = [];
  createParser({ onEvent: (e) => out.push(sseEvent(e)) }).feed(text);
  return out;
}

/** Reads a response body until the first complete event and returns it (the reader stays open). */
export async function readFirstEvent(
  reader: ReadableStreamDefaultReader<Uint8Array>,
): Promise<SseEvent> {
  const dec = new TextDecoder();
  let first: SseEvent | undefined;
  const parser = createParser({ onEvent: (e) => first ??= sseEvent(e) });
  while (!first) {
    const r = await reader.read();
    if (r.done) throw new Error("stream ended before the first event");
    parser.feed(dec.decode(r.value, { stream: true }));
  }
  return first;
}

/** Resolves when `signal` aborts (rejects after `ms` so a broken test fails instead of hanging). */
export function aborted(signal: AbortSignal | undefined, ms = 5000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    if (!signal) return reject(new Error("no signal was passed"));
    if (signal.aborted) return resolve(signal.reason);
    const t = setTimeout(() => reject(new Error(`signal not aborted within ${ms} ms`)), ms);
    signal.addEventListener("abort", () => {
      clearTimeout(t);
      resolve(signal.reason);
    }, { once: true });
  });
}

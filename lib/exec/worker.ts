/**
 * Entry point of a generation worker (a Deno module `Worker` started by `WorkerPool`).
 *
 * onnxruntime-web resolves its bundle's URL against `location.origin`, which is `"null"` in a
 * worker started from a `file:` URL (`Invalid URL … with base 'null'`), so `location` is hidden
 * before the runtime is imported, and everything that imports it is loaded dynamically after
 * that. Messages that arrive while the modules load are kept and handled in order.
 *
 * @module
 */
import type { WorkerScope } from "./host.ts";

Object.defineProperty(globalThis, "location", { value: undefined, configurable: true });

const scope = globalThis as unknown as WorkerScope;
const early: MessageEvent[] = [];
scope.onmessage = (e: MessageEvent) => void early.push(e);
const { serveWorker } = await import("./host.ts");
serveWorker(scope, early);

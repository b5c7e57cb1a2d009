/**
 * Test wrappers around any `ImageGenerator` (the stand-in or the real pipeline): they count calls,
 * hold generations until released or aborted, or fail chosen calls. They only compose the
 * interface, so tests stay valid when the stand-in is replaced by the real pipeline.
 *
 * @module
 */
import type {
  GenerateRequest,
  GenerateResult,
  ImageGenerator,
  ImageJobOptions,
} from "../../lib/pipeline/types.ts";

/** One recorded `generate` call. */
export interface Call {
  model: string;
  req: GenerateRequest;
  signal?: AbortSignal;
}

/** Records every `generate` call and passes it on. */
export function counting(inner: ImageGenerator): ImageGenerator & { calls: Call[] } {
  const calls: Call[] = [];
  return {
    calls,
    models: () => inner.models(),
    tokenizer: (m: string) => inner.tokenizer(m),
    predictMs: (m, p) => inner.predictMs(m, p),
    generate(model, req, opts) {
      calls.push({ model, req, signal: opts.signal });
      return inner.generate(model, req, opts);
    },
  };
}

/**
 * Holds each `generate` call until `release()` (then runs the inner one) or until its signal
 * aborts (then rejects with the reason). `started` resolves when the first call arrives.
 */
export function gated(inner: ImageGenerator): ImageGenerator & {
  calls: Call[];
  release(): void;
  started: Promise<void>;
} {
  const calls: Call[] = [];
  let open = false;
  const waiters: (() => void)[] = [];
  let onStart!: () => void;
  const started = new Promise<void>((r) => (onStart = r));
  return {
    calls,
    started,
    release() {
      open = true;
      for (const w of waiters.splice(0)) w();
    },
    models: () => inner.models(),
    tokenizer: (m: string) => inner.tokenizer(m),
    predictMs: (m, p) => inner.predictMs(m, p),
    async generate(
      model: string,
      req: GenerateRequest,
      opts: ImageJobOptions,
    ): Promise<GenerateResult> {
      calls.push({ model, req, signal: opts.signal });
      onStart();
      if (!open) {
        await new Promise<void>((resolve, reject) => {
          const signal = opts.signal;
          if (signal?.aborted) return reject(signal.reason);
          const onAbort = () => reject(signal!.reason);
          signal?.addEventListener("abort", onAbort, { once: true });
          waiters.push(() => {
            signal?.removeEventListener("abort", onAbort);
            resolve();
          });
        });
      }
      return inner.generate(model, req, opts);
    },
  };
}

/** Rejects the `failOn`-th call (1-based) with an error; passes the others on. */
export function failingOn(
  inner: ImageGenerator,
  failOn: number,
): ImageGenerator & { calls: number } {
  const state = {
    calls: 0,
    models: () => inner.models(),
    tokenizer: (m: string) => inner.tokenizer(m),
    predictMs: (m: string, p: Parameters<ImageGenerator["predictMs"]>[1]) => inner.predictMs(m, p),
    generate(model: string, req: GenerateRequest, opts: ImageJobOptions) {
      state.calls++;
      if (state.calls === failOn) return Promise.reject(new Error("injected failure"));
      return inner.generate(model, req, opts);
    },
  };
  return state;
}

/** Overrides `predictMs` (e.g. to make every plan look slow) and passes the rest on. */
export function predicting(
  inner: ImageGenerator,
  predictMs: ImageGenerator["predictMs"],
): ImageGenerator {
  return {
    models: () => inner.models(),
    tokenizer: (m: string) => inner.tokenizer(m),
    predictMs,
    generate: (m, r, o) => inner.generate(m, r, o),
  };
}

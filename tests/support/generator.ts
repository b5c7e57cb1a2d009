/**
 * TEMPORARY STAND-IN for the real pipeline, used by the server, jobs and load tests.
 *
 * The lead replaces the body of `testGenerator()` with the real default-model pipeline
 * (lib/pipeline/service.ts). Tests must therefore rely only on the `ImageGenerator` interface's
 * behaviour (PNG signature, dimensions from `models()`, progress order, abort), never on the
 * bytes or timings this stand-in produces.
 *
 * @module
 */
import { encode } from "imagescript/png";
import type {
  GenerateOptions,
  GenerateRequest,
  GenerateResult,
  ImageGenerator,
  ModelInfo,
  PlanSpec,
} from "../../lib/server/generator.ts";

const MS_PER_STEP = 2;
const OVERHEAD_MS = 3;

function png(width: number, height: number, seed: number, shade: number): Uint8Array {
  const data = new Uint8Array(width * height * 4);
  let x = (seed ^ 0x9e3779b9) >>> 0;
  for (let i = 0; i < width * height; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    data[i * 4] = (x >>> 24) & 0xff;
    data[i * 4 + 1] = shade;
    data[i * 4 + 2] = (x >>> 8) & 0xff;
    data[i * 4 + 3] = 255;
  }
  return encode(data, { width, height, channels: 4 });
}

function wait(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

let shared: Promise<ImageGenerator> | null = null;

/**
 * The generator the tests use, loaded once per test process and shared (tests wrap it, never
 * change it). TEMPORARY body: a small deterministic stand-in (see the module doc).
 */
export function testGenerator(): Promise<ImageGenerator> {
  return shared ??= standIn();
}

/** TEMPORARY: a small deterministic stand-in for the default model. */
async function standIn(): Promise<ImageGenerator> {
  const model: ModelInfo = {
    name: "stand-in",
    width: 64,
    height: 64,
    backend: "wasm",
    defaults: { steps: 20, solver: "dpm", guidanceScale: 5 },
    schedules: [
      {
        name: "dpm-20-safe",
        solver: "dpm",
        steps: 20,
        skippedFraction: 0.3,
        quality: { fd: 0.04 },
      },
      {
        name: "dpm-20-fast",
        solver: "dpm",
        steps: 20,
        skippedFraction: 0.55,
        quality: { fd: 0.09 },
      },
      { name: "ddim-20", solver: "ddim", steps: 20, skippedFraction: 0.4 },
    ],
  };
  const skipped = (schedule: string | null) =>
    model.schedules.find((s) => s.name === schedule)?.skippedFraction ?? 0;
  const predict = (plan: PlanSpec) =>
    (plan.n ?? 1) * (OVERHEAD_MS + plan.steps * MS_PER_STEP * (1 - 0.6 * skipped(plan.schedule)));
  await Promise.resolve();
  return {
    models: () => [model],
    predictMs: (_name, plan) => predict(plan),
    async generate(
      name: string,
      req: GenerateRequest,
      opts: GenerateOptions,
    ): Promise<GenerateResult> {
      if (name !== model.name) throw new Error(`unknown model ${name}`);
      const t0 = performance.now();
      let schedule: string | null = null;
      if (req.cache === "auto") {
        schedule = model.schedules.find((s) => s.solver === req.solver && s.steps === req.steps)
          ?.name ?? null;
      } else if (req.cache !== "none") {
        if (!model.schedules.some((s) => s.name === req.cache)) {
          throw new Error(`unknown schedule ${req.cache}`);
        }
        schedule = req.cache;
      }
      const perStep = MS_PER_STEP * (1 - 0.6 * skipped(schedule));
      for (let step = 1; step <= req.steps; step++) {
        opts.signal?.throwIfAborted();
        await wait(perStep, opts.signal);
        const every = opts.previewEvery ?? 0;
        const preview = every > 0 && (step % every === 0 || step === req.steps)
          ? png(16, 16, req.seed + step, (step * 255 / req.steps) | 0)
          : undefined;
        opts.onProgress?.({ step, steps: req.steps, elapsedMs: performance.now() - t0, preview });
      }
      opts.signal?.throwIfAborted();
      const image = png(model.width, model.height, req.seed, 128);
      const totalMs = performance.now() - t0;
      return {
        png: image,
        width: model.width,
        height: model.height,
        seed: req.seed,
        steps: req.steps,
        solver: req.solver,
        schedule,
        backend: model.backend,
        timings: { textEncoderMs: 0, unetMs: totalMs, decoderMs: 0, totalMs },
        skippedFraction: skipped(schedule),
        cacheBytes: schedule ? 4096 : 0,
      };
    },
  };
}

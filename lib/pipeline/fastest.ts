/**
 * `auto` for the service: load a model on each usable backend, time the same short generation on
 * each, keep the fastest. Each candidate is its backend's fast path as `Pipeline.load` makes it
 * (static-shape sessions, weights dequantized at load, and on WebGPU GPU-resident segment I/O with
 * captured command replay: `lib/unet/engine.ts`); the probe is a guided image, whose batch of 2 is
 * in the engine's warm set, so neither side pays for making sessions during the race. A GPU is not
 * always faster: before the engine's WebGPU fast path the default 64x64 model ran about 4x faster
 * on wasm (one CPU core) than on an H200's WebGPU, where the fixed host cost of each kernel
 * dispatch dominated so small a UNet, while a Stable Diffusion UNet needs the GPU.
 *
 * @module
 */
import { Pipeline } from "./pipeline.ts";
import type { Backend, GenerateRequest } from "./types.ts";

/** UNet weights above this size are not tried on wasm (its heap is 4 GiB at most). */
export const WASM_MAX_UNET_BYTES = 1 << 30;

/** The generation every candidate is timed on: short, guided (a batch of 2, as served). */
export const PROBE_REQUEST: GenerateRequest = {
  prompt: "backend probe",
  negativePrompt: "",
  seed: 0,
  steps: 2,
  guidanceScale: 4,
  solver: "dpm",
  cache: "none",
};

/** How one candidate fared. */
export interface BackendTrial {
  backend: Backend;
  /** End-to-end ms of the timed probe (the second run; the first warms up), or the error. */
  ms?: number;
  error?: string;
}

/** Options of {@link loadFastestPipeline}. */
export interface FastestOptions {
  log?: (line: string) => void;
  schedulesDir?: string;
  /** Loads the model on one backend (default {@link Pipeline.load}). */
  load?: (backend: Backend) => Promise<Pipeline>;
}

async function unetBytes(modelDir: string): Promise<number> {
  let total = 0;
  for await (const e of Deno.readDir(`${modelDir}/unet`)) {
    if (e.isFile) total += (await Deno.stat(`${modelDir}/unet/${e.name}`)).size;
  }
  return total;
}

/**
 * Loads `modelDir` on every candidate backend in turn, times {@link PROBE_REQUEST} on each and
 * returns the fastest pipeline (the others are released), with every trial. A candidate that
 * fails to load or run is skipped; only when all fail does it throw (with each reason).
 */
export async function loadFastestPipeline(
  modelDir: string,
  candidates: Backend[],
  opts: FastestOptions = {},
): Promise<{ pipeline: Pipeline; trials: BackendTrial[] }> {
  const log = opts.log ?? console.log;
  const load = opts.load ??
    ((backend: Backend) =>
      Pipeline.load(modelDir, { backend, log, schedulesDir: opts.schedulesDir }));
  const trials: BackendTrial[] = [];
  let best: { pipeline: Pipeline; ms: number } | undefined;
  for (const backend of candidates) {
    if (backend === "wasm" && candidates.length > 1) {
      const bytes = await unetBytes(modelDir);
      if (bytes > WASM_MAX_UNET_BYTES) {
        trials.push({ backend, error: `UNet weights of ${(bytes / 2 ** 30).toFixed(1)} GiB` });
        continue;
      }
    }
    let pipeline: Pipeline | undefined;
    try {
      pipeline = await load(backend);
      await pipeline.generate(PROBE_REQUEST);
      const ms = (await pipeline.generate(PROBE_REQUEST)).timings.totalMs;
      trials.push({ backend, ms });
      if (!best || ms < best.ms) {
        await best?.pipeline.release();
        best = { pipeline, ms };
      } else await pipeline.release();
    } catch (e) {
      await pipeline?.release();
      trials.push({ backend, error: e instanceof Error ? e.message : String(e) });
    }
  }
  const summary = trials.map((t) =>
    t.ms !== undefined ? `${t.backend} ${t.ms.toFixed(0)} ms` : `${t.backend} not used (${t.error})`
  ).join(", ");
  const status = best?.pipeline.unet.status();
  const path = status &&
    `weights ${status.weights}${
      status.backend === "webgpu"
        ? `, ${status.shapes.map((s) => `${s.captured}/${s.segments}`).join(" ")} captured`
        : ""
    }`;
  if (!best) throw new Error(`no backend could run ${modelDir}: ${summary}`);
  log(
    `backend auto for ${modelDir}: ${best.pipeline.backend}, ${path} (a ${PROBE_REQUEST.steps}-step ` +
      `guided image: ${summary})`,
  );
  return { pipeline: best.pipeline, trials };
}

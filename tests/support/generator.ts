/**
 * The real default model for tests: its pipeline per backend and the service's generator over it,
 * each loaded once per test process and shared (tests wrap them, never change them).
 *
 * The model's weights are replaced by later training runs (same layout and file names), so tests
 * rely only on properties (PNG validity, sizes from `models()`, determinism, progress order,
 * abort), never on specific pixels or timings.
 *
 * @module
 */
import type { ImageGenerator } from "../../lib/pipeline/types.ts";
import { Pipeline } from "../../lib/pipeline/pipeline.ts";
import { PipelineGenerator } from "../../lib/pipeline/service.ts";
import type { Backend } from "../../lib/runtime/backend.ts";
import type { SolverName } from "../../lib/pipeline/types.ts";
import { uniformSchedule } from "../../lib/calibration/derive.ts";
import {
  type Schedule,
  SCHEDULE_FORMAT,
  scheduleFileName,
  serializeSchedule,
  skippedFraction,
  uniformScheduleName,
} from "../../lib/cache/schedule.ts";

/** The shipped default model folder. */
export const DEFAULT_MODEL_DIR = new URL("../../models/emoji-ldm", import.meta.url).pathname;

const pipelines = new Map<Backend, Promise<Pipeline>>();
let shared: Promise<PipelineGenerator> | null = null;

/** The default model's pipeline on `backend` (default wasm), loaded once per test process. */
export function testPipeline(backend: Backend = "wasm"): Promise<Pipeline> {
  let p = pipelines.get(backend);
  if (!p) {
    p = Pipeline.load(DEFAULT_MODEL_DIR, { backend, log: () => {} });
    pipelines.set(backend, p);
  }
  return p;
}

/**
 * The generator the service tests use: the real default model on wasm, warmed up (so its
 * predictions are measured), loaded once per test process and shared.
 */
export function testGenerator(): Promise<ImageGenerator> {
  return shared ??= (async () => {
    const g = new PipelineGenerator([await testPipeline("wasm")]);
    await g.warmUp();
    return g;
  })();
}

/**
 * Writes a uniform schedule (recompute every `every`-th step, from step 0) for `p`'s blocks to
 * `<dir>/<solver>-<steps>-uniform-<every>.json` and returns the path (a valid `cache` value).
 */
export async function writeUniformSchedule(
  p: Pipeline,
  dir: string,
  solver: SolverName,
  steps: number,
  every: number,
  measured?: Schedule["measured"],
): Promise<string> {
  const recompute = uniformSchedule(steps, p.unet.blocks.length, every);
  const s: Schedule = {
    format: SCHEDULE_FORMAT,
    model: p.model.name,
    solver,
    steps,
    name: uniformScheduleName(every),
    kind: "uniform",
    every,
    mode: p.unet.manifest.mode,
    blocks: [...p.unet.blocks],
    recompute,
    skippedFraction: skippedFraction(recompute),
    ...(measured ? { measured } : {}),
  };
  const file = `${dir}/${scheduleFileName(solver, steps, s.name)}`;
  await Deno.writeTextFile(file, serializeSchedule(s));
  return file;
}

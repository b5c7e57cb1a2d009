/**
 * The in-process `ImageGenerator` (lib/pipeline/types.ts): one {@link Pipeline} per model folder,
 * the models' shipped schedules, and wall-time predictions from the generations it ran
 * ({@link LatencyModel}). The service runs it inside workers (lib/exec/); the CLI, tests and
 * benchmarks use it directly.
 *
 * Schedules are offered under their full id `<solver>-<steps>-<name>` (e.g. `dpm-20-delta-0.50`),
 * which is unique per model even when two solvers ship a schedule of the same short name; the
 * short name is accepted too where the request's solver and steps make it unambiguous.
 *
 * @module
 */
import { scheduleId } from "../cache/schedule.ts";
import { BACKEND_CHOICES, type BackendChoice, resolveBackend } from "../runtime/backend.ts";
import type {
  GenerateOptions,
  GenerateRequest,
  GenerateResult,
  ImageGenerator,
  ModelInfo,
  ModelScheduleInfo,
  PlanSpec,
  SolverName,
} from "../pipeline/types.ts";
import { ModelFolderError, modelFolders, readModelFolder } from "../model/folder.ts";
import type { Tokenizer } from "../model/tokenizer.ts";
import { Pipeline } from "./pipeline.ts";
import { loadFastestPipeline } from "./fastest.ts";
import { DEFAULTS } from "./request.ts";
import { LatencyModel, type ModelLayout } from "./latency.ts";
import { scheduleInfo } from "../planning/planner.ts";

/** Fewest steps at which a schedule can reuse a block (step 0 always computes every block). */
export const MIN_CACHE_STEPS = 2;

/**
 * Maps a request's `cache` value to what the pipeline's registry resolves: a full schedule id
 * (`dpm-20-delta-0.50`) of a shipped schedule for this solver and step count becomes its short
 * name; `none`, `auto`, short names and file paths pass unchanged.
 */
export function registryCacheName(
  p: Pipeline,
  cache: string,
  solver: SolverName,
  steps: number,
): string {
  const s = p.schedules.for(solver, steps).find((x) => scheduleId(x) === cache);
  return s ? s.name : cache;
}

/** What the latency predictor needs to know of a pipeline's model (see {@link LatencyModel}). */
export function modelLayout(p: Pipeline): ModelLayout {
  let block = 0;
  return {
    native: { ...p.model.sizes.native },
    segments: p.unet.timings().map((t) => t.kind === "block" ? block++ : -1),
    schedules: p.schedules.schedules.map((x) => ({
      id: scheduleId(x),
      name: x.name,
      solver: x.solver,
      steps: x.steps,
      recompute: x.recompute,
    })),
  };
}

/**
 * A model's public description: name, native size and the sizes served, backend, defaults,
 * shipped schedules, the fewest steps caching applies to, and the scheduler class.
 */
export function describeModel(p: Pipeline): ModelInfo {
  const { native, dynamic, multipleOf, min, max } = p.model.sizes;
  return {
    name: p.model.name,
    width: native.width,
    height: native.height,
    sizes: { native: { ...native }, dynamic, multipleOf, min, max },
    minCacheSteps: MIN_CACHE_STEPS,
    scheduler: {
      className: p.model.schedulerClass,
      solver: p.model.schedulerMapping.solver,
      exact: p.model.schedulerMapping.exact,
    },
    backend: p.backend,
    defaults: {
      steps: DEFAULTS.steps,
      solver: DEFAULTS.solver,
      guidanceScale: DEFAULTS.guidanceScale,
    },
    // schedules by full id with their measured FD (and its prompt count), the measured frontiers
    schedules: p.schedules.schedules.map((s): ModelScheduleInfo => {
      const info = scheduleInfo(s);
      const prompts = s.measured?.prompts;
      return info.quality && typeof prompts === "number" && Number.isInteger(prompts)
        ? { ...info, quality: { ...info.quality, prompts } }
        : info;
    }),
    frontiers: p.frontiers,
  };
}

/** The real `ImageGenerator`: one pipeline per model, the first one the default. */
export class PipelineGenerator implements ImageGenerator {
  private byName = new Map<string, Pipeline>();
  /** Predictions from what this generator's generations measured. */
  readonly latency: LatencyModel;

  /** Wraps loaded pipelines (model names must be distinct); the first is the default model. */
  constructor(readonly pipelines: Pipeline[]) {
    if (pipelines.length === 0) throw new Error("a generator needs at least one model");
    const layouts: Record<string, ModelLayout> = {};
    for (const p of pipelines) {
      if (this.byName.has(p.model.name)) throw new Error(`model ${p.model.name} is loaded twice`);
      this.byName.set(p.model.name, p);
      layouts[p.model.name] = modelLayout(p);
    }
    this.latency = new LatencyModel(layouts);
  }

  private pipeline(model: string): Pipeline {
    const p = this.byName.get(model);
    if (!p) {
      throw new Error(
        `unknown model ${JSON.stringify(model)} (loaded: ${[...this.byName.keys()].join(", ")})`,
      );
    }
    return p;
  }

  /**
   * {@link ImageGenerator.models}: name, native size and the sizes served, backend, defaults,
   * shipped schedules, the fewest steps caching applies to, and the scheduler class.
   */
  models(): ModelInfo[] {
    return this.pipelines.map(describeModel);
  }

  /** {@link ImageGenerator.tokenizer}. */
  tokenizer(model: string): Tokenizer {
    return this.pipeline(model).tokenizer;
  }

  /** {@link ImageGenerator.predictMs}, from this generator's measurements ({@link LatencyModel}). */
  predictMs(model: string, plan: PlanSpec): number {
    this.pipeline(model);
    return this.latency.predict(model, plan);
  }

  /**
   * {@link ImageGenerator.generate}: runs the model's pipeline, records its timings, and reports
   * the schedule by its full id. Unknown models and schedules reject with a clear Error.
   */
  async generate(
    model: string,
    req: GenerateRequest,
    opts: GenerateOptions = {},
  ): Promise<GenerateResult> {
    const p = this.pipeline(model);
    const cache = registryCacheName(p, req.cache, req.solver, req.steps);
    const r = await p.generate({ ...req, cache }, opts);
    this.latency.observe(model, r);
    return r.schedule === null
      ? r
      : { ...r, schedule: scheduleId({ solver: r.solver, steps: r.steps, name: r.schedule }) };
  }

  /**
   * Warms every model on the request path until {@link predictMs} is calibrated: one cold run
   * (compilation, allocation), then the model's default request (guided) and a short unguided one,
   * repeated until the default request's prediction made before a run is within `tolerance` of
   * its measured time (at most `maxRuns` times; 0 = the cold run only). Returns the generations
   * it ran.
   */
  async warmUp(
    opts: { tolerance?: number; maxRuns?: number } = {},
  ): Promise<{ model: string; result: GenerateResult }[]> {
    const tolerance = opts.tolerance ?? 0.2, maxRuns = opts.maxRuns ?? 4;
    const runs: { model: string; result: GenerateResult }[] = [];
    const run = async (model: string, req: GenerateRequest) => {
      const result = await this.generate(model, req);
      runs.push({ model, result });
      return result;
    };
    for (const p of this.pipelines) {
      const name = p.model.name;
      const base: GenerateRequest = {
        prompt: "warm-up",
        negativePrompt: "",
        seed: 0,
        steps: DEFAULTS.steps,
        guidanceScale: DEFAULTS.guidanceScale,
        solver: DEFAULTS.solver,
        cache: "none",
      };
      await run(name, { ...base, steps: 2 });
      for (let i = 0; i < maxRuns; i++) {
        const predicted = this.predictMs(name, {
          steps: base.steps,
          solver: base.solver,
          schedule: null,
          guided: true,
        });
        const r = await run(name, { ...base, seed: i + 1 });
        await run(name, { ...base, seed: i + 1, steps: 4, guidanceScale: 1 });
        if (Math.abs(r.timings.totalMs - predicted) <= tolerance * r.timings.totalMs) break;
      }
    }
    return runs;
  }

  /** Releases every pipeline's sessions. */
  async release(): Promise<void> {
    for (const p of this.pipelines) await p.release();
  }
}

/**
/** A model folder that could not be loaded: its folder name, path and the reason. */
export interface FailedModel {
  name: string;
  dir: string;
  reason: string;
}

/**
 * Loads every model folder of `modelsDir` (see `modelFolders`), or the folders listed, on
 * `backend`, each on its own: a folder that fails its check (ModelFolderError: missing or corrupt
 * file, unsupported timestep contract, …), its memory estimate (PlanMemoryError) or session
 * creation is reported in `failed` by folder name with the reason, and the others still load.
 * Each folder is checked before any of its sessions exists, and a failed one releases what it
 * created. Throws only for a bad backend or an unreadable `modelsDir`.
 */
export async function loadPipelines(
  modelsDir: string | string[],
  backend: string,
  log: (line: string) => void = console.log,
  schedulesRoot?: string,
): Promise<{ loaded: Pipeline[]; failed: FailedModel[] }> {
  if (!BACKEND_CHOICES.includes(backend as BackendChoice)) {
    throw new Error(
      `unknown backend ${JSON.stringify(backend)}: use ${BACKEND_CHOICES.join(", ")}`,
    );
  }
  const race = backend === "auto" && (await resolveBackend("auto", log)).backend === "webgpu";
  const loaded: Pipeline[] = [];
  const failed: FailedModel[] = [];
  for (const dir of Array.isArray(modelsDir) ? modelsDir : await modelFolders(modelsDir)) {
    const name = dir.replace(/\/+$/, "").split("/").pop()!;
    try {
      const schedulesDir = schedulesRoot === undefined
        ? undefined
        : `${schedulesRoot}/${(await readModelFolder(dir)).name}`;
      loaded.push(
        race
          ? (await loadFastestPipeline(dir, ["webgpu", "wasm"], { log, schedulesDir })).pipeline
          : await Pipeline.load(dir, { backend: backend as BackendChoice, log, schedulesDir }),
      );
    } catch (e) {
      const reason = e instanceof ModelFolderError ? e.reason : (e as Error).message;
      failed.push({ name, dir, reason });
      log(`model ${name} not loaded: ${reason}`);
    }
  }
  return { loaded, failed };
}

/**
 * Loads every model of `modelsDir` (or the model folders listed) on `backend` (`auto`, `wasm` or `webgpu`) as the service's
 * generator, with each model's schedules from `<schedulesRoot>/<model name>/` (default: the
 * repository's `schedules/`). With `auto` on a host with a hardware WebGPU adapter, each model
 * goes to whichever of WebGPU and wasm generates faster ({@link loadFastestPipeline}).
 * Predictions are `Infinity` until {@link PipelineGenerator.warmUp} (or a first generation) has
 * measured the host. When any folder fails it throws one Error naming every failed folder and its
 * reason, after releasing the others ({@link loadPipelines} gives the per-folder results to a
 * caller that serves the models that did load).
 */
export async function loadGenerator(
  modelsDir: string | string[],
  backend: string,
  log: (line: string) => void = console.log,
  schedulesRoot?: string,
): Promise<PipelineGenerator> {
  const { loaded, failed } = await loadPipelines(modelsDir, backend, log, schedulesRoot);
  if (failed.length === 0) return new PipelineGenerator(loaded);
  for (const p of loaded) await p.release();
  throw new Error(failed.map((f) => `model ${f.name} (${f.dir}): ${f.reason}`).join("; "));
}

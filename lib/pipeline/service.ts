/**
 * The real pipeline behind the service's `ImageGenerator` (lib/pipeline/types.ts): one
 * {@link Pipeline} per model folder, the models' shipped schedules, and wall-time predictions from
 * latencies measured on this host — the engine's per-segment means, running means of the text
 * encoder and the decoder, and the measured ratio of the UNet stage to its segments' sum (the
 * work between segments, the host's current speed), all updated as requests run.
 *
 * Schedules are offered under their full id `<solver>-<steps>-<name>` (e.g. `dpm-20-delta-0.50`),
 * which is unique per model even when two solvers ship a schedule of the same short name; the
 * short name is accepted too where the request's solver and steps make it unambiguous.
 *
 * @module
 */
import type { Schedule } from "../cache/schedule.ts";
import { scheduleId } from "../cache/schedule.ts";
import { BACKEND_CHOICES, type BackendChoice, resolveBackend } from "../runtime/backend.ts";
import type {
  GenerateOptions,
  GenerateRequest,
  GenerateResult,
  ImageGenerator,
  ModelInfo,
  PlanSpec,
  SolverName,
} from "../pipeline/types.ts";
import { readModelFolder } from "../model/folder.ts";
import { Pipeline } from "./pipeline.ts";
import { loadFastestPipeline } from "./fastest.ts";
import { DEFAULTS } from "./request.ts";
import { isFile } from "../io/fs.ts";

/** The model listed first (the service's default) when its folder is present. */
export const DEFAULT_MODEL = "emoji-ldm";

/**
 * A running mean that leaves out the first sample once there are two or more: the first run of a
 * session pays one-time costs (wasm compile, shader compile, allocation), as in the engine's means.
 * With `alpha` it is an exponential moving average from the second sample on (weight `alpha` for
 * the newest), which follows a shared host's changing load.
 */
export class WarmMean {
  private n = 0;
  private mean = 0;

  constructor(readonly alpha?: number) {}

  /** Adds one sample. */
  add(x: number): void {
    this.n++;
    if (this.n <= 2) this.mean = x; // the first alone, then restart without it
    else if (this.alpha !== undefined) this.mean += this.alpha * (x - this.mean);
    else this.mean += (x - this.mean) / (this.n - 1);
  }

  /** The mean (the first sample alone while it is the only one); undefined before any sample. */
  get value(): number | undefined {
    return this.n === 0 ? undefined : this.mean;
  }
}

/** Weight of the newest sample in the UNet scale's moving average. */
export const UNET_SCALE_ALPHA = 0.3;

/** Measured latencies of one pipeline beyond the engine's own per-segment means. */
interface StageStats {
  textEncoder: WarmMean;
  decoder: WarmMean;
  /**
   * Measured UNet-stage time over the segment means' sum for the same steps: covers the work
   * outside the segments (solver, guidance, copies, scale-shift) and the drift of those all-time
   * means from the host's current speed. A moving average; 1 before any measurement.
   */
  unetScale: WarmMean;
}

/** Side of the images a pipeline makes. */
function imageSize(p: Pipeline): number {
  return p.vaeDecoder ? p.model.imageSize : p.model.latentSize;
}

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

/**
 * Predicted UNet-stage time of `steps` steps on `p` from the engine's per-segment means: per step,
 * every glue segment plus the blocks `schedule` computes at that step (all without a schedule).
 * Undefined while some segment has never run.
 */
export function predictUnetMs(
  p: Pipeline,
  schedule: Schedule | null,
  steps: number,
): number | undefined {
  let total = 0;
  for (let i = 0; i < steps; i++) {
    const row = schedule?.recompute[i];
    const ms = p.unet.expectedMs((k) => !row || row[k]);
    if (ms === undefined) return undefined;
    total += ms;
  }
  return total;
}

/** The real `ImageGenerator`: one pipeline per model, the first one the default. */
export class PipelineGenerator implements ImageGenerator {
  private byName = new Map<string, { pipeline: Pipeline; stats: StageStats }>();

  /** Wraps loaded pipelines (model names must be distinct); the first is the default model. */
  constructor(readonly pipelines: Pipeline[]) {
    if (pipelines.length === 0) throw new Error("a generator needs at least one model");
    for (const p of pipelines) {
      if (this.byName.has(p.model.name)) throw new Error(`model ${p.model.name} is loaded twice`);
      this.byName.set(p.model.name, {
        pipeline: p,
        stats: {
          textEncoder: new WarmMean(),
          decoder: new WarmMean(),
          unetScale: new WarmMean(UNET_SCALE_ALPHA),
        },
      });
    }
  }

  private entry(model: string) {
    const e = this.byName.get(model);
    if (!e) {
      throw new Error(
        `unknown model ${JSON.stringify(model)} (loaded: ${[...this.byName.keys()].join(", ")})`,
      );
    }
    return e;
  }

  /** {@link ImageGenerator.models}: name, native size, backend, defaults and shipped schedules. */
  models(): ModelInfo[] {
    return this.pipelines.map((p) => ({
      name: p.model.name,
      width: imageSize(p),
      height: imageSize(p),
      backend: p.backend,
      defaults: {
        steps: DEFAULTS.steps,
        solver: DEFAULTS.solver,
        guidanceScale: DEFAULTS.guidanceScale,
      },
      // schedules by full id with their measured FD, and the measured frontiers
      schedules: p.planning.schedules,
      frontiers: p.planning.frontiers,
    }));
  }

  /**
   * {@link ImageGenerator.predictMs}: n × (text encoder + decoder + s × Σ over steps of the glue
   * segments and the blocks the schedule computes at that step), s the measured ratio of the
   * UNet stage's wall time to that sum (work outside the segments, recent host speed).
   * `Infinity` until the model has run once (see {@link warmUp}); an unknown schedule is
   * predicted as uncached (an upper bound).
   */
  predictMs(model: string, plan: PlanSpec): number {
    const { pipeline: p, stats } = this.entry(model);
    const schedule = plan.schedule === null ? null : p.schedules.for(plan.solver, plan.steps).find(
      (s) => scheduleId(s) === plan.schedule || s.name === plan.schedule,
    ) ?? null;
    const unet = predictUnetMs(p, schedule, plan.steps);
    const te = stats.textEncoder.value, dec = stats.decoder.value;
    if (unet === undefined || te === undefined || dec === undefined) return Infinity;
    return (plan.n ?? 1) * (te + dec + unet * (stats.unetScale.value ?? 1));
  }

  /**
   * {@link ImageGenerator.generate}: runs the model's pipeline, records its stage times, and
   * reports the schedule by its full id. Unknown models and schedules reject with a clear Error.
   */
  async generate(
    model: string,
    req: GenerateRequest,
    opts: GenerateOptions = {},
  ): Promise<GenerateResult> {
    const { pipeline: p, stats } = this.entry(model);
    const cache = registryCacheName(p, req.cache, req.solver, req.steps);
    const r = await p.generate({ ...req, cache }, opts);
    stats.textEncoder.add(r.timings.textEncoderMs);
    stats.decoder.add(r.timings.decoderMs);
    const schedule = r.schedule === null
      ? null
      : p.schedules.for(r.solver, r.steps).find((s) => s.name === r.schedule);
    if (schedule !== undefined) {
      const segments = predictUnetMs(p, schedule, r.steps);
      if (segments) stats.unetScale.add(r.timings.unetMs / segments);
    }
    return r.schedule === null
      ? r
      : { ...r, schedule: scheduleId({ solver: r.solver, steps: r.steps, name: r.schedule }) };
  }

  /**
   * Two short uncached generations per model (the first pays the one-time costs, the second
   * measures steady state), so {@link predictMs} has figures before the first request.
   */
  async warmUp(): Promise<void> {
    for (const p of this.pipelines) {
      for (const seed of [0, 1]) {
        await this.generate(p.model.name, {
          prompt: "warm-up",
          negativePrompt: "",
          seed,
          steps: 2,
          guidanceScale: DEFAULTS.guidanceScale,
          solver: DEFAULTS.solver,
          cache: "none",
        });
      }
    }
  }

  /** Releases every pipeline's sessions. */
  async release(): Promise<void> {
    for (const p of this.pipelines) await p.release();
  }
}

/**
 * The model folders under `modelsDir` (each subfolder with a `model_index.json`, the default
 * model first, then by name), or `modelsDir` itself when it is a model folder.
 */
export async function modelFolders(modelsDir: string): Promise<string[]> {
  const dir = modelsDir.replace(/\/+$/, "") || "/";
  if (await isFile(`${dir}/model_index.json`)) return [dir];
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isDirectory && await isFile(`${dir}/${e.name}/model_index.json`)) names.push(e.name);
    }
  } catch (e) {
    throw new Error(`models folder ${dir} cannot be read (${(e as Error).message})`);
  }
  if (names.length === 0) {
    throw new Error(`no model folders (with model_index.json) in ${dir}`);
  }
  names.sort((a, b) =>
    a === DEFAULT_MODEL ? -1 : b === DEFAULT_MODEL ? 1 : a < b ? -1 : a > b ? 1 : 0
  );
  return names.map((n) => `${dir}/${n}`);
}

/**
 * Loads every model of `modelsDir` on `backend` (`auto`, `wasm` or `webgpu`) as the service's
 * generator, with each model's schedules from `<schedulesRoot>/<model name>/` (default: the
 * repository's `schedules/`). With `auto` on a host with a hardware WebGPU adapter, each model
 * goes to whichever of WebGPU and wasm generates faster ({@link loadFastestPipeline}).
 * Predictions are `Infinity` until {@link PipelineGenerator.warmUp} (or a first generation) has
 * measured the host.
 */
export async function loadGenerator(
  modelsDir: string,
  backend: string,
  log: (line: string) => void = console.log,
  schedulesRoot?: string,
): Promise<PipelineGenerator> {
  if (!BACKEND_CHOICES.includes(backend as BackendChoice)) {
    throw new Error(
      `unknown backend ${JSON.stringify(backend)}: use ${BACKEND_CHOICES.join(", ")}`,
    );
  }
  const pipelines: Pipeline[] = [];
  const race = backend === "auto" && (await resolveBackend("auto", log)).backend === "webgpu";
  try {
    for (const dir of await modelFolders(modelsDir)) {
      const schedulesDir = schedulesRoot === undefined
        ? undefined
        : `${schedulesRoot}/${(await readModelFolder(dir)).name}`;
      pipelines.push(
        race
          ? (await loadFastestPipeline(dir, ["webgpu", "wasm"], { log, schedulesDir })).pipeline
          : await Pipeline.load(dir, { backend: backend as BackendChoice, log, schedulesDir }),
      );
    }
    return new PipelineGenerator(pipelines);
  } catch (e) {
    for (const p of pipelines) await p.release();
    throw e;
  }
}

/**
 * Prompt → image: tokenizer, text encoder, the block-split UNet under a per-request block cache,
 * a solver with classifier-free guidance, the VAE decoder and PNG. Runs on wasm or WebGPU; the
 * sessions are created once per process and shared by every request, the cache state is not.
 *
 * @module
 */
import { BlockCache, type ScaleShiftApply, scaleShiftOnCpu } from "../cache/policy.ts";
import { GpuScaleShift } from "../cache/scale_shift_gpu.ts";
import { ScheduleRegistry } from "../cache/registry.ts";
import type { Schedule } from "../cache/schedule.ts";
import { encodePng, nchwToRgba, type RgbaImage } from "../image/png.ts";
import { previewPng } from "../image/preview.ts";
import { type ModelFolder, readModelFolder } from "../model/folder.ts";
import type { Tokenizer } from "../model/tokenizer.ts";
import { analyzePrompt } from "../model/prompt.ts";
import { type ImageSize, type LatentShape, latentShapeOf } from "../model/sizes.ts";
import { timestepTensor } from "../model/unet_inputs.ts";
import {
  checkMemory,
  estimateMemory,
  type MemoryEstimate,
  type MemoryProfile,
  readMemoryProfile,
} from "../model/memory.ts";
import { type BackendChoice, resolveBackend } from "../runtime/backend.ts";
import { createSession, serialized } from "../runtime/session.ts";
import type { Session, Tensor } from "../runtime/ort.ts";
import { float32Tensor, numericTensor, toFloat32 } from "../runtime/tensors.ts";
import { applyGuidance, isGuided } from "../solvers/guidance.ts";
import { createSolver } from "../solvers/mod.ts";
import { gaussianNoise } from "../solvers/noise.ts";
import type { AbortLike, BlockPolicy, EngineOptions } from "../unet/engine.ts";
import { type Frontier, loadFrontiers } from "../planning/frontier.ts";
import { type PlanningModel, resolveAutoCache, scheduleInfo } from "../planning/planner.ts";
import { UNetEngine } from "../unet/engine.ts";
import type {
  Backend,
  GenerateOptions,
  GenerateRequest,
  GenerateResult,
  SolverName,
} from "./types.ts";

/** Options of {@link Pipeline.load}. */
export interface PipelineOptions {
  backend?: BackendChoice;
  /** Folder of this model's shipped schedules (default `schedules/<model name>`). */
  schedulesDir?: string;
  log?: (line: string) => void;
  /** How the UNet engine runs (static shapes, weights, graph capture; defaults are the fast path). */
  engine?: Omit<EngineOptions, "backend" | "log">;
}

/** Text embeddings of a batch: `[uncond × B, cond × B]` (or cond only without guidance). */
export interface Embeddings {
  tensor: Tensor;
  batch: number;
  guided: boolean;
}

/** The initial noise of a batch: image i is `gaussianNoise(seeds[i], length) · sigma`. */
export function initialLatents(seeds: number[], length: number, sigma: number): Float32Array {
  const x = new Float32Array(seeds.length * length);
  seeds.forEach((seed, i) => {
    const noise = gaussianNoise(seed, length);
    for (let k = 0; k < length; k++) x[i * length + k] = noise[k] * sigma;
  });
  return x;
}

/** The shape of a plan as the memory estimate sees it. */
function planShape(
  model: ModelFolder,
  tokenizer: Tokenizer,
  latent: LatentShape,
  images: number,
  guided: boolean,
) {
  return {
    images,
    guided,
    latent,
    sequence: tokenizer.maxLength,
    latentChannels: model.latentChannels,
  };
}

function elapsed(t0: number): number {
  return performance.now() - t0;
}

/** A loaded model, ready to make images. */
export class Pipeline {
  private gpuScaleShift: Promise<GpuScaleShift> | undefined;
  private estimates = new Map<string, MemoryEstimate>();

  private constructor(
    readonly model: ModelFolder,
    readonly backend: Backend,
    readonly tokenizer: Tokenizer,
    readonly textEncoder: Session,
    readonly unet: UNetEngine,
    readonly vaeDecoder: Session | null,
    readonly schedules: ScheduleRegistry,
    /** The model's graphs without weights, for memory estimates (lib/model/memory.ts). */
    readonly memory: MemoryProfile,
    /** Measured speed–quality frontiers of this model, one per solver at most. */
    readonly frontiers: Frontier[],
  ) {}

  /**
   * Loads a model folder on the chosen backend. The folder is checked first (readModelFolder:
   * a bad folder throws a ModelFolderError before any session exists), then the memory one
   * guided image at the native size needs on the backend (PlanMemoryError, with the way out,
   * when it does not fit); a failure while creating sessions releases the ones already made.
   */
  static async load(modelDir: string, opts: PipelineOptions = {}): Promise<Pipeline> {
    const log = opts.log ?? console.log;
    const model = await readModelFolder(modelDir);
    const { backend } = await resolveBackend(opts.backend ?? "auto", log);
    const schedulesDir = opts.schedulesDir ??
      new URL(`../../schedules/${model.name}`, import.meta.url).pathname;
    const schedules = await ScheduleRegistry.load(schedulesDir, model.name);
    const frontiers = await loadFrontiers(schedulesDir, {
      model: model.name,
      segments: model.split.segments.map((s) => ({ name: s.name, block: s.kind === "block" })),
      schedules: schedules.schedules,
    });
    const memory = await readMemoryProfile(model);
    const { width, height } = model.sizes.native;
    const native = latentShapeOf(model.sizes, model.sizes.native);
    checkMemory(
      estimateMemory(memory, planShape(model, model.tokenizer, native, 1, true), backend),
      `${model.name} (one guided ${width}x${height} image)`,
      model.split.precision,
    );
    const made: { release(): Promise<void> }[] = [];
    try {
      const textEncoder = await createSession(await Deno.readFile(model.textEncoderFile), backend);
      made.push(textEncoder);
      const unet = await UNetEngine.load(model.unetDir, { ...opts.engine, backend, log });
      made.push(unet);
      const vaeDecoder = model.vaeDecoderFile
        ? await createSession(await Deno.readFile(model.vaeDecoderFile), backend)
        : null;
      return new Pipeline(
        model,
        backend,
        model.tokenizer,
        textEncoder,
        unet,
        vaeDecoder,
        schedules,
        memory,
        frontiers,
      );
    } catch (e) {
      for (const s of made) await s.release();
      throw e;
    }
  }

  /** Latent values per image (C × H × W) at the native size. */
  get latentLength(): number {
    const { height, width } = this.nativeLatent;
    return this.model.latentChannels * height * width;
  }

  /** The latent shape of the model's native size. */
  get nativeLatent(): LatentShape {
    return latentShapeOf(this.model.sizes, this.model.sizes.native);
  }

  /**
   * The memory `images` images at `latent` (with or without guidance) need on this pipeline's
   * backend (lib/model/memory.ts; cached per shape).
   */
  estimateMemory(latent: LatentShape, images: number, guided: boolean): MemoryEstimate {
    const key = `${latent.height}x${latent.width}x${images}${guided ? "g" : ""}`;
    let e = this.estimates.get(key);
    if (!e) {
      const plan = planShape(this.model, this.tokenizer, latent, images, guided);
      e = estimateMemory(this.memory, plan, this.backend);
      this.estimates.set(key, e);
    }
    return e;
  }

  /**
   * The latent shape of a request's size (default native); throws UnsupportedSizeError naming
   * the sizes the model serves.
   */
  latentShape(size?: Partial<ImageSize>): LatentShape {
    const native = this.model.sizes.native;
    return latentShapeOf(this.model.sizes, {
      width: size?.width ?? native.width,
      height: size?.height ?? native.height,
    });
  }

  /** Encodes prompts (and their negatives for guidance) in one text-encoder run. */
  async encodePrompts(
    prompts: string[],
    negatives: string[],
    guided: boolean,
  ): Promise<Embeddings> {
    const texts = guided ? [...negatives, ...prompts] : prompts;
    const L = this.tokenizer.maxLength;
    const ids = new Int32Array(texts.length * L);
    texts.forEach((t, i) => ids.set(this.tokenizer.encode(t), i * L));
    const name = this.textEncoder.inputNames[0];
    const input = numericTensor(Array.from(ids), [texts.length, L], this.model.inputIdsDType);
    const out = await serialized(() => this.textEncoder.run({ [name]: input }));
    const key = this.model.textEncoderOutput;
    const hidden = out[key];
    for (const [k, v] of Object.entries(out)) if (k !== key) v.dispose();
    return { tensor: hidden, batch: prompts.length, guided };
  }

  /**
   * One guided UNet evaluation on `sample` (B latents of `latent` shape, default native) at
   * `timestep`; returns the guided model output (B latents).
   */
  async evalUNet(
    sample: Float32Array,
    timestep: number,
    emb: Embeddings,
    policy: BlockPolicy | undefined,
    guidanceScale: number,
    signal?: AbortLike,
    latent: LatentShape = this.nativeLatent,
  ): Promise<Float32Array> {
    const m = this.model;
    const input = emb.guided ? new Float32Array(sample.length * 2) : sample;
    if (emb.guided) {
      input.set(sample, 0);
      input.set(sample, sample.length);
    }
    const n = emb.guided ? emb.batch * 2 : emb.batch;
    const feeds: Record<string, Tensor> = {
      sample: float32Tensor(input, [n, m.latentChannels, latent.height, latent.width]),
      timestep: timestepTensor(m.unetInputs.timestep, timestep, n),
      encoder_hidden_states: emb.tensor,
    };
    const out = await this.unet.run(feeds, { policy, signal });
    const key = this.unet.manifest.outputs[0].name;
    const data = await toFloat32(out[key]);
    out[key].dispose();
    return emb.guided ? applyGuidance(data, guidanceScale) : data;
  }

  /** Decodes B latents (of `latent` shape, default native) to 8-bit RGBA images. */
  async decode(
    latents: Float32Array,
    batch: number,
    latent: LatentShape = this.nativeLatent,
  ): Promise<RgbaImage[]> {
    const m = this.model;
    let pixels: Float32Array;
    const f = m.sizes.vaeScaleFactor;
    const [width, height] = [latent.width * f, latent.height * f];
    if (this.vaeDecoder) {
      const scaled = latents.map((v) => v / m.vaeScalingFactor);
      const name = this.vaeDecoder.inputNames[0];
      const vae = this.vaeDecoder;
      const z = float32Tensor(scaled, [batch, m.latentChannels, latent.height, latent.width]);
      const out = await serialized(() => vae.run({ [name]: z }));
      const t = out[this.vaeDecoder.outputNames[0]];
      pixels = await toFloat32(t);
      t.dispose();
    } else {
      pixels = latents;
    }
    return Array.from({ length: batch }, (_, i) => nchwToRgba(pixels, i, width, height));
  }

  /** What the planner knows of this model: its shipped schedules and measured frontiers. */
  get planning(): PlanningModel {
    return { schedules: this.schedules.schedules.map(scheduleInfo), frontiers: this.frontiers };
  }

  /**
   * Resolves a request's cache field to a schedule for this model (null = no caching); `auto` is
   * the planner's choice at these steps without a deadline ({@link resolveAutoCache}).
   */
  resolveSchedule(cache: string, solver: SolverName, steps: number): Promise<Schedule | null> {
    const name = cache === "auto" ? resolveAutoCache(this.planning, { solver, steps }) : cache;
    if (name === null) return Promise.resolve(null);
    return this.schedules.resolve(name, { solver, steps, blocks: this.unet.blocks });
  }

  /** Makes one image. */
  async generate(req: GenerateRequest, opts: GenerateOptions = {}): Promise<GenerateResult> {
    return (await this.generateBatch([req], opts))[0];
  }

  /**
   * Makes a batch of images in one denoising loop. All requests must share steps, solver,
   * guidance, cache and size; each keeps its own prompt, negative prompt and seed. A size the
   * model does not serve throws UnsupportedSizeError before anything runs.
   */
  async generateBatch(
    reqs: GenerateRequest[],
    opts: GenerateOptions = {},
  ): Promise<GenerateResult[]> {
    const t0 = performance.now();
    const first = reqs[0];
    for (const r of reqs) {
      if (
        r.steps !== first.steps || r.solver !== first.solver ||
        r.guidanceScale !== first.guidanceScale || r.cache !== first.cache ||
        r.width !== first.width || r.height !== first.height
      ) throw new Error("generateBatch: requests must share steps, solver, guidance, cache, size");
    }
    const latent = this.latentShape(first);
    const guided = isGuided(first.guidanceScale);
    const f = this.model.sizes.vaeScaleFactor;
    checkMemory(
      this.estimateMemory(latent, reqs.length, guided),
      `${reqs.length} ${guided ? "guided " : ""}${latent.width * f}x${latent.height * f} image(s)`,
      this.model.split.precision,
    );
    const { signal, onProgress } = opts;
    const schedule = await this.resolveSchedule(first.cache, first.solver, first.steps);
    // no schedule, no cache: an uncached run stores no residuals
    const cache = schedule
      ? new BlockCache(schedule, this.unet.blocks, true, await this.scaleShiftApply())
      : undefined;
    const B = reqs.length;
    let emb: Embeddings | undefined;
    try {
      signal?.throwIfAborted();
      const tText = performance.now();
      emb = await this.encodePrompts(
        reqs.map((r) => r.prompt),
        reqs.map((r) => r.negativePrompt),
        guided,
      );
      const textEncoderMs = elapsed(tText);
      const solver = createSolver(first.solver, this.model.scheduler, first.steps);
      const length = this.model.latentChannels * latent.height * latent.width;
      let x = initialLatents(reqs.map((r) => r.seed), length, solver.initNoiseSigma);
      const tUnet = performance.now();
      const before = this.unet.counters();
      for (let i = 0; i < first.steps; i++) {
        signal?.throwIfAborted();
        await cache?.beginStep(i);
        const xin = solver.scaleModelInput(x, i);
        const t = solver.timesteps[i];
        const out = await this.evalUNet(xin, t, emb, cache, first.guidanceScale, signal, latent);
        const step = solver.step(out, i, x);
        x = step.prevSample;
        if (onProgress) {
          const every = opts.previewEvery ?? 0;
          // previews come before the final step, whose image is the result itself
          const preview = every > 0 && (i + 1) % every === 0 && i + 1 < first.steps
            ? this.preview(step.predOriginal, latent)
            : undefined;
          onProgress({ step: i + 1, steps: first.steps, elapsedMs: elapsed(t0), preview });
        }
      }
      const unetMs = elapsed(tUnet);
      const after = this.unet.counters();
      const profile = {
        batch: guided ? 2 * B : B,
        width: latent.width * f,
        height: latent.height * f,
        runs: after.runs.map((r, k) => r - before.runs[k]),
        ms: after.ms.map((m, k) => m - before.ms[k]),
      };
      signal?.throwIfAborted();
      const tDec = performance.now();
      const images = await this.decode(x, B, latent);
      const decoderMs = elapsed(tDec);
      const totalMs = elapsed(t0);
      return reqs.map((r, i) => ({
        png: encodePng(images[i]),
        image: images[i],
        width: images[i].width,
        height: images[i].height,
        seed: r.seed,
        steps: r.steps,
        solver: r.solver,
        schedule: schedule?.name ?? null,
        backend: this.backend,
        timings: { textEncoderMs, unetMs, decoderMs, totalMs },
        skippedFraction: cache?.skippedFraction ?? 0,
        cacheBytes: cache?.stats.peakBytes ?? 0,
        prompt: analyzePrompt(this.tokenizer, r.prompt).report,
        negativePrompt: analyzePrompt(this.tokenizer, r.negativePrompt).report,
        profile,
      }));
    } finally {
      emb?.tensor.dispose();
      cache?.dispose();
    }
  }

  /** The block cache's scale-shift: on the GPU for GPU values on WebGPU, else on the CPU. */
  private async scaleShiftApply(): Promise<ScaleShiftApply> {
    const gpu = this.unet.gpuContext();
    if (!gpu) return scaleShiftOnCpu;
    this.gpuScaleShift ??= gpu.then((c) => new GpuScaleShift(c));
    const onGpu = await this.gpuScaleShift;
    return (stored, ss, previous) =>
      stored.location === "gpu-buffer" && (!previous || previous.location === "gpu-buffer")
        ? onGpu.apply(stored, ss, previous)
        : scaleShiftOnCpu(stored, ss, previous);
  }

  /** A preview PNG of the first image's predicted clean latent (of `latent` shape). */
  preview(predOriginal: Float32Array, latent: LatentShape = this.nativeLatent): Uint8Array {
    const m = this.model;
    if (m.preview && latent.width === latent.height) {
      const side = latent.width * m.sizes.vaeScaleFactor;
      return previewPng(predOriginal, 0, m.latentChannels, latent.width, side, m.preview);
    }
    return encodePng(nchwToRgba(predOriginal, 0, latent.width, latent.height));
  }

  /** Releases every session. */
  async release(): Promise<void> {
    await this.textEncoder.release();
    await this.vaeDecoder?.release();
    await this.unet.release();
  }
}

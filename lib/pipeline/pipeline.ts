/**
 * Prompt → image: tokenizer, text encoder, the block-split UNet under a per-request block cache,
 * a solver with classifier-free guidance, the VAE decoder and PNG. Runs on wasm or WebGPU; the
 * sessions are created once per process and shared by every request, the cache state is not.
 *
 * @module
 */
import { BlockCache } from "../cache/policy.ts";
import { ScheduleRegistry } from "../cache/registry.ts";
import type { Schedule } from "../cache/schedule.ts";
import { encodePng, nchwToRgba, type RgbaImage } from "../image/png.ts";
import { previewPng } from "../image/preview.ts";
import { type ModelFolder, readModelFolder } from "../model/folder.ts";
import { loadTokenizer, type Tokenizer } from "../model/tokenizer.ts";
import { type BackendChoice, resolveBackend } from "../runtime/backend.ts";
import { createSession, serialized } from "../runtime/session.ts";
import type { Session, Tensor } from "../runtime/ort.ts";
import { float32Tensor, numericTensor, toFloat32 } from "../runtime/tensors.ts";
import { applyGuidance } from "../solvers/guidance.ts";
import { createSolver } from "../solvers/mod.ts";
import { gaussianNoise } from "../solvers/noise.ts";
import type { BlockPolicy } from "../unet/engine.ts";
import { type Frontier, loadFrontiers } from "../planning/frontier.ts";
import {
  type PlanningModel,
  resolveAutoCache,
  type ScheduleInfo,
  scheduleInfo,
} from "../planning/planner.ts";
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

function elapsed(t0: number): number {
  return performance.now() - t0;
}

/** A loaded model, ready to make images. */
export class Pipeline {
  private constructor(
    readonly model: ModelFolder,
    readonly backend: Backend,
    readonly tokenizer: Tokenizer,
    readonly textEncoder: Session,
    readonly unet: UNetEngine,
    readonly vaeDecoder: Session | null,
    readonly schedules: ScheduleRegistry,
    /** Measured speed–quality frontiers of this model, one per solver at most. */
    readonly frontiers: Frontier[],
  ) {}

  /** Loads a model folder (checking the UNet split manifest's sha256s) on the chosen backend. */
  static async load(modelDir: string, opts: PipelineOptions = {}): Promise<Pipeline> {
    const log = opts.log ?? console.log;
    const model = await readModelFolder(modelDir);
    const { backend } = await resolveBackend(opts.backend ?? "auto", log);
    const tokenizer = await loadTokenizer(model.tokenizerDir);
    const textEncoder = await createSession(await Deno.readFile(model.textEncoderFile), backend);
    const unet = await UNetEngine.load(model.unetDir, { backend, log });
    const vaeDecoder = model.vaeDecoderFile
      ? await createSession(await Deno.readFile(model.vaeDecoderFile), backend)
      : null;
    const schedulesDir = opts.schedulesDir ??
      new URL(`../../schedules/${model.name}`, import.meta.url).pathname;
    let schedules: ScheduleRegistry, frontiers: Frontier[];
    try {
      schedules = await ScheduleRegistry.load(schedulesDir, model.name);
      frontiers = await loadFrontiers(schedulesDir, {
        model: model.name,
        segments: unet.manifest.segments.map((s) => ({ name: s.name, block: s.kind === "block" })),
        schedules: schedules.schedules,
      });
    } catch (e) {
      await textEncoder.release();
      await vaeDecoder?.release();
      await unet.release();
      throw e;
    }
    return new Pipeline(
      model,
      backend,
      tokenizer,
      textEncoder,
      unet,
      vaeDecoder,
      schedules,
      frontiers,
    );
  }

  /** Latent values per image (C × H × W). */
  get latentLength(): number {
    const m = this.model;
    return m.latentChannels * m.latentSize * m.latentSize;
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
    const meta = this.textEncoder.inputMetadata?.[0] as { type?: string } | undefined;
    const input = numericTensor(Array.from(ids), [texts.length, L], meta?.type ?? "int32");
    const out = await serialized(() => this.textEncoder.run({ [name]: input }));
    const hidden = out[this.textEncoder.outputNames[0]];
    for (const [k, v] of Object.entries(out)) {
      if (k !== this.textEncoder.outputNames[0]) v.dispose();
    }
    return { tensor: hidden, batch: prompts.length, guided };
  }

  /**
   * One guided UNet evaluation on `sample` (B latents) at `timestep`; returns the guided model
   * output (B latents).
   */
  async evalUNet(
    sample: Float32Array,
    timestep: number,
    emb: Embeddings,
    policy: BlockPolicy | undefined,
    guidanceScale: number,
    signal?: AbortSignal,
  ): Promise<Float32Array> {
    const m = this.model;
    const input = emb.guided ? new Float32Array(sample.length * 2) : sample;
    if (emb.guided) {
      input.set(sample, 0);
      input.set(sample, sample.length);
    }
    const n = emb.guided ? emb.batch * 2 : emb.batch;
    const feeds: Record<string, Tensor> = {
      sample: float32Tensor(input, [n, m.latentChannels, m.latentSize, m.latentSize]),
      timestep: numericTensor([timestep], [1], this.unet.inputDType("timestep")),
      encoder_hidden_states: emb.tensor,
    };
    const out = await this.unet.run(feeds, { policy, signal });
    const key = this.unet.manifest.outputs[0].name;
    const data = await toFloat32(out[key]);
    out[key].dispose();
    return emb.guided ? applyGuidance(data, guidanceScale) : data;
  }

  /** Decodes B latents to 8-bit RGBA images. */
  async decode(latents: Float32Array, batch: number): Promise<RgbaImage[]> {
    const m = this.model;
    let pixels: Float32Array;
    const size = this.vaeDecoder ? m.imageSize : m.latentSize;
    if (this.vaeDecoder) {
      const scaled = latents.map((v) => v / m.vaeScalingFactor);
      const name = this.vaeDecoder.inputNames[0];
      const vae = this.vaeDecoder;
      const latent = float32Tensor(scaled, [batch, m.latentChannels, m.latentSize, m.latentSize]);
      const out = await serialized(() => vae.run({ [name]: latent }));
      const t = out[this.vaeDecoder.outputNames[0]];
      pixels = await toFloat32(t);
      t.dispose();
    } else {
      pixels = latents;
    }
    return Array.from({ length: batch }, (_, i) => nchwToRgba(pixels, i, size, size));
  }

  /** What the planner knows of this model: its shipped schedules and measured frontiers. */
  get planning(): PlanningModel & { schedules: ScheduleInfo[]; frontiers: Frontier[] } {
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
   * guidance and cache; each keeps its own prompt, negative prompt and seed.
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
        r.guidanceScale !== first.guidanceScale || r.cache !== first.cache
      ) throw new Error("generateBatch: requests must share steps, solver, guidance and cache");
    }
    const { signal, onProgress } = opts;
    const schedule = await this.resolveSchedule(first.cache, first.solver, first.steps);
    // no schedule, no cache: an uncached run stores no residuals
    const cache = schedule ? new BlockCache(schedule, this.unet.blocks) : undefined;
    const B = reqs.length;
    const guided = first.guidanceScale !== 1;
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
      let x = initialLatents(reqs.map((r) => r.seed), this.latentLength, solver.initNoiseSigma);
      const tUnet = performance.now();
      for (let i = 0; i < first.steps; i++) {
        signal?.throwIfAborted();
        await cache?.beginStep(i);
        const xin = solver.scaleModelInput(x, i);
        const t = solver.timesteps[i];
        const out = await this.evalUNet(xin, t, emb, cache, first.guidanceScale, signal);
        const step = solver.step(out, i, x);
        x = step.prevSample;
        if (onProgress) {
          const every = opts.previewEvery ?? 0;
          const preview = every > 0 && ((i + 1) % every === 0 || i + 1 === first.steps)
            ? this.preview(step.predOriginal)
            : undefined;
          onProgress({ step: i + 1, steps: first.steps, elapsedMs: elapsed(t0), preview });
        }
      }
      const unetMs = elapsed(tUnet);
      signal?.throwIfAborted();
      const tDec = performance.now();
      const images = await this.decode(x, B);
      const decoderMs = elapsed(tDec);
      const totalMs = elapsed(t0);
      const size = images[0].width;
      return reqs.map((r, i) => ({
        png: encodePng(images[i]),
        image: images[i],
        width: size,
        height: size,
        seed: r.seed,
        steps: r.steps,
        solver: r.solver,
        schedule: schedule?.name ?? null,
        backend: this.backend,
        timings: { textEncoderMs, unetMs, decoderMs, totalMs },
        skippedFraction: cache?.skippedFraction ?? 0,
        cacheBytes: cache?.stats.peakBytes ?? 0,
      }));
    } finally {
      emb?.tensor.dispose();
      cache?.dispose();
    }
  }

  /** A preview PNG of the first image's predicted clean latent. */
  preview(predOriginal: Float32Array): Uint8Array {
    const m = this.model;
    if (m.preview) {
      return previewPng(predOriginal, 0, m.latentChannels, m.latentSize, m.imageSize, m.preview);
    }
    return encodePng(nchwToRgba(predOriginal, 0, m.latentSize, m.latentSize));
  }

  /** Releases every session. */
  async release(): Promise<void> {
    await this.textEncoder.release();
    await this.vaeDecoder?.release();
    await this.unet.release();
  }
}

/**
 * One session per segment for one set of input sizes (e.g. `batch` = 2), and on WebGPU the GPU
 * buffers that keep a UNet evaluation on the GPU from its inputs to its output.
 *
 * - **Static shapes**: every symbolic dimension of the segments is fixed with onnxruntime's
 *   `freeDimensionOverrides`, so shape arithmetic (`Shape`/`Gather`/`Unsqueeze`/`Concat` chains) is
 *   folded when the session is created instead of running on every evaluation. A session set then
 *   serves exactly those sizes; `UNetEngine` keeps one set per size.
 * - **GPU-resident I/O** (WebGPU): the UNet inputs are uploaded once per evaluation into buffers
 *   this set owns (a CPU input fed again as the same tensor object is not uploaded again: the text
 *   embeddings of a generation cross the bus once), segments pass GPU tensors to each other, and
 *   only the UNet's outputs are read back.
 * - **Graph capture** (WebGPU): each segment session records its GPU commands and replays them
 *   (`enableGraphCapture`). A captured session reads the input buffers it was given on its first
 *   run, forever, and writes its outputs into the same buffers on every replay. So every input of a
 *   captured session has a *home* buffer (the set's input buffer, or the output buffer of the
 *   captured segment that produces it); a value that is elsewhere (a cached block output, an
 *   uncaptured segment's output) is copied into its home first. Where onnxruntime refuses to
 *   capture a segment, that segment runs uncaptured, and the set logs it.
 *
 * @module
 */

import type { Backend } from "../runtime/backend.ts";
import { type GpuContext, tensorByteLength } from "../runtime/gpu.ts";
import { ort, type Session, type Tensor } from "../runtime/ort.ts";
import { openSession } from "../runtime/session.ts";
import { zeros } from "../runtime/tensors.ts";
import {
  type Segment,
  segmentProducers,
  type SplitManifest,
  type TensorSpec,
} from "./split_manifest.ts";

/** A segment's model bytes as the sessions get them (checked and, if asked, dequantized). */
export interface SegmentSource {
  model: Uint8Array;
  external: { path: string; data: Uint8Array }[];
}

/** How to build a {@link ShapeSessions}. */
export interface ShapeSessionsOptions {
  backend: Backend;
  /** Values of the symbolic dimensions (`{ batch: 2 }`); undefined keeps them symbolic. */
  dims?: Record<string, number>;
  /** WebGPU: capture each segment's commands (needs `dims`). */
  capture: boolean;
  /**
   * WebGPU: the device's pool and transfer queue, asked for once the sessions exist (onnxruntime
   * creates the device with the first WebGPU session). Required on WebGPU.
   */
  gpu?: () => Promise<GpuContext>;
  log: (line: string) => void;
  /** Thrown for a session whose inputs/outputs do not match the manifest. */
  check: (seg: Segment, session: Session) => void;
}

/** The value of every symbolic dimension in `feeds` per the manifest's inputs (throws on a clash). */
export function symbolicDims(
  inputs: TensorSpec[],
  feeds: Record<string, { dims: readonly number[] }>,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const spec of inputs) {
    const dims = feeds[spec.name].dims;
    if (spec.rankUnknown) continue;
    if (dims.length !== spec.shape.length) {
      throw new Error(
        `UNet input ${spec.name} has dims [${dims}], the manifest says [${spec.shape}]`,
      );
    }
    spec.shape.forEach((d, k) => {
      if (typeof d === "number") {
        if (dims[k] !== d) {
          throw new Error(
            `UNet input ${spec.name} has dims [${dims}], the manifest says [${spec.shape}]`,
          );
        }
      } else if (d !== "?") {
        if (out[d] !== undefined && out[d] !== dims[k]) {
          throw new Error(`UNet inputs disagree on dimension ${d}: ${out[d]} and ${dims[k]}`);
        }
        out[d] = dims[k];
      }
    });
  }
  return out;
}

/** A captured session wrote its outputs to other buffers on its second run. */
export class UnstableCaptureError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UnstableCaptureError";
  }
}

/** A stable text key of symbolic dimension values (`batch=2`), `dynamic` for none. */
export function shapeKey(dims: Record<string, number> | undefined): string {
  if (!dims) return "dynamic";
  const keys = Object.keys(dims).sort();
  return keys.length ? keys.map((k) => `${k}=${dims[k]}`).join(",") : "static";
}

/**
 * One session per segment for one set of input sizes, with its GPU buffers on WebGPU. Every method
 * that creates or runs sessions must be called inside `serialized` (one evaluation at a time).
 */
export class ShapeSessions {
  /** Input tensors the set owns on the GPU (WebGPU), by UNet input name. */
  private inputs = new Map<string, Tensor>();
  /** The feed last uploaded into each input (skipped when the same object comes again). */
  private uploaded = new Map<string, Tensor>();
  /** Home buffers of the inputs of captured sessions, by tensor name. */
  private homes = new Map<string, Tensor>();
  /** Homes already holding this evaluation's value. */
  private filled = new Set<string>();
  /** Buffers this set allocated for homes (given back on release). */
  private ownHomes: Tensor[] = [];

  private constructor(
    readonly manifest: SplitManifest,
    /** Values of the symbolic dimensions these sessions were made for (undefined: symbolic). */
    readonly dims: Record<string, number> | undefined,
    readonly sessions: Session[],
    /** Whether segment i's session replays captured commands. */
    readonly captured: boolean[],
    private readonly gpu: GpuContext | undefined,
  ) {}

  /** {@link shapeKey} of the set's sizes. */
  get key(): string {
    return shapeKey(this.dims);
  }

  /**
   * Creates the sessions (a segment whose capture onnxruntime refuses is created uncaptured) and,
   * on WebGPU, runs every segment twice on zeros so captured sessions record their commands and
   * bind their input buffers now rather than during a request. Should a captured segment's output
   * buffers move between replays, the set is made again without capture (logged).
   */
  static async create(
    manifest: SplitManifest,
    source: (i: number) => Promise<SegmentSource>,
    opts: ShapeSessionsOptions,
  ): Promise<ShapeSessions> {
    const webgpu = opts.backend === "webgpu";
    if (webgpu && !opts.gpu) throw new Error("a WebGPU session set needs a GPU context");
    // capture needs every input size known: the homes are bound on zeros of those sizes
    const sized = opts.dims !== undefined &&
      manifest.inputs.every((i) =>
        !i.rankUnknown && i.shape.every((d) => typeof d === "number" || opts.dims![d] !== undefined)
      );
    const capture = webgpu && opts.capture && sized;
    const key = shapeKey(opts.dims);
    const open = ({ model, external }: SegmentSource, withCapture: boolean) =>
      openSession(model, opts.backend, {
        preferredOutputLocation: webgpu ? "gpu-buffer" : undefined,
        externalData: external,
        freeDimensionOverrides: opts.dims,
        enableGraphCapture: withCapture,
      });
    const sessions: Session[] = [];
    const captured: boolean[] = [];
    try {
      for (const [i, seg] of manifest.segments.entries()) {
        const src = await source(i);
        let session: Session;
        let isCaptured = capture;
        try {
          session = await open(src, capture);
        } catch (e) {
          if (!capture) throw e;
          opts.log(
            `segment ${seg.name} (${key}): graph capture refused (${
              (e as Error).message.split("\n")[0]
            }); it runs uncaptured`,
          );
          session = await open(src, false);
          isCaptured = false;
        }
        sessions.push(session);
        captured.push(isCaptured);
        opts.check(seg, session);
      }
      // An uncaptured segment runs some nodes on the CPU; an integer tensor (a shape value) it reads
      // from a captured segment comes out of the GPU wrong (measured: a garbage Reshape dimension),
      // so its producer runs uncaptured too, until no such pair is left.
      const producer = segmentProducers(manifest);
      for (let changed = true; changed;) {
        changed = false;
        for (const [j, seg] of manifest.segments.entries()) {
          if (captured[j]) continue;
          for (const t of seg.inputs) {
            const p = producer.get(t.name);
            if (p === undefined || !captured[p] || t.dtype === "float32" || t.dtype === "float16") {
              continue;
            }
            opts.log(
              `segment ${manifest.segments[p].name} (${key}): runs uncaptured (uncaptured ` +
                `${seg.name} reads its ${t.dtype} output ${t.name})`,
            );
            const plain = await open(await source(p), false);
            await sessions[p].release();
            sessions[p] = plain;
            captured[p] = false;
            changed = true;
          }
        }
      }
    } catch (e) {
      for (const s of sessions) await s.release();
      throw e;
    }
    let set: ShapeSessions | undefined;
    try {
      set = new ShapeSessions(
        manifest,
        opts.dims,
        sessions,
        captured,
        webgpu ? await opts.gpu!() : undefined,
      );
      if (webgpu) await set.bind();
      return set;
    } catch (e) {
      if (set) await set.release();
      else for (const s of sessions) await s.release();
      if (!(e instanceof UnstableCaptureError)) throw e;
      opts.log(`session set ${key}: ${e.message} between replays; graph capture off`);
      return await ShapeSessions.create(manifest, source, { ...opts, capture: false });
    }
  }

  /**
   * WebGPU: the set's own input tensors holding `feeds` (uploaded or copied once per evaluation;
   * a CPU feed that is the same object as the last one uploaded is not uploaded again).
   * Starts an evaluation (homes are refilled as values arrive).
   */
  stage(feeds: Record<string, Tensor>): Record<string, Tensor> {
    const gpu = this.gpu!;
    this.filled.clear();
    const out: Record<string, Tensor> = {};
    for (const spec of this.manifest.inputs) {
      const feed = feeds[spec.name];
      let own = this.inputs.get(spec.name);
      if (own && !sameShape(own.dims, feed.dims)) {
        // symbolic set: a new size (captured sets never see one)
        own.dispose();
        this.inputs.delete(spec.name);
        this.uploaded.delete(spec.name);
        own = undefined;
      }
      if (!own) {
        own = gpu.pool.tensor(feed.type, feed.dims);
        this.inputs.set(spec.name, own);
      }
      const onGpu = feed.location === "gpu-buffer";
      if (onGpu || this.uploaded.get(spec.name) !== feed) this.put(feed, own);
      if (onGpu) this.uploaded.delete(spec.name);
      else this.uploaded.set(spec.name, feed);
      out[spec.name] = own;
    }
    return out;
  }

  /**
   * The tensor to give segment `i` for its input `name` when `value` holds it: `value` itself for
   * an uncaptured session; for a captured one the input's home buffer, after copying `value`
   * there when it is not already (a cached block output, an uncaptured segment's output).
   */
  feed(i: number, name: string, value: Tensor): Tensor {
    if (!this.captured[i]) return value;
    const home = this.homes.get(name);
    if (!home) throw new Error(`segment ${i}: input ${name} has no home buffer (not bound)`);
    if (value.location === "gpu-buffer" && value.gpuBuffer === home.gpuBuffer) return home;
    if (!this.filled.has(name)) {
      this.put(value, home);
      this.filled.add(name);
    }
    return home;
  }

  /** Copies (GPU) or writes (CPU) `value` into `dst`. */
  private put(value: Tensor, dst: Tensor): void {
    const t = this.gpu!.transfers;
    if (value.location === "gpu-buffer") {
      t.copy(
        value.gpuBuffer as GPUBuffer,
        dst.gpuBuffer as GPUBuffer,
        tensorByteLength(value.type, value.dims),
      );
    } else {
      t.write(dst.gpuBuffer as GPUBuffer, value);
    }
  }

  /**
   * A copy of a GPU `value` in a buffer of the engine's pool (disposing it gives the buffer back):
   * for values that must outlive the next replay (the block cache's entries).
   */
  keep(value: Tensor): Tensor {
    const copy = this.gpu!.pool.tensor(value.type, value.dims);
    this.put(value, copy);
    return copy;
  }

  /** Runs segment `i` (pending copies are submitted first). */
  run(i: number, input: Record<string, Tensor>): Promise<Record<string, Tensor>> {
    this.gpu?.transfers.flush();
    return this.sessions[i].run(input);
  }

  /**
   * Runs every segment twice on zeroed inputs, in order (which also compiles the shaders before a
   * request needs them), establishing the home of each captured
   * session's inputs: the set's input buffers, a captured producer's output buffer (onnxruntime
   * writes a captured session's outputs into the same buffers on every replay: checked here, and
   * {@link UnstableCaptureError} is thrown where it does not), or a buffer of the set's own for
   * values an uncaptured session produces.
   */
  private async bind(): Promise<void> {
    const gpu = this.gpu!;
    const producer = segmentProducers(this.manifest);
    const blank: Record<string, Tensor> = {};
    for (const spec of this.manifest.inputs) {
      const dims = spec.shape.map((d) => typeof d === "number" ? d : this.dims?.[d] ?? Number.NaN);
      // sizes not all known (symbolic set; nothing is captured then): made on the first request
      if (spec.rankUnknown || dims.some((d) => !Number.isInteger(d))) return;
      blank[spec.name] = zeros(spec.dtype, dims);
    }
    const first = new Map<string, unknown>();
    for (let pass = 0; pass < 2; pass++) {
      const held = new Map<string, Tensor>(Object.entries(this.stage(blank)));
      const outputs: Tensor[] = [];
      try {
        for (const [i, seg] of this.manifest.segments.entries()) {
          const input: Record<string, Tensor> = {};
          for (const spec of seg.inputs) {
            const value = held.get(spec.name)!;
            if (this.captured[i] && !this.homes.has(spec.name)) {
              const p = producer.get(spec.name);
              const stable = p === undefined ? this.inputs.has(spec.name) : this.captured[p];
              let home = wrap(value);
              if (!stable) this.ownHomes.push(home = gpu.pool.tensor(value.type, value.dims));
              this.homes.set(spec.name, home);
            }
            input[spec.name] = this.feed(i, spec.name, value);
          }
          const out = await this.run(i, input);
          for (const o of seg.outputs) {
            const t = out[o.name];
            outputs.push(t);
            held.set(o.name, t);
            if (pass === 0) first.set(o.name, t.gpuBuffer);
            else if (this.captured[i] && first.get(o.name) !== t.gpuBuffer) {
              throw new UnstableCaptureError(`segment ${seg.name}: output ${o.name} moved`);
            }
          }
        }
        gpu.transfers.flush();
      } finally {
        for (const t of outputs) t.dispose();
      }
    }
    this.uploaded.clear();
  }

  /** Releases the sessions and the set's buffers. */
  async release(): Promise<void> {
    for (const s of this.sessions) await s.release();
    for (const t of [...this.inputs.values(), ...this.ownHomes]) t.dispose();
    this.inputs.clear();
    this.ownHomes = [];
    this.homes.clear();
    this.uploaded.clear();
  }
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** A tensor over the same GPU buffer that does not own it. */
function wrap(t: Tensor): Tensor {
  return ort.Tensor.fromGpuBuffer(t.gpuBuffer, {
    dataType: t.type as ort.Tensor.GpuBufferDataTypes,
    dims: t.dims,
  });
}

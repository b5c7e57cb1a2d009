/**
 * The block-split UNet engine: loads a split folder (checking every file's sha256 against
 * `split.json`), creates sessions for its segments, and runs one UNet evaluation as the segments in
 * order, holding tensors by name and disposing each as soon as no later segment needs it.
 *
 * Before each cacheable block it asks a {@link BlockPolicy}: a tensor from `reuse` stands for
 * the block's cached output (the residual, or the block output in `output` mode) and the block
 * is skipped; otherwise the block runs and its cached output is handed to `store`, which owns it
 * from then on. The engine holds no schedule logic.
 *
 * How it runs fast (issue #13: the host-side cost of issuing GPU work dominated a small UNet):
 * - **Static shapes**: one session set per input size (`batch` = 2 for one guided image, 1
 *   unguided, 2n for a batch), made with every symbolic dimension fixed so shape arithmetic is
 *   folded at load ({@link ShapeSessions}). The sizes in `warm` are created (and on WebGPU run
 *   once) at load; others on first use, at most `maxShapes` kept (least recently used released).
 * - **Weights dequantized once**: 8-bit manifests stay 8-bit on disk; at load the segment bytes
 *   get float32 (or float16 mixed precision) weights (`lib/onnx/dequantize.ts`), so no
 *   `DequantizeLinear` runs per evaluation.
 * - **WebGPU**: inputs uploaded once per evaluation into buffers the engine owns, GPU tensors
 *   between segments, only the UNet outputs read back; each segment's commands captured and
 *   replayed (`enableGraphCapture`, per segment, falling back where refused); cached values are
 *   copies in buffers of the engine's pool, which the next replay does not overwrite.
 *
 * @module
 */

import { type Backend, type BackendChoice, resolveBackend } from "../runtime/backend.ts";
import {
  GpuBufferPool,
  type GpuContext,
  GpuTransfers,
  ortDevice,
  tensorByteLength,
  typedArrayOf,
} from "../runtime/gpu.ts";
import { serialized } from "../runtime/session.ts";
import { ort, type Session, type Tensor } from "../runtime/ort.ts";
import { dequantizeModelBytes } from "../onnx/dequantize.ts";
import { sha256Bytes } from "../io/hash.ts";
import { type SegmentSource, shapeKey, ShapeSessions, symbolicDims } from "./shape_sessions.ts";
import {
  cacheableBlocks,
  type Segment,
  segmentProducers,
  type SplitManifest,
  type TensorDType,
  type TensorSpec,
  validateSplitManifest,
} from "./split_manifest.ts";

/** The per-step caching decision, asked once per cacheable block per evaluation. */
export interface BlockPolicy {
  /**
   * A tensor to use instead of computing block `block` (its `index` among the manifest's cacheable
   * blocks), or `undefined` to compute it. The engine does not dispose a reused tensor.
   */
  reuse(block: string, index: number): Tensor | undefined;
  /**
   * Receives the freshly computed cached output of a block; the policy owns it from now on (the
   * engine still reads it during this evaluation, so dispose it no earlier than the next one).
   */
  store(block: string, index: number, value: Tensor): void;
}

/**
 * Weights the sessions get: `stored` as the files hold them; `float32` dequantizes 8-bit weights at
 * load; `float16` dequantizes and converts the segments to float16 mixed precision (WebGPU with
 * `shader-f16`). Manifests without 8-bit weights are used as stored whatever is asked.
 */
export type WeightFormat = "stored" | "float32" | "float16";

/** The weight formats a caller may name, for flag parsing. */
export const WEIGHT_FORMATS: readonly WeightFormat[] = ["stored", "float32", "float16"];

/** Options of {@link UNetEngine.load}. */
export interface EngineOptions {
  /** `auto` (default), `webgpu` or `wasm`. */
  backend?: BackendChoice;
  /** Progress and backend lines (default `console.log`). */
  log?: (line: string) => void;
  /**
   * Fix symbolic dimensions per session set (default true). False: one set with symbolic shapes
   * serves every size, and there is no graph capture.
   */
  staticShapes?: boolean;
  /**
   * Sizes whose session sets are made at load, as values of the symbolic dimensions (default
   * `[{ batch: 2 }]`, one guided image). A size that does not name every symbolic dimension of the
   * manifest is skipped (logged) and made on first use instead.
   */
  warm?: Record<string, number>[];
  /** Most session sets kept at once (default 3); the least recently used is released. */
  maxShapes?: number;
  /** Weight format (default {@link defaultWeights}). */
  weights?: WeightFormat;
  /** WebGPU: capture and replay each segment's GPU commands (default true; needs static shapes). */
  graphCapture?: boolean;
}

/**
 * A cancellation flag as the engine reads it: an `AbortSignal`, or any object with the same three
 * members (e.g. one backed by a `SharedArrayBuffer` in a worker).
 */
export interface AbortLike {
  readonly aborted: boolean;
  readonly reason?: unknown;
  throwIfAborted(): void;
}

/** Options of one evaluation. */
export interface RunOptions {
  policy?: BlockPolicy;
  /** Checked between segments; an aborted run rejects with `signal.reason`. */
  signal?: AbortLike;
}

/** What {@link UNetEngine.status} reports. */
export interface EngineStatus {
  backend: Backend;
  weights: WeightFormat;
  staticShapes: boolean;
  /** Session sets alive, least recently used first: size key and captured segment count. */
  shapes: { key: string; captured: number; segments: number }[];
}

/**
 * Latency of one segment, for deadline planning. On WebGPU a run returns once its work is queued
 * and its outputs stay on the GPU, so GPU time shows up mostly in the segment that makes the UNet's
 * output (its time includes the read-back, which waits for the queue); the sum over segments is
 * still the evaluation's wall time.
 */
export interface SegmentTiming {
  name: string;
  kind: "glue" | "block";
  /** Wall time of its last run in ms (`undefined` before the first run). */
  lastMs?: number;
  /** Mean over runs, leaving out the first (warm-up) run once there are two or more. */
  meanMs?: number;
  /** How many times it ran. */
  runs: number;
  /** Whether the last evaluation reused it from cache instead of running it. */
  skipped: boolean;
}

/** Thrown when a split folder's files do not match `split.json`. */
export class SplitIntegrityError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SplitIntegrityError";
  }
}

async function readChecked(dir: string, file: string, sha256: string): Promise<Uint8Array> {
  if (file.includes("/") || file.includes("\\") || file === ".." || file === ".") {
    throw new SplitIntegrityError(
      `split ${dir}: file name ${file} must be a plain name in the folder`,
    );
  }
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(`${dir}/${file}`);
  } catch (e) {
    throw new SplitIntegrityError(`split ${dir}: cannot read ${file} (${(e as Error).message})`);
  }
  const got = sha256Bytes(bytes);
  if (got !== sha256) {
    throw new SplitIntegrityError(
      `split ${dir}: ${file} has sha256 ${got}, split.json says ${sha256}: the file was ` +
        `changed or damaged. Restore it (a shipped model: git checkout -- ${dir}); for your own ` +
        "export, run deno task split again",
    );
  }
  return bytes;
}

/** Reads and validates `split.json` of a split folder (does not check the segment files). */
export async function readSplitManifest(dir: string): Promise<SplitManifest> {
  let text: string;
  try {
    text = await Deno.readTextFile(`${dir}/split.json`);
  } catch (e) {
    throw new SplitIntegrityError(`split ${dir}: cannot read split.json (${(e as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new SplitIntegrityError(`split ${dir}: split.json is not JSON (${(e as Error).message})`);
  }
  try {
    return validateSplitManifest(json);
  } catch (e) {
    throw new SplitIntegrityError(`split ${dir}: ${(e as Error).message}`);
  }
}

/**
 * Prepared segment bytes are kept in memory up to this total; above it they serve the warm sessions
 * and are then re-read.
 */
const KEEP_PREPARED_BYTES = 256 * 2 ** 20;

/** 8-bit weights whose float32 form would exceed this are not dequantized to float32. */
const MAX_FLOAT32_WEIGHT_BYTES = 2 ** 30;

/**
 * The weight format an 8-bit manifest gets when none is asked: `float32` (no per-evaluation
 * dequantization on either backend; measured with `deno task bench gpu`), unless its float32
 * weights would exceed 1 GiB: then `float16` on WebGPU and `stored` on wasm (whose heap is 4 GiB).
 * Other manifests are always used as stored.
 */
export function defaultWeights(backend: Backend, storedBytes: number): WeightFormat {
  if (storedBytes * 4 <= MAX_FLOAT32_WEIGHT_BYTES) return "float32";
  return backend === "webgpu" ? "float16" : "stored";
}

/** One loaded manifest: session sets for its segments, ready to run UNet evaluations. */
export class UNetEngine {
  /** Names of the cacheable blocks in execution order (the policy's `index` refers to this). */
  readonly blocks: string[];
  private lastUse = new Map<string, number>();
  /** The segment that outputs each tensor. */
  private producer: Map<string, number>;
  private outputNames: Set<string>;
  /** Index among cacheable blocks per segment, or -1 for glue. */
  private blockIndex: number[];
  private timing: SegmentTiming[];
  private totals: number[];
  /** Wall ms of every run since load, the first included (see {@link UNetEngine.counters}). */
  private sums: number[];
  /** Session sets by {@link shapeKey}, least recently used first. */
  private sets = new Map<string, ShapeSessions>();
  private gpu: Promise<GpuContext> | undefined;
  private released = false;

  private constructor(
    readonly manifest: SplitManifest,
    readonly backend: Backend,
    readonly weights: WeightFormat,
    readonly staticShapes: boolean,
    private readonly graphCapture: boolean,
    private readonly maxShapes: number,
    private readonly source: (i: number) => Promise<SegmentSource>,
    private readonly log: (line: string) => void,
  ) {
    let b = 0;
    this.blockIndex = manifest.segments.map((s) => (s.kind === "block" ? b++ : -1));
    this.blocks = cacheableBlocks(manifest);
    manifest.segments.forEach((s, i) => {
      for (const t of s.inputs) this.lastUse.set(t.name, i);
    });
    this.producer = segmentProducers(manifest);
    this.outputNames = new Set(manifest.outputs.map((o) => o.name));
    this.timing = manifest.segments.map((s) => ({
      name: s.name,
      kind: s.kind,
      runs: 0,
      skipped: false,
    }));
    this.totals = manifest.segments.map(() => 0);
    this.sums = manifest.segments.map(() => 0);
  }

  /**
   * Loads a split folder: checks `split.json` and the sha256 of every file, resolves the backend,
   * prepares the weights and makes the session sets of `opts.warm`. Throws
   * {@link SplitIntegrityError} on a mismatch.
   */
  static async load(dir: string, opts: EngineOptions = {}): Promise<UNetEngine> {
    const log = opts.log ?? console.log;
    const manifest = await readSplitManifest(dir);
    for (const seg of manifest.segments) {
      if (
        seg.kind === "block" && (seg.outputs.length !== 1 || seg.outputs[0].name !== seg.cached)
      ) {
        throw new SplitIntegrityError(
          `split ${dir}: block ${seg.name} must have exactly one output, its cached tensor ${seg.cached}`,
        );
      }
    }
    const read = async (seg: Segment) => ({
      model: await readChecked(dir, seg.file, seg.sha256),
      external: await Promise.all(
        (seg.externalData ?? []).map(async (x) => ({
          path: x.file,
          data: await readChecked(dir, x.file, x.sha256),
        })),
      ),
    });
    const files = await Promise.all(manifest.segments.map(read));
    const storedBytes = files.reduce(
      (s, f) => s + f.model.length + f.external.reduce((t, x) => t + x.data.length, 0),
      0,
    );
    const { backend } = await resolveBackend(opts.backend ?? "auto", log);
    const eightBit = manifest.precision === "int8" || manifest.precision === "uint8";
    const weights = eightBit ? opts.weights ?? defaultWeights(backend, storedBytes) : "stored";
    const prepare = (f: SegmentSource): SegmentSource =>
      weights === "stored" || f.external.length > 0 ? f : {
        model: dequantizeModelBytes(f.model, weights).bytes,
        external: f.external,
      };
    const prepared: (SegmentSource | undefined)[] = files.map(prepare);
    const keep = prepared.reduce((s, f) => s + f!.model.length, 0) <= KEEP_PREPARED_BYTES;
    // over the bound each prepared copy serves one session (the warm set's) and is dropped; other
    // sessions read and prepare their segment again
    const source = async (i: number) => {
      const f = prepared[i];
      if (!keep) prepared[i] = undefined;
      return f ?? prepare(await read(manifest.segments[i]));
    };
    const staticShapes = opts.staticShapes ?? true;
    const engine = new UNetEngine(
      manifest,
      backend,
      weights,
      staticShapes,
      opts.graphCapture ?? true,
      Math.max(1, opts.maxShapes ?? 3),
      source,
      log,
    );
    try {
      const symbols = new Set(
        manifest.inputs.flatMap((i) => i.shape.filter((d) => typeof d === "string" && d !== "?")),
      );
      const warm = staticShapes ? opts.warm ?? [{ batch: 2 }] : [undefined];
      for (const asked of warm.slice(0, engine.maxShapes)) {
        // only the manifest's own symbols count (a fully static export has none)
        const dims = asked &&
          Object.fromEntries(Object.entries(asked).filter(([k]) => symbols.has(k)));
        const missing = [...symbols].filter((s) => dims && dims[s] === undefined);
        if (missing.length) {
          log(`split ${dir}: not warming ${shapeKey(dims)} (no value for ${missing.join(", ")})`);
          continue;
        }
        await serialized(() => engine.sessionsFor(dims));
      }
      if (!keep) prepared.length = 0;
    } catch (e) {
      await engine.release();
      throw e;
    }
    log(
      `split ${dir}: ${manifest.segments.length} segments, ${engine.blocks.length} cacheable blocks ` +
        `(${manifest.mode}, ${manifest.precision}, weights ${weights}` +
        `${staticShapes ? "" : ", symbolic shapes"})`,
    );
    return engine;
  }

  /** The UNet's inputs as the manifest declares them (name, dtype, shape). */
  get inputs(): TensorSpec[] {
    return this.manifest.inputs;
  }

  /** The dtype the model wants for an input (the timestep is `int64` or `float32` by export). */
  inputDType(name: string): TensorDType {
    const spec = this.manifest.inputs.find((i) => i.name === name);
    if (!spec) {
      throw new Error(
        `the UNet has no input ${name} (inputs: ${
          this.manifest.inputs.map((i) => i.name).join(", ")
        })`,
      );
    }
    return spec.dtype;
  }

  /** Per-segment latencies of the last evaluation and their means, in manifest order. */
  timings(): SegmentTiming[] {
    return this.timing.map((t) => ({ ...t }));
  }

  /**
   * Cumulative runs and wall milliseconds per segment since load, in run order (first runs
   * included). The difference of two readings profiles the evaluations between them, e.g. one
   * generation at one batch size.
   */
  counters(): { runs: number[]; ms: number[] } {
    return { runs: this.timing.map((t) => t.runs), ms: [...this.sums] };
  }

  /** The weights, shapes and capture state of the session sets alive now. */
  status(): EngineStatus {
    return {
      backend: this.backend,
      weights: this.weights,
      staticShapes: this.staticShapes,
      shapes: [...this.sets.values()].map((s) => ({
        key: s.key,
        captured: s.captured.filter((c) => c).length,
        segments: s.sessions.length,
      })),
    };
  }

  /**
   * Runs one UNet evaluation. `feeds` holds the manifest's inputs (owned by the caller; on WebGPU a
   * CPU input fed again as the same tensor object is not uploaded again, so do not change a fed
   * tensor's data in place); returns the manifest's outputs as CPU tensors. One evaluation runs at
   * a time per process.
   */
  run(feeds: Record<string, Tensor>, opts: RunOptions = {}): Promise<Record<string, Tensor>> {
    for (const spec of this.manifest.inputs) {
      const t = feeds[spec.name];
      if (!t) throw new Error(`missing UNet input ${spec.name}`);
      if (t.type !== spec.dtype) {
        throw new Error(`UNet input ${spec.name} must be ${spec.dtype}, got ${t.type}`);
      }
    }
    const dims = symbolicDims(this.manifest.inputs, feeds);
    return serialized(() => this.evaluate(feeds, this.staticShapes ? dims : undefined, opts));
  }

  /**
   * WebGPU: the engine's buffer pool and transfer queue on the sessions' device (for helpers that
   * work on its GPU tensors, such as the block cache's scale-shift); `undefined` on wasm.
   */
  gpuContext(): Promise<GpuContext> | undefined {
    if (this.backend !== "webgpu") return undefined;
    this.gpu ??= ortDevice().then((device) => {
      const transfers = new GpuTransfers(device);
      return { pool: new GpuBufferPool(device, transfers), transfers };
    });
    return this.gpu;
  }

  /** The session set for `dims` (made now if missing; the least recently used beyond the bound released). */
  private async sessionsFor(dims: Record<string, number> | undefined): Promise<ShapeSessions> {
    if (this.released) throw new Error("the UNet engine was released");
    const key = shapeKey(dims);
    const found = this.sets.get(key);
    if (found) {
      this.sets.delete(key);
      this.sets.set(key, found);
      return found;
    }
    while (this.sets.size >= this.maxShapes) {
      const [oldKey, old] = this.sets.entries().next().value!;
      this.sets.delete(oldKey);
      await old.release();
      this.log(`UNet sessions for ${oldKey} released (at most ${this.maxShapes} sizes kept)`);
    }
    const t0 = performance.now();
    const set = await ShapeSessions.create(this.manifest, this.source, {
      backend: this.backend,
      dims,
      capture: this.graphCapture,
      gpu: () => this.gpuContext()!,
      log: this.log,
      check: (seg, session) => checkSession(seg, session),
    });
    this.sets.set(key, set);
    const captured = set.captured.filter((c) => c).length;
    this.log(
      `UNet sessions for ${key}: ${set.sessions.length} segments` +
        (this.backend === "webgpu" ? `, ${captured} captured` : "") +
        ` (${(performance.now() - t0).toFixed(0)} ms)`,
    );
    return set;
  }

  private async evaluate(
    feeds: Record<string, Tensor>,
    dims: Record<string, number> | undefined,
    opts: RunOptions,
  ): Promise<Record<string, Tensor>> {
    const { policy, signal } = opts;
    const set = await this.sessionsFor(dims);
    const onGpu = this.backend === "webgpu";
    const held = new Map<string, { tensor: Tensor; owned: boolean }>();
    for (const [name, tensor] of Object.entries(onGpu ? set.stage(feeds) : feeds)) {
      held.set(name, { tensor, owned: false });
    }
    /** Wall ms of each segment run in this evaluation (recorded when it completes). */
    const spent: number[] = [];
    const release = (after: number) => {
      for (const [name, h] of held) {
        if (this.outputNames.has(name)) continue;
        if ((this.lastUse.get(name) ?? -1) <= after) {
          if (h.owned) h.tensor.dispose();
          held.delete(name);
        }
      }
    };
    try {
      for (const [i, seg] of this.manifest.segments.entries()) {
        signal?.throwIfAborted();
        const block = this.blockIndex[i];
        if (block >= 0 && policy) {
          const cached = policy.reuse(seg.name, block);
          if (cached) {
            held.set(seg.cached!, { tensor: cached, owned: false });
            this.timing[i].skipped = true;
            release(i);
            continue;
          }
        }
        const input: Record<string, Tensor> = {};
        for (const spec of seg.inputs) {
          const h = held.get(spec.name);
          if (!h) throw new Error(`segment ${seg.name}: input ${spec.name} is not available`);
          input[spec.name] = onGpu ? set.feed(i, spec.name, h.tensor) : h.tensor;
        }
        const t0 = performance.now();
        const out = await set.run(i, input);
        spent[i] = performance.now() - t0;
        for (const spec of seg.outputs) {
          const t = out[spec.name];
          if (!t) throw new Error(`segment ${seg.name} produced no ${spec.name}`);
          held.set(spec.name, { tensor: t, owned: true });
        }
        if (block >= 0 && policy) {
          const h = held.get(seg.cached!)!;
          if (onGpu) {
            // a copy: a captured session overwrites its output buffer on its next replay
            policy.store(seg.name, block, set.keep(h.tensor));
          } else {
            h.owned = false;
            policy.store(seg.name, block, h.tensor);
          }
        }
        release(i);
      }
      const result: Record<string, Tensor> = {};
      for (const spec of this.manifest.outputs) {
        const h = held.get(spec.name);
        if (!h) throw new Error(`the manifest produced no ${spec.name}`);
        const t0 = performance.now();
        result[spec.name] = onGpu ? await this.readBack(h.tensor) : h.tensor;
        // the read-back waits for the queued GPU work: count it to the segment that made the output
        const producer = this.producer.get(spec.name);
        if (producer !== undefined && spent[producer] !== undefined) {
          spent[producer] += performance.now() - t0;
        }
        if (h.owned && result[spec.name] !== h.tensor) h.tensor.dispose();
        held.delete(spec.name);
      }
      spent.forEach((ms, i) => this.record(i, ms));
      return result;
    } finally {
      for (const h of held.values()) if (h.owned) h.tensor.dispose();
    }
  }

  /** A CPU copy of a UNet output (GPU tensors read back through the engine's staging buffer). */
  private async readBack(t: Tensor): Promise<Tensor> {
    if (t.location !== "gpu-buffer") return t;
    const { transfers } = await this.gpuContext()!;
    const bytes = await transfers.read(t.gpuBuffer as GPUBuffer, tensorByteLength(t.type, t.dims));
    return new ort.Tensor(t.type, typedArrayOf(t.type, bytes), t.dims);
  }

  private record(i: number, ms: number): void {
    const t = this.timing[i];
    t.lastMs = ms;
    this.sums[i] += ms;
    t.skipped = false;
    t.runs++;
    if (t.runs === 1) {
      t.meanMs = ms;
    } else {
      // the first run (shader compile, allocation) is left out of the mean
      this.totals[i] = t.runs === 2 ? ms : this.totals[i] + ms;
      t.meanMs = this.totals[i] / (t.runs - 1);
    }
  }

  /** Releases every session and GPU buffer. */
  async release(): Promise<void> {
    this.released = true;
    for (const s of this.sets.values()) await s.release();
    this.sets.clear();
    if (this.gpu) {
      const { pool, transfers } = await this.gpu;
      transfers.close();
      pool.close();
      this.gpu = undefined;
    }
  }
}

function checkSession(seg: Segment, session: Session): void {
  const want = (list: TensorSpec[]) => list.map((t) => t.name).sort().join(",");
  if (want(seg.inputs) !== [...session.inputNames].sort().join(",")) {
    throw new SplitIntegrityError(
      `segment ${seg.file} has inputs ${session.inputNames.join(", ")}, split.json says ${
        want(seg.inputs)
      }`,
    );
  }
  if (want(seg.outputs) !== [...session.outputNames].sort().join(",")) {
    throw new SplitIntegrityError(
      `segment ${seg.file} has outputs ${session.outputNames.join(", ")}, split.json says ${
        want(seg.outputs)
      }`,
    );
  }
}

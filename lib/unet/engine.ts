/**
 * The block-split UNet engine: loads a split folder (checking every file's sha256 against
 * `split.json`), creates one session per segment, and runs one UNet evaluation as the segments in
 * order, holding tensors by name and disposing each as soon as no later segment needs it.
 *
 * Before each cacheable block it asks a {@link BlockPolicy}: a tensor from `reuse` stands for
 * the block's cached output (the residual, or the block output in `output` mode) and the block
 * is skipped; otherwise the block runs and its cached output is handed to `store`, which owns it
 * from then on. The engine holds no schedule logic. On WebGPU intermediate outputs stay in GPU
 * buffers between segments and only the UNet's outputs are downloaded.
 *
 * @module
 */

import { type Backend, type BackendChoice, resolveBackend } from "../runtime/backend.ts";
import { createSession, serialized } from "../runtime/session.ts";
import { ort, type Session, type Tensor } from "../runtime/ort.ts";
import { toCpu } from "../runtime/tensors.ts";
import { sha256Bytes } from "../io/hash.ts";
import {
  type Segment,
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

/** Options of {@link UNetEngine.load}. */
export interface EngineOptions {
  /** `auto` (default), `webgpu` or `wasm`. */
  backend?: BackendChoice;
  /** Progress and backend lines (default `console.log`). */
  log?: (line: string) => void;
}

/**
 * What a run checks between segments to stop early: an `AbortSignal`, or any object with the same
 * three members (a worker's cancel flag in a `SharedArrayBuffer`, read with `Atomics`, since a
 * worker busy in wasm never runs the event handlers that would abort a real signal).
 */
export type CancelSignal = Pick<AbortSignal, "aborted" | "reason" | "throwIfAborted">;

/** Options of one evaluation. */
export interface RunOptions {
  policy?: BlockPolicy;
  /** Checked between segments; an aborted run rejects with `signal.reason`. */
  signal?: CancelSignal;
}

/**
 * Latency of one segment, for deadline planning. On WebGPU a run returns once its work is queued
 * and its outputs stay on the GPU, so GPU time shows up mostly in the segment that downloads the
 * UNet's output; the sum over segments is still the evaluation's wall time.
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

interface Loaded {
  seg: Segment;
  session: Session;
  /** Index among cacheable blocks, or -1 for glue. */
  block: number;
  timing: SegmentTiming;
  total: number;
  /** Wall ms of every run since load, the first included (see {@link UNetEngine.counters}). */
  sumMs: number;
}

/** One loaded manifest: sessions for every segment, ready to run UNet evaluations. */
export class UNetEngine {
  /** Names of the cacheable blocks in execution order (the policy's `index` refers to this). */
  readonly blocks: string[];
  private lastUse = new Map<string, number>();
  private outputNames: Set<string>;

  private constructor(
    readonly manifest: SplitManifest,
    readonly backend: Backend,
    private segments: Loaded[],
  ) {
    this.blocks = segments.filter((s) => s.block >= 0).map((s) => s.seg.name);
    segments.forEach((s, i) => {
      for (const t of s.seg.inputs) this.lastUse.set(t.name, i);
    });
    this.outputNames = new Set(manifest.outputs.map((o) => o.name));
  }

  /**
   * Loads a split folder: checks `split.json` and the sha256 of every file, resolves the backend
   * and creates one session per segment. Throws {@link SplitIntegrityError} on a mismatch.
   */
  static async load(dir: string, opts: EngineOptions = {}): Promise<UNetEngine> {
    const log = opts.log ?? console.log;
    const manifest = await readSplitManifest(dir);
    const files: { model: Uint8Array; external: { path: string; data: Uint8Array }[] }[] = [];
    for (const seg of manifest.segments) {
      const model = await readChecked(dir, seg.file, seg.sha256);
      const external = [];
      for (const x of seg.externalData ?? []) {
        external.push({ path: x.file, data: await readChecked(dir, x.file, x.sha256) });
      }
      files.push({ model, external });
    }
    const { backend } = await resolveBackend(opts.backend ?? "auto", log);
    const outputs = new Set(manifest.outputs.map((o) => o.name));
    const loaded: Loaded[] = [];
    let blockIndex = 0;
    try {
      for (const [i, seg] of manifest.segments.entries()) {
        if (
          seg.kind === "block" && (seg.outputs.length !== 1 || seg.outputs[0].name !== seg.cached)
        ) {
          throw new SplitIntegrityError(
            `split ${dir}: block ${seg.name} must have exactly one output, its cached tensor ${seg.cached}`,
          );
        }
        const location: Record<string, ort.Tensor.DataLocation> = {};
        for (const o of seg.outputs) location[o.name] = outputs.has(o.name) ? "cpu" : "gpu-buffer";
        const session = await createSession(files[i].model, backend, {
          preferredOutputLocation: location,
          externalData: files[i].external,
        });
        checkSession(dir, seg, session);
        loaded.push({
          seg,
          session,
          block: seg.kind === "block" ? blockIndex++ : -1,
          timing: { name: seg.name, kind: seg.kind, runs: 0, skipped: false },
          total: 0,
          sumMs: 0,
        });
      }
    } catch (e) {
      for (const l of loaded) await l.session.release();
      throw e;
    }
    log(
      `split ${dir}: ${loaded.length} segments, ${blockIndex} cacheable blocks (${manifest.mode}, ${manifest.precision})`,
    );
    return new UNetEngine(manifest, backend, loaded);
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
    return this.segments.map((s) => ({ ...s.timing }));
  }

  /**
   * Cumulative runs and wall milliseconds per segment since load, in run order (first runs
   * included). The difference of two readings profiles the evaluations between them, e.g. one
   * generation at one batch size.
   */
  counters(): { runs: number[]; ms: number[] } {
    return {
      runs: this.segments.map((s) => s.timing.runs),
      ms: this.segments.map((s) => s.sumMs),
    };
  }

  /**
   * Expected milliseconds of one evaluation from the segments' mean latencies: every glue
   * segment plus the blocks `compute(index)` selects (default: all). `undefined` until every
   * needed segment has run once.
   */
  expectedMs(compute: (blockIndex: number) => boolean = () => true): number | undefined {
    let total = 0;
    for (const s of this.segments) {
      if (s.block >= 0 && !compute(s.block)) continue;
      if (s.timing.meanMs === undefined) return undefined;
      total += s.timing.meanMs;
    }
    return total;
  }

  /**
   * Runs one UNet evaluation. `feeds` holds the manifest's inputs (owned by the caller); returns
   * the manifest's outputs as CPU tensors. One evaluation runs at a time per process.
   */
  run(feeds: Record<string, Tensor>, opts: RunOptions = {}): Promise<Record<string, Tensor>> {
    for (const spec of this.manifest.inputs) {
      const t = feeds[spec.name];
      if (!t) throw new Error(`missing UNet input ${spec.name}`);
      if (t.type !== spec.dtype) {
        throw new Error(`UNet input ${spec.name} must be ${spec.dtype}, got ${t.type}`);
      }
    }
    return serialized(() => this.evaluate(feeds, opts));
  }

  private async evaluate(
    feeds: Record<string, Tensor>,
    opts: RunOptions,
  ): Promise<Record<string, Tensor>> {
    const { policy, signal } = opts;
    const held = new Map<string, { tensor: Tensor; owned: boolean }>();
    for (const [name, tensor] of Object.entries(feeds)) held.set(name, { tensor, owned: false });
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
      for (const [i, s] of this.segments.entries()) {
        if (signal?.aborted) throw signal.reason;
        const seg = s.seg;
        if (s.block >= 0 && policy) {
          const cached = policy.reuse(seg.name, s.block);
          if (cached) {
            held.set(seg.cached!, { tensor: cached, owned: false });
            s.timing.skipped = true;
            release(i);
            continue;
          }
        }
        const input: Record<string, Tensor> = {};
        for (const spec of seg.inputs) {
          const h = held.get(spec.name);
          if (!h) throw new Error(`segment ${seg.name}: input ${spec.name} is not available`);
          input[spec.name] = h.tensor;
        }
        const t0 = performance.now();
        const out = await s.session.run(input);
        const ms = performance.now() - t0;
        this.record(s, ms);
        for (const spec of seg.outputs) {
          const t = out[spec.name];
          if (!t) throw new Error(`segment ${seg.name} produced no ${spec.name}`);
          held.set(spec.name, { tensor: t, owned: true });
        }
        if (s.block >= 0 && policy) {
          const h = held.get(seg.cached!)!;
          h.owned = false;
          policy.store(seg.name, s.block, h.tensor);
        }
        release(i);
      }
      const result: Record<string, Tensor> = {};
      for (const spec of this.manifest.outputs) {
        const h = held.get(spec.name);
        if (!h) throw new Error(`the manifest produced no ${spec.name}`);
        result[spec.name] = await toCpu(h.tensor);
        if (h.owned && result[spec.name] !== h.tensor) h.tensor.dispose();
        held.delete(spec.name);
      }
      return result;
    } finally {
      for (const h of held.values()) if (h.owned) h.tensor.dispose();
    }
  }

  private record(s: Loaded, ms: number): void {
    const t = s.timing;
    t.lastMs = ms;
    s.sumMs += ms;
    t.skipped = false;
    t.runs++;
    if (t.runs === 1) {
      t.meanMs = ms;
    } else {
      // the first run (shader compile, allocation) is left out of the mean
      s.total = t.runs === 2 ? ms : s.total + ms;
      t.meanMs = s.total / (t.runs - 1);
    }
  }

  /** Releases every session. */
  async release(): Promise<void> {
    for (const s of this.segments) await s.session.release();
    this.segments = [];
  }
}

function checkSession(dir: string, seg: Segment, session: Session): void {
  const want = (list: TensorSpec[]) => list.map((t) => t.name).sort().join(",");
  if (want(seg.inputs) !== [...session.inputNames].sort().join(",")) {
    throw new SplitIntegrityError(
      `split ${dir}: segment ${seg.file} has inputs ${
        session.inputNames.join(", ")
      }, split.json says ${want(seg.inputs)}`,
    );
  }
  if (want(seg.outputs) !== [...session.outputNames].sort().join(",")) {
    throw new SplitIntegrityError(
      `split ${dir}: segment ${seg.file} has outputs ${
        session.outputNames.join(", ")
      }, split.json says ${want(seg.outputs)}`,
    );
  }
}

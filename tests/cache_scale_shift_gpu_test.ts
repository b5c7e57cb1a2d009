/**
 * Scale-shift on WebGPU (lib/cache/scale_shift_gpu.ts) against the CPU reference
 * (`applyScaleShift`), and a block cache with a scale-shift schedule on a captured WebGPU engine:
 * the GPU correction gives what the CPU correction gives, and both what wasm gives. Skipped without
 * a WebGPU adapter (lavapipe runs it on CPU-only hosts).
 *
 * Bounds (relative to the largest reference value): the kernel does the same float32 multiply-adds
 * as the CPU code, possibly fused (FMA): 1e-6. Whole evaluations on one engine, GPU vs CPU
 * correction: 1e-5, the engine's split-vs-monolithic bound. WebGPU vs wasm: 1e-4 (measured on
 * lavapipe: 3.3e-5 already at step 0, where nothing is reused: the two EPs' kernels round apart).
 *
 * @module
 */
import { assert, assertEquals } from "./_assert.ts";
import { BlockCache, scaleShiftOnCpu } from "../lib/cache/policy.ts";
import { applyScaleShift } from "../lib/cache/scale_shift.ts";
import { GpuScaleShift } from "../lib/cache/scale_shift_gpu.ts";
import { type Schedule, SCHEDULE_FORMAT, skippedFraction } from "../lib/cache/schedule.ts";
import { uniformSchedule } from "../lib/calibration/derive.ts";
import { mulberry32 } from "../lib/metrics/kid.ts";
import { splitModel } from "../lib/onnx/split.ts";
import { probeWebGpu } from "../lib/runtime/backend.ts";
import { ort, type Tensor } from "../lib/runtime/ort.ts";
import { toFloat32 } from "../lib/runtime/tensors.ts";
import { UNetEngine } from "../lib/unet/engine.ts";

const ADAPTER = await probeWebGpu();
const FIXTURE = new URL("./fixtures/tiny_unet.onnx", import.meta.url).pathname;

function randoms(seed: number, n: number, lo = -1, hi = 1): Float32Array {
  const u = mulberry32(seed);
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * u());
}

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  assertEquals(a.length, b.length);
  let d = 0, scale = 1e-12;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return d / scale;
}

let split: Promise<string> | undefined;
const fixtureSplit = () =>
  split ??= Deno.makeTempDir({ prefix: "ss-gpu-test-" }).then((d) =>
    splitModel(FIXTURE, { out: `${d}/split` }).then((r) => r.dir)
  );

function inputs(seed: number, timestep: number): Record<string, Tensor> {
  return {
    sample: new ort.Tensor("float32", randoms(seed, 2 * 4 * 8 * 8), [2, 4, 8, 8]),
    timestep: new ort.Tensor("int64", BigInt64Array.of(BigInt(timestep)), [1]),
    encoder_hidden_states: new ort.Tensor("float32", randoms(99, 2 * 4 * 16), [2, 4, 16]),
  };
}

Deno.test({
  name: "webgpu: scale-shift on the GPU equals the CPU reference (paper and history forms)",
  ignore: !ADAPTER,
  fn: async () => {
    const engine = await UNetEngine.load(await fixtureSplit(), {
      backend: "webgpu",
      log: () => {},
    });
    try {
      const gpu = await engine.gpuContext()!;
      const onGpu = new GpuScaleShift(gpu);
      const dims = [2, 3, 5, 7];
      const n = 2 * 3 * 35;
      const cached = randoms(1, n), previous = randoms(2, n);
      const upload = (data: Float32Array) => {
        const t = gpu.pool.tensor("float32", dims);
        gpu.transfers.write(t.gpuBuffer as GPUBuffer, new ort.Tensor("float32", data, dims));
        return t;
      };
      const c = upload(cached), p = upload(previous);
      const paper = { scale: [0.9, 1.1, -0.5], shift: [0.1, -0.2, 0.3] };
      const history = { ...paper, previous: [0.25, -0.5, 0.125] };
      for (const [ss, prev] of [[paper, undefined], [history, previous]] as const) {
        const out = onGpu.apply(c, ss, prev && p);
        assertEquals(out.location, "gpu-buffer");
        const got = await toFloat32(out);
        const want = applyScaleShift(cached, dims, ss, undefined, prev);
        const d = maxRelDiff(got, want);
        assert(d <= 1e-6, `GPU vs CPU scale-shift: ${d}`);
        out.dispose();
      }
      let message = "";
      try {
        onGpu.apply(new ort.Tensor("float32", cached, dims), paper);
      } catch (e) {
        message = (e as Error).message;
      }
      assert(message.includes("needs float32 GPU tensors"), message);
      c.dispose();
      p.dispose();
    } finally {
      await engine.release();
    }
  },
});

/** uniform-2 over 4 steps with a scale-shift at both reuse steps (history form at step 3). */
function schedule(engine: UNetEngine): Schedule {
  const recompute = uniformSchedule(4, engine.blocks.length, 2);
  const table: NonNullable<Schedule["scaleShift"]> = {};
  engine.blocks.forEach((block, k) => {
    const seg = engine.manifest.segments.find((s) => s.name === block)!;
    const channels = seg.outputs[0].shape[1] as number;
    const coef = (seed: number, lo: number, hi: number) =>
      Array.from(randoms(seed, channels, lo, hi));
    table[block] = {
      "1": { scale: coef(10 + k, 0.8, 1.2), shift: coef(20 + k, -0.1, 0.1) },
      "3": {
        scale: coef(30 + k, 0.8, 1.2),
        shift: coef(40 + k, -0.1, 0.1),
        previous: coef(50 + k, -0.3, 0.3),
      },
    };
  });
  return {
    format: SCHEDULE_FORMAT,
    model: "tiny",
    solver: "dpm",
    steps: 4,
    name: "uniform-2",
    kind: "uniform",
    every: 2,
    mode: engine.manifest.mode,
    blocks: [...engine.blocks],
    recompute,
    skippedFraction: skippedFraction(recompute),
    scaleShift: table,
  };
}

async function cachedRun(engine: UNetEngine, onGpu?: GpuScaleShift): Promise<Float32Array[]> {
  const s = schedule(engine);
  const cache = new BlockCache(
    s,
    engine.blocks,
    true,
    onGpu ? (stored, ss, previous) => onGpu.apply(stored, ss, previous) : scaleShiftOnCpu,
  );
  const outs: Float32Array[] = [];
  try {
    for (let step = 0; step < 4; step++) {
      await cache.beginStep(step);
      const out = await engine.run(inputs(5 + step, 900 - 200 * step), { policy: cache });
      outs.push(await toFloat32(out.out_sample));
    }
    assertEquals(cache.stats.reused, 2 * engine.blocks.length);
  } finally {
    cache.dispose();
  }
  return outs;
}

Deno.test({
  name:
    "webgpu: a scale-shift schedule on a captured engine: GPU correction = CPU correction = wasm",
  ignore: !ADAPTER,
  fn: async () => {
    const dir = await fixtureSplit();
    const gpuEngine = await UNetEngine.load(dir, { backend: "webgpu", log: () => {} });
    const cpuEngine = await UNetEngine.load(dir, { backend: "wasm", log: () => {} });
    try {
      const onGpu = new GpuScaleShift(await gpuEngine.gpuContext()!);
      const a = await cachedRun(gpuEngine, onGpu);
      const b = await cachedRun(gpuEngine);
      const c = await cachedRun(cpuEngine);
      for (let step = 0; step < 4; step++) {
        const ab = maxRelDiff(a[step], b[step]), ac = maxRelDiff(a[step], c[step]);
        assert(
          ab <= 1e-5 && ac <= 1e-4,
          `step ${step}: GPU vs CPU correction ${ab}, vs wasm ${ac}`,
        );
      }
    } finally {
      await gpuEngine.release();
      await cpuEngine.release();
    }
  },
});

Deno.test("clean up", async () => {
  if (split) await Deno.remove((await split).replace(/\/split$/, ""), { recursive: true });
});

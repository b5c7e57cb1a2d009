/**
 * `deno task bench gpu` and its pieces: the WebGPU call counter on a real device (lavapipe on
 * CPU-only hosts), the placement-log parser, flag checks, the summary of a GPU-host run, and one
 * short real run of the benchmark on wasm. Timings are never asserted, only counts and shapes.
 *
 * @module
 */
import { assert, assertEquals } from "./_assert.ts";
import { countGpuCalls } from "../bench/gpu_calls.ts";
import { benchEngine, benchEngineOptions, formatBenchEngine } from "../bench/gpu_engine.ts";
import { parsePlacements } from "../bench/gpu_nodes.ts";
import { summarize } from "../bench/gpu_summary.ts";
import { UsageError } from "../lib/cli/flags.ts";
import { probeWebGpu } from "../lib/runtime/backend.ts";
import { DEFAULT_MODEL_DIR } from "./support/generator.ts";

const ADAPTER = await probeWebGpu();

Deno.test({
  name: "the WebGPU call counter counts each wrapped call once and stops cleanly",
  ignore: !ADAPTER,
  fn: async () => {
    const adapter = await navigator.gpu.requestAdapter();
    const device = await adapter!.requestDevice();
    const counter = countGpuCalls();
    try {
      const a = device.createBuffer({ size: 64, usage: 0x80 | 0x04 | 0x08 });
      const b = device.createBuffer({ size: 64, usage: 0x01 | 0x08 });
      device.queue.writeBuffer(a, 0, new Float32Array(16));
      device.queue.writeBuffer(a, 0, new Float32Array(16), 4, 8); // 8 elements: 32 bytes
      const module = device.createShaderModule({
        code: "@group(0) @binding(0) var<storage, read_write> x: array<f32>;\n" +
          "@compute @workgroup_size(1) fn main() { x[0] = 1.0; }",
      });
      const pipeline = device.createComputePipeline({
        layout: "auto",
        compute: { module, entryPoint: "main" },
      });
      const bind = device.createBindGroup({
        layout: pipeline.getBindGroupLayout(0),
        entries: [{ binding: 0, resource: { buffer: a } }],
      });
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bind);
      pass.dispatchWorkgroups(1);
      pass.dispatchWorkgroups(2);
      pass.end();
      enc.copyBufferToBuffer(a, 0, b, 0, 64);
      device.queue.submit([enc.finish()]);
      await b.mapAsync(GPUMapMode.READ);
      assertEquals(new Float32Array(b.getMappedRange())[0], 1);
      b.unmap();
      assertEquals(counter.read(), {
        dispatches: 2,
        writeBuffers: 2,
        writeBytes: 64 + 32,
        submits: 1,
        readBacks: 1,
        copies: 1,
        bindGroups: 1,
      });
      counter.reset();
      assertEquals(counter.read().writeBuffers, 0);
      counter.stop();
      device.queue.writeBuffer(a, 0, new Float32Array(4));
      assertEquals(counter.read().writeBuffers, 0, "no counting after stop()");
    } finally {
      counter.stop();
      device.destroy();
    }
  },
});

Deno.test("onnxruntime's placement log lines are summed per execution provider", () => {
  const log = [
    "[V:onnxruntime:, session_state.cc:1380 VerifyEachNodeIsAssignedToAnEp]  All nodes placed on " +
    "[WebGpuExecutionProvider]. Number of nodes: 69",
    "[V:onnxruntime:] Node(s) placed on [CPUExecutionProvider]. Number of nodes: 3",
    "   Reshape (/Reshape)",
    "[V:onnxruntime:] Node(s) placed on [WebGpuExecutionProvider]. Number of nodes: 31",
  ].join("\n");
  assertEquals(parsePlacements(log), { WebGpuExecutionProvider: 100, CPUExecutionProvider: 3 });
  assertEquals(parsePlacements("nothing here"), {});
});

Deno.test("bench gpu flags: defaults, variants per backend, errors naming the flag", () => {
  const o = benchEngineOptions([], "wasm");
  assertEquals(o.backend, "wasm");
  assertEquals(o.variants, ["before", "static", "float32", "static+float32"]);
  assertEquals([o.evals, o.rounds, o.images, o.nodes], [5, 3, 0, true]);
  assert(benchEngineOptions(["--backend", "webgpu"]).variants.includes("captured"));
  const message = (args: string[]) => {
    try {
      benchEngineOptions(args, "wasm");
    } catch (e) {
      assert(e instanceof UsageError);
      return e.message;
    }
    return "";
  };
  assert(message(["--variants", "captured"]).includes('unknown variant "captured" on wasm'));
  assert(message(["--backend", "cuda"]).includes("--backend must be webgpu or wasm"));
  assert(message(["--rounds", "0"]).includes("--rounds must be between 1 and 100"));
  assert(message(["--solver", "plms"]).includes("--solver"));
});

Deno.test("bench gpu on wasm: the shipped model, two variants, a real short run", async () => {
  const r = await benchEngine({
    model: DEFAULT_MODEL_DIR,
    backend: "wasm",
    variants: ["before", "static+float32"],
    evals: 2,
    rounds: 1,
    images: 0,
    steps: 20,
    solver: "dpm",
    nodes: false,
    log: () => {},
  });
  assertEquals(r.rows.map((x) => x.variant), ["before", "static+float32"]);
  for (const row of r.rows) {
    assert(row.eval_ms > 0 && row.eval_cpu_ms >= 0 && row.eval_min_ms <= row.eval_ms);
    assertEquals(row.calls, undefined, "no WebGPU calls on wasm");
  }
  assertEquals(r.rows[1].captured, "batch=2: 0/15");
  assertEquals(r.rows[0].captured, "dynamic: 0/15");
  const table = formatBenchEngine(r);
  assert(table.includes("| before |") && table.includes("| static+float32 |"), table);
  const summary = summarize({ wasm: r, torch: [] });
  assert(summary.includes("| wasm, 1 thread | static+float32 |"), summary);
  assert(summary.includes("| WebGPU | (no result) |"), summary);
});

import { assert, assertEquals } from "./_assert.ts";
import { DataType, encodeModel, type ValueInfo } from "../lib/onnx/model.ts";
import {
  type Backend,
  BackendUnavailableError,
  isSoftwareAdapter,
  probeWebGpu,
  resolveBackend,
} from "../lib/runtime/backend.ts";
import { createSession, serialized } from "../lib/runtime/session.ts";
import { ort } from "../lib/runtime/ort.ts";
import { toCpu, toFloat32 } from "../lib/runtime/tensors.ts";

const ADAPTER = await probeWebGpu();
if (!ADAPTER) console.warn("runtime_backend_test: no WebGPU adapter; the WebGPU tests are skipped");

/** y = relu(x) * 2, x: float32 [n] */
function tinyModel(): Uint8Array {
  const vi = (name: string): ValueInfo => ({
    name,
    type: { tensor: { elemType: DataType.FLOAT, shape: [{ param: "n" }] } },
  });
  return encodeModel({
    irVersion: 8,
    opsetImport: [{ domain: "", version: 17 }],
    metadataProps: [],
    graph: {
      name: "tiny",
      node: [
        { name: "r", opType: "Relu", domain: "", input: ["x"], output: ["r"], attribute: [] },
        { name: "m", opType: "Add", domain: "", input: ["r", "r"], output: ["y"], attribute: [] },
      ],
      initializer: [],
      input: [vi("x")],
      output: [vi("y")],
      valueInfo: [],
    },
  });
}

Deno.test("wasm is always available and says so", async () => {
  const lines: string[] = [];
  assertEquals(await resolveBackend("wasm", (l) => lines.push(l)), { backend: "wasm" });
  assertEquals(lines, ["backend: wasm (CPU, 1 thread)"]);
});

Deno.test("auto picks WebGPU exactly when a hardware adapter exists, and logs the adapter", async () => {
  const lines: string[] = [];
  const info = await resolveBackend("auto", (l) => lines.push(l));
  if (ADAPTER && !isSoftwareAdapter(ADAPTER)) {
    assertEquals(info, { backend: "webgpu", adapter: ADAPTER });
    assertEquals(lines, [`backend: webgpu (adapter: ${ADAPTER})`]);
  } else {
    assertEquals(info.backend, "wasm");
  }
  const cpu = await resolveBackend("auto", () => {}, () => Promise.resolve("llvmpipe (LLVM 15)"));
  assertEquals(cpu.backend, "wasm");
  const forced = await resolveBackend(
    "webgpu",
    () => {},
    () => Promise.resolve("llvmpipe (LLVM 15)"),
  );
  assertEquals(forced.backend, "webgpu");
  const fake = await resolveBackend("auto", () => {}, () => Promise.resolve(undefined));
  assertEquals(fake.backend, "wasm");
  const other = await resolveBackend("auto", () => {}, () => Promise.resolve("Some GPU"));
  assertEquals(other, { backend: "webgpu", adapter: "Some GPU" });
});

Deno.test("asking for WebGPU without an adapter is a clear error", async () => {
  let err: Error | undefined;
  try {
    await resolveBackend("webgpu", () => {}, () => Promise.resolve(undefined));
  } catch (e) {
    err = e as Error;
  }
  assert(err instanceof BackendUnavailableError);
  assert(err.message.includes("backend webgpu is unavailable"), err.message);
  assert(err.message.includes("mesa-vulkan-drivers"), err.message);
  err = undefined;
  try {
    await resolveBackend("cuda" as Backend, () => {});
  } catch (e) {
    err = e as Error;
  }
  assert(err?.message.includes('unknown backend "cuda"'));
});

for (const backend of ["wasm", "webgpu"] as const) {
  Deno.test({
    name: `${backend}: a session computes, and GPU outputs can stay on the GPU`,
    ignore: backend === "webgpu" && !ADAPTER,
    fn: async () => {
      const session = await createSession(tinyModel(), backend, {
        preferredOutputLocation: "gpu-buffer",
      });
      const x = new ort.Tensor("float32", Float32Array.of(-1, 0.5, 3), [3]);
      const { y } = await session.run({ x });
      assertEquals(y.location, backend === "webgpu" ? "gpu-buffer" : "cpu");
      assertEquals([...(await toFloat32(y))], [0, 1, 6]);
      const cpu = await toCpu(y);
      assertEquals(cpu.location, "cpu");
      assertEquals([...(cpu.data as Float32Array)], [0, 1, 6]);
      // a GPU output feeds the next run without a download
      const again = await session.run({ x: y });
      assertEquals([...(await toFloat32(again.y))], [0, 2, 12]);
      if (cpu !== y) y.dispose();
      again.y.dispose();
      await session.release();
    },
  });
}

Deno.test("serialized runs one call at a time, in order, even when one fails", async () => {
  const events: string[] = [];
  const job = (name: string, fail = false) =>
    serialized(async () => {
      events.push(`${name} start`);
      await new Promise((r) => setTimeout(r, 5));
      events.push(`${name} end`);
      if (fail) throw new Error(name);
      return name;
    });
  const results = await Promise.allSettled([job("a"), job("b", true), job("c")]);
  assertEquals(events, ["a start", "a end", "b start", "b end", "c start", "c end"]);
  assertEquals(results.map((r) => r.status), ["fulfilled", "rejected", "fulfilled"]);
});

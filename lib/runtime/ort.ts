/**
 * The one place that imports onnxruntime-web. Two builds are used:
 * - `onnxruntime-web/webgpu` has the WebGPU execution provider under Deno (the native C++ EP
 *   over Deno's `navigator.gpu`; the plain `onnxruntime-web` import resolves to the node build
 *   without WebGPU). Its wasm is compiled with asyncify, which makes CPU kernels ~1.4x slower.
 * - `onnxruntime-web/wasm` is the plain wasm build: sessions on the `wasm` backend use it
 *   (loaded on first use, so a WebGPU process never instantiates it).
 * Tensors are plain data to both builds (type, dims, data, location), so `ort.Tensor` from the
 * WebGPU build feeds sessions of either. Wasm runs single-threaded by default (the bundles cannot
 * start worker threads under Deno, and on these small hosts more threads are slower anyway).
 *
 * @module
 */

import * as ort from "onnxruntime-web/webgpu";

ort.env.wasm.numThreads = 1;
ort.env.logLevel = "error";

export { ort };

type OrtModule = typeof ort;
let wasmBuild: Promise<OrtModule> | undefined;

/** The plain wasm build of onnxruntime-web (for CPU sessions), configured like `ort`. */
export function ortWasm(): Promise<OrtModule> {
  wasmBuild ??= import("onnxruntime-web/wasm").then((m) => {
    const mod = m as unknown as OrtModule;
    mod.env.wasm.numThreads = ort.env.wasm.numThreads;
    mod.env.logLevel = "error";
    return mod;
  });
  return wasmBuild;
}

/** An onnxruntime-web tensor (on the CPU or, on WebGPU, possibly in a GPU buffer). */
export type Tensor = ort.Tensor;

/** An onnxruntime-web inference session. */
export type Session = ort.InferenceSession;

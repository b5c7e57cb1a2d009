/**
 * onnxruntime-web's wasm heap size, for benchmarks: importing this module wraps
 * `WebAssembly.Memory` (the runtime creates its memory in JavaScript and imports it) and
 * `WebAssembly.instantiate*` (for builds that export it), so it must be imported before
 * onnxruntime-web loads (load the runtime with a dynamic `import()` after this). A WebAssembly
 * memory never shrinks, so its size is the high-water mark of everything run so far.
 *
 * @module
 */

const memories: WebAssembly.Memory[] = [];

function collect<T extends WebAssembly.WebAssemblyInstantiatedSource | WebAssembly.Instance>(
  result: T,
): T {
  const instance: WebAssembly.Instance = "instance" in result ? result.instance : result;
  for (const v of Object.values(instance.exports)) {
    if (v instanceof WebAssembly.Memory) memories.push(v);
  }
  return result;
}

const instantiate = WebAssembly.instantiate.bind(WebAssembly);
const streaming = WebAssembly.instantiateStreaming.bind(WebAssembly);
const NativeMemory = WebAssembly.Memory;
// deno-lint-ignore no-explicit-any
const wasm = WebAssembly as any;
wasm.instantiate = async (...args: Parameters<typeof instantiate>) =>
  collect(await instantiate(...args));
wasm.instantiateStreaming = async (...args: Parameters<typeof streaming>) =>
  collect(await streaming(...args));
wasm.Memory = function (descriptor: WebAssembly.MemoryDescriptor) {
  const m = new NativeMemory(descriptor);
  memories.push(m);
  return m;
};

/** Bytes of the largest WebAssembly memory created since this module loaded (0 before any). */
export function wasmHeapBytes(): number {
  return Math.max(0, ...memories.map((m) => m.buffer.byteLength));
}

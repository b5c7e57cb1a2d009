/**
 * The one place that decides the execution backend. `auto` picks WebGPU when
 * `navigator.gpu.requestAdapter()` returns a hardware adapter, else wasm (a CPU renderer such as
 * lavapipe is slower than wasm); asking for `webgpu` without an adapter is an error that says what
 * to install. It does not load onnxruntime-web (sessions are made in `session.ts`), so the HTTP
 * process can decide and report the backend without the runtime.
 *
 * @module
 */

/** A backend a session can run on. */
export type Backend = "webgpu" | "wasm";

/** What a caller may ask for. */
export type BackendChoice = Backend | "auto";

/** The backends a caller may name, for flag parsing. */
export const BACKEND_CHOICES: readonly BackendChoice[] = ["auto", "webgpu", "wasm"];

/** The resolved backend and, for WebGPU, the adapter's description. */
export interface BackendInfo {
  backend: Backend;
  adapter?: string;
}

/** Thrown when the requested backend cannot run on this host. */
export class BackendUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BackendUnavailableError";
  }
}

let adapterProbe: Promise<string | undefined> | undefined;

/** Describes the WebGPU adapter, or `undefined` when there is none (probed once per process). */
export function probeWebGpu(): Promise<string | undefined> {
  adapterProbe ??= (async () => {
    const gpu = (navigator as unknown as { gpu?: GPU }).gpu;
    if (!gpu) return undefined;
    try {
      const adapter = await gpu.requestAdapter();
      if (!adapter) return undefined;
      const i = adapter.info;
      const parts = [i.description, i.vendor && `vendor ${i.vendor}`, i.architecture].filter((x) =>
        x
      );
      const fallback = (i as GPUAdapterInfo & { isFallbackAdapter?: boolean }).isFallbackAdapter;
      return (parts.join(", ") || "unnamed adapter") + (fallback ? " (fallback adapter)" : "");
    } catch {
      return undefined;
    }
  })();
  return adapterProbe;
}

/** Whether an adapter description names a CPU (software) renderer such as lavapipe/llvmpipe. */
export function isSoftwareAdapter(description: string): boolean {
  return /llvmpipe|lavapipe|swiftshader|softpipe|fallback adapter/i.test(description);
}

/**
 * Resolves a backend choice on this host and logs it (with the adapter for WebGPU). `probe`
 * describes the WebGPU adapter or returns `undefined` (injectable for tests).
 */
export async function resolveBackend(
  choice: BackendChoice,
  log: (line: string) => void = console.log,
  probe: () => Promise<string | undefined> = probeWebGpu,
): Promise<BackendInfo> {
  if (choice !== "auto" && choice !== "webgpu" && choice !== "wasm") {
    throw new BackendUnavailableError(
      `unknown backend ${JSON.stringify(choice)}: use auto, webgpu or wasm`,
    );
  }
  if (choice === "wasm") {
    log("backend: wasm (CPU, 1 thread)");
    return { backend: "wasm" };
  }
  const adapter = await probe();
  if (adapter && choice === "auto" && isSoftwareAdapter(adapter)) {
    // lavapipe and friends run WebGPU on the CPU ~10x slower than wasm: auto means fast
    log(`backend: wasm (the WebGPU adapter is a CPU renderer: ${adapter}; use webgpu to force it)`);
    return { backend: "wasm" };
  }
  if (adapter) {
    log(`backend: webgpu (adapter: ${adapter})`);
    return { backend: "webgpu", adapter };
  }
  if (choice === "webgpu") {
    throw new BackendUnavailableError(
      "backend webgpu is unavailable: navigator.gpu.requestAdapter() returned no adapter " +
        "(on a CPU-only Debian host install mesa-vulkan-drivers and libvulkan1 for lavapipe; " +
        "on a GPU host make the Vulkan driver visible to the process), or use --backend wasm",
    );
  }
  log("backend: wasm (no WebGPU adapter found)");
  return { backend: "wasm" };
}

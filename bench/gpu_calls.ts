/**
 * Counts the WebGPU API calls this process makes, by wrapping the methods on the prototypes of
 * Deno's WebGPU classes (`GPUComputePassEncoder.dispatchWorkgroups`, `GPUQueue.writeBuffer` and
 * `submit`, `GPUBuffer.mapAsync`, `GPUCommandEncoder.copyBufferToBuffer`,
 * `GPUDevice.createBindGroup`), so every device's calls are seen, onnxruntime-web's included.
 * Works on any adapter (lavapipe too): it counts calls, it does not time the GPU.
 *
 * @module
 */

/** Calls counted since {@link GpuCallCounter.reset} (or since counting started). */
export interface GpuCalls {
  /** `GPUComputePassEncoder.dispatchWorkgroups`: one kernel launch each. */
  dispatches: number;
  /** `GPUQueue.writeBuffer` calls and the bytes they carried. */
  writeBuffers: number;
  writeBytes: number;
  /** `GPUQueue.submit` calls. */
  submits: number;
  /** `GPUBuffer.mapAsync`: read-backs (every download maps a staging buffer). */
  readBacks: number;
  /** `GPUCommandEncoder.copyBufferToBuffer`. */
  copies: number;
  /** `GPUDevice.createBindGroup`. */
  bindGroups: number;
}

/** A live counter; {@link GpuCallCounter.stop} puts the original methods back. */
export interface GpuCallCounter {
  /** The counts so far (a copy). */
  read(): GpuCalls;
  /** Sets every count to zero. */
  reset(): void;
  /** Stops counting (restores the prototypes). */
  stop(): void;
}

function zero(): GpuCalls {
  return {
    dispatches: 0,
    writeBuffers: 0,
    writeBytes: 0,
    submits: 0,
    readBacks: 0,
    copies: 0,
    bindGroups: 0,
  };
}

/** Byte length of a `writeBuffer` call's data argument, honouring its offset/size (in elements). */
function writeLength(data: unknown, size?: number): number {
  if (size !== undefined) {
    const per = ArrayBuffer.isView(data) && "BYTES_PER_ELEMENT" in data
      ? (data as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT
      : 1;
    return size * per;
  }
  if (ArrayBuffer.isView(data)) return data.byteLength;
  if (data instanceof ArrayBuffer || data instanceof SharedArrayBuffer) return data.byteLength;
  return 0;
}

/**
 * Starts counting WebGPU calls in this process. Throws when the process has no WebGPU classes
 * (Deno always has them; an adapter is not needed to install the counter). One counter at a time.
 */
export function countGpuCalls(): GpuCallCounter {
  const g = globalThis as unknown as Record<string, { prototype: Record<string, unknown> }>;
  for (const name of ["GPUComputePassEncoder", "GPUQueue", "GPUBuffer", "GPUCommandEncoder"]) {
    if (!g[name]) throw new Error(`countGpuCalls: this runtime has no ${name}`);
  }
  let counts = zero();
  const restores: (() => void)[] = [];
  const wrap = (
    cls: string,
    method: string,
    count: (args: unknown[]) => void,
  ) => {
    const proto = g[cls]?.prototype;
    if (!proto) return;
    const original = proto[method] as (...args: unknown[]) => unknown;
    if (typeof original !== "function") return;
    proto[method] = function (this: unknown, ...args: unknown[]) {
      count(args);
      return original.apply(this, args);
    };
    restores.push(() => proto[method] = original);
  };
  wrap("GPUComputePassEncoder", "dispatchWorkgroups", () => counts.dispatches++);
  wrap("GPUComputePassEncoder", "dispatchWorkgroupsIndirect", () => counts.dispatches++);
  wrap("GPUQueue", "writeBuffer", (a) => {
    counts.writeBuffers++;
    counts.writeBytes += writeLength(a[2], a[4] as number | undefined);
  });
  wrap("GPUQueue", "submit", () => counts.submits++);
  wrap("GPUBuffer", "mapAsync", () => counts.readBacks++);
  wrap("GPUCommandEncoder", "copyBufferToBuffer", () => counts.copies++);
  wrap("GPUDevice", "createBindGroup", () => counts.bindGroups++);
  return {
    read: () => ({ ...counts }),
    reset: () => {
      counts = zero();
    },
    stop: () => {
      for (const r of restores.reverse()) r();
      restores.length = 0;
    },
  };
}

/**
 * GPU buffers beside onnxruntime-web's WebGPU sessions, on the device those sessions use: storage
 * buffers the engine owns (model inputs uploaded once per evaluation, copies of cached values),
 * GPU-to-GPU copies batched into one command buffer, and read-backs through a reused staging
 * buffer. WebGPU orders `queue.writeBuffer` and `queue.submit` calls as they are made, and an
 * onnxruntime-web run has submitted its work when it resolves, so copies flushed between runs see
 * the previous run's results (WebGPU spec §21.2, queue timeline).
 *
 * @module
 */

import { ort, type Tensor } from "./ort.ts";

/** Element types a GPU tensor here may have, with their byte sizes. */
const ELEMENT_BYTES: Record<string, number> = {
  float32: 4,
  float16: 2,
  int64: 8,
  int32: 4,
  uint32: 4,
  int8: 1,
  uint8: 1,
  bool: 1,
};

/** Bytes of a tensor of `dtype` and `dims` (throws for a type a GPU buffer cannot hold here). */
export function tensorByteLength(dtype: string, dims: readonly number[]): number {
  const size = ELEMENT_BYTES[dtype];
  if (size === undefined) throw new Error(`no GPU buffer layout for ${dtype} tensors`);
  return dims.reduce((a, b) => a * b, 1) * size;
}

/** Buffer sizes are rounded up to 16 bytes, as onnxruntime-web does for its own buffers. */
function padded(bytes: number): number {
  return Math.max(16, Math.ceil(bytes / 16) * 16);
}

/** The device of onnxruntime-web's WebGPU sessions (valid once a WebGPU session was created). */
export async function ortDevice(): Promise<GPUDevice> {
  return await ort.env.webgpu.device as GPUDevice;
}

const STORAGE = 0x80 | 0x04 | 0x08; // GPUBufferUsage.STORAGE | COPY_SRC | COPY_DST

/** A typed array over read-back bytes, as onnxruntime-web's CPU tensors of that type hold them. */
export function typedArrayOf(
  dtype: string,
  bytes: ArrayBuffer,
): ort.Tensor.DataTypeMap[ort.Tensor.GpuBufferDataTypes] {
  switch (dtype) {
    case "float32":
      return new Float32Array(bytes);
    case "float16":
      return new Uint16Array(bytes);
    case "int64":
      return new BigInt64Array(bytes);
    case "int32":
      return new Int32Array(bytes);
    case "uint32":
      return new Uint32Array(bytes);
    case "uint8":
    case "bool":
      return new Uint8Array(bytes);
    default:
      throw new Error(`no typed array for ${dtype} tensors`);
  }
}

/**
 * Storage buffers on one device, recycled by size: a buffer given back is handed out again to the
 * next request of the same padded size instead of allocating a new one. Its tensors can be read
 * back (`getData()`) through `transfers`.
 */
export class GpuBufferPool {
  private free = new Map<number, GPUBuffer[]>();
  private closed = false;

  constructor(readonly device: GPUDevice, private readonly transfers: GpuTransfers) {}

  /** A storage buffer of at least `bytes` bytes (contents undefined when recycled). */
  acquire(bytes: number): GPUBuffer {
    const size = padded(bytes);
    return this.free.get(size)?.pop() ??
      this.device.createBuffer({ size, usage: STORAGE });
  }

  /** Gives a buffer back (destroyed when the pool is closed). */
  release(buffer: GPUBuffer): void {
    if (this.closed) return buffer.destroy();
    let list = this.free.get(buffer.size);
    if (!list) this.free.set(buffer.size, list = []);
    list.push(buffer);
  }

  /** A tensor over a pooled buffer; `dispose()` gives the buffer back, `getData()` reads it. */
  tensor(dtype: string, dims: readonly number[]): Tensor {
    const bytes = tensorByteLength(dtype, dims);
    const buffer = this.acquire(bytes);
    return ort.Tensor.fromGpuBuffer(buffer, {
      dataType: dtype as ort.Tensor.GpuBufferDataTypes,
      dims,
      download: async () => typedArrayOf(dtype, await this.transfers.read(buffer, bytes)),
      dispose: () => this.release(buffer),
    });
  }

  /** Destroys the free buffers; buffers given back later are destroyed at once. */
  close(): void {
    this.closed = true;
    for (const list of this.free.values()) for (const b of list) b.destroy();
    this.free.clear();
  }
}

/** The buffers and transfer queue a WebGPU UNet engine shares with its helpers. */
export interface GpuContext {
  pool: GpuBufferPool;
  transfers: GpuTransfers;
}

/**
 * Transfers on one device in queue order: CPU→GPU writes, GPU→GPU copies and small compute passes
 * (recorded into one command encoder and submitted by {@link flush}, which must run before the next
 * session run that reads them) and read-backs.
 */
export class GpuTransfers {
  private encoder: GPUCommandEncoder | undefined;
  private staging = new Map<number, GPUBuffer>();
  /** Read-backs one at a time: a staging buffer cannot be mapped twice. */
  private reading: Promise<unknown> = Promise.resolve();

  constructor(readonly device: GPUDevice) {}

  /** Writes a CPU tensor's bytes into `dst` (pending copies are submitted first, keeping order). */
  write(dst: GPUBuffer, t: Tensor): void {
    const data = t.data as ArrayBufferView;
    if (!ArrayBuffer.isView(data)) throw new Error(`cannot upload a ${t.type} tensor`);
    const bytes = tensorByteLength(t.type, t.dims);
    if (bytes > dst.size) {
      throw new Error(`upload of ${bytes} bytes into a buffer of ${dst.size}`);
    }
    this.flush();
    const view = new Uint8Array(data.buffer, data.byteOffset, bytes);
    // writeBuffer needs a multiple of 4 bytes, and Deno's rejects SharedArrayBuffer views
    let body = view;
    if (bytes % 4 !== 0 || !(view.buffer instanceof ArrayBuffer)) {
      body = new Uint8Array(Math.ceil(bytes / 4) * 4);
      body.set(view);
    }
    this.device.queue.writeBuffer(dst, 0, body as Uint8Array<ArrayBuffer>);
  }

  /** Records a copy of `bytes` bytes from `src` to `dst` (submitted by {@link flush}). */
  copy(src: GPUBuffer, dst: GPUBuffer, bytes: number): void {
    this.encoder ??= this.device.createCommandEncoder();
    this.encoder.copyBufferToBuffer(src, 0, dst, 0, Math.ceil(bytes / 4) * 4);
  }

  /** Records a compute pass (`record` sets its pipeline, bind groups and dispatches). */
  compute(record: (pass: GPUComputePassEncoder) => void): void {
    this.encoder ??= this.device.createCommandEncoder();
    const pass = this.encoder.beginComputePass();
    record(pass);
    pass.end();
  }

  /** Submits the recorded copies, if any. */
  flush(): void {
    if (!this.encoder) return;
    this.device.queue.submit([this.encoder.finish()]);
    this.encoder = undefined;
  }

  /** Reads `bytes` bytes of `src` back to the CPU (one staging buffer per size, reused). */
  read(src: GPUBuffer, bytes: number): Promise<ArrayBuffer> {
    const run = this.reading.then(() => this.readNow(src, bytes));
    this.reading = run.catch(() => {});
    return run;
  }

  private async readNow(src: GPUBuffer, bytes: number): Promise<ArrayBuffer> {
    const size = padded(bytes);
    let staging = this.staging.get(size);
    if (!staging) {
      staging = this.device.createBuffer({ size, usage: 0x01 | 0x08 }); // MAP_READ | COPY_DST
      this.staging.set(size, staging);
    }
    this.copy(src, staging, Math.min(size, src.size));
    this.flush();
    await staging.mapAsync(0x0001); // GPUMapMode.READ
    try {
      return staging.getMappedRange(0, size).slice(0, bytes);
    } finally {
      staging.unmap();
    }
  }

  /** Destroys the staging buffers. */
  close(): void {
    this.flush();
    for (const b of this.staging.values()) b.destroy();
    this.staging.clear();
  }
}

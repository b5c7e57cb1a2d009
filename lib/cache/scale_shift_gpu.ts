/**
 * The run-time scale-shift correction (`lib/cache/scale_shift.ts`, the paper's §3.4 and this
 * project's history form) on WebGPU, so that reusing a cached block value on a GPU host reads
 * nothing back: one compute dispatch per reused block,
 * `out[n, c, …] = cached[n, c, …] · scale[c] + shift[c] (+ previous[n, c, …] · weight[c])`,
 * on the device of onnxruntime-web's sessions, into a buffer of the engine's pool. Per-channel
 * coefficients are uploaded once per (block, step) entry of a schedule and kept.
 *
 * @module
 */

import type { Tensor } from "../runtime/ort.ts";
import { type GpuContext, tensorByteLength } from "../runtime/gpu.ts";
import { splitDims } from "./scale_shift.ts";
import type { ScaleShift } from "./schedule.ts";

const WORKGROUP = 256;
const MAX_GROUPS = 65535;

const SHADER = /* wgsl */ `
struct Params { channels: u32, hw: u32, total: u32, groupsX: u32, history: u32 }
@group(0) @binding(0) var<storage, read> cached: array<f32>;
@group(0) @binding(1) var<storage, read> previous: array<f32>;
@group(0) @binding(2) var<storage, read> coef: array<f32>;
@group(0) @binding(3) var<storage, read_write> result: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let i = (wg.y * p.groupsX + wg.x) * ${WORKGROUP}u + li;
  if (i >= p.total) { return; }
  let c = (i / p.hw) % p.channels;
  var v = cached[i] * coef[c] + coef[p.channels + c];
  if (p.history == 1u) { v = v + previous[i] * coef[2u * p.channels + c]; }
  result[i] = v;
}
`;

/** Applies scale-shift tables to float32 GPU tensors on one device (see the module doc). */
export class GpuScaleShift {
  private pipeline: GPUComputePipeline;
  private coefficients = new WeakMap<ScaleShift, GPUBuffer>();
  private params = new Map<string, GPUBuffer>();

  constructor(private readonly gpu: GpuContext) {
    const device = gpu.pool.device;
    this.pipeline = device.createComputePipeline({
      layout: "auto",
      compute: { module: device.createShaderModule({ code: SHADER }), entryPoint: "main" },
    });
  }

  /**
   * The corrected value of a stored block value as a new GPU tensor of the pool (dispose it to give
   * its buffer back). `stored` (and `previous`, for the history form) must be float32 GPU tensors
   * laid out [N, C, ...spatial]; throws otherwise, and when the table does not fit the channels.
   */
  apply(stored: Tensor, ss: ScaleShift, previous?: Tensor): Tensor {
    for (const t of previous ? [stored, previous] : [stored]) {
      if (t.location !== "gpu-buffer" || t.type !== "float32") {
        throw new Error(`GpuScaleShift: needs float32 GPU tensors, got ${t.type} on ${t.location}`);
      }
    }
    const total = stored.dims.reduce((a, b) => a * b, 1);
    const [, channels, hw] = splitDims(stored.dims, total, "GpuScaleShift");
    const history = ss.previous !== undefined && previous !== undefined;
    if (
      ss.scale.length !== channels || ss.shift.length !== channels ||
      (history && ss.previous!.length !== channels)
    ) {
      throw new Error(`GpuScaleShift: ${channels} channels, the table has ${ss.scale.length}`);
    }
    if (previous && tensorByteLength("float32", previous.dims) !== total * 4) {
      throw new Error("GpuScaleShift: the previous value's size differs from the stored one's");
    }
    const { pool, transfers } = this.gpu;
    const device = pool.device;
    const out = pool.tensor("float32", stored.dims);
    const groups = Math.ceil(total / WORKGROUP);
    const groupsX = Math.min(groups, MAX_GROUPS);
    const bind = device.createBindGroup({
      layout: this.pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: stored.gpuBuffer as GPUBuffer } },
        { binding: 1, resource: { buffer: (previous ?? stored).gpuBuffer as GPUBuffer } },
        { binding: 2, resource: { buffer: this.coefficientsOf(ss, channels) } },
        { binding: 3, resource: { buffer: out.gpuBuffer as GPUBuffer } },
        {
          binding: 4,
          resource: { buffer: this.paramsOf(channels, hw, total, groupsX, history) },
        },
      ],
    });
    transfers.compute((pass) => {
      pass.setPipeline(this.pipeline);
      pass.setBindGroup(0, bind);
      pass.dispatchWorkgroups(groupsX, Math.ceil(groups / groupsX));
    });
    return out;
  }

  private coefficientsOf(ss: ScaleShift, channels: number): GPUBuffer {
    let buffer = this.coefficients.get(ss);
    if (!buffer) {
      const data = new Float32Array(3 * channels);
      data.set(ss.scale, 0);
      data.set(ss.shift, channels);
      if (ss.previous) data.set(ss.previous, 2 * channels);
      buffer = this.upload(data, 0x80 | 0x08); // STORAGE | COPY_DST
      this.coefficients.set(ss, buffer);
    }
    return buffer;
  }

  private paramsOf(
    channels: number,
    hw: number,
    total: number,
    groupsX: number,
    history: boolean,
  ): GPUBuffer {
    const key = `${channels},${hw},${total},${groupsX},${history}`;
    let buffer = this.params.get(key);
    if (!buffer) {
      const data = Uint32Array.of(channels, hw, total, groupsX, history ? 1 : 0, 0, 0, 0);
      buffer = this.upload(data, 0x40 | 0x08); // UNIFORM | COPY_DST
      this.params.set(key, buffer);
    }
    return buffer;
  }

  private upload(data: Float32Array | Uint32Array, usage: number): GPUBuffer {
    const device = this.gpu.pool.device;
    const buffer = device.createBuffer({ size: Math.max(16, data.byteLength), usage });
    this.gpu.transfers.flush();
    device.queue.writeBuffer(buffer, 0, data as Uint32Array<ArrayBuffer>);
    return buffer;
  }
}

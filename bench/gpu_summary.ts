/**
 * The per-evaluation table of a `bench/gpu_engine.sh` run: reads `gpu_webgpu.json`,
 * `gpu_wasm.json` (bench/gpu_engine.ts) and `gpu_torch_<dtype>.json` (bench/gpu_torch.py) from a
 * results folder and writes `gpu_engine_summary.md` there (also printed): ms per UNet evaluation
 * of the shipped model, uncached and cached, for every WebGPU and wasm variant and every PyTorch
 * row, the WebGPU API calls per evaluation, and issue #13's goals checked against the figures
 * (WebGPU ≤ 10 ms per evaluation, ≥ 5x faster than wasm, within 3x of PyTorch eager). Missing files
 * are left out, saying so.
 *
 *   deno run --allow-read=DIR --allow-write=DIR bench/gpu_summary.ts DIR
 *
 * @module
 */
import { writeFileAtomic } from "../lib/io/atomic.ts";
import type { BenchEngineResult } from "./gpu_engine.ts";

/** What bench/gpu_torch.py writes. */
export interface TorchResult {
  torch: string;
  device: string;
  dtype: string;
  schedule: string;
  skipped_fraction: number;
  ms_per_eval: Record<string, number>;
}

/** The inputs of {@link summarize}; any may be missing. */
export interface SummaryInputs {
  webgpu?: BenchEngineResult;
  wasm?: BenchEngineResult;
  torch: TorchResult[];
}

const ms = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? "—" : x.toFixed(2));

/** The Markdown summary of one run (see the module doc). */
export function summarize(r: SummaryInputs): string {
  const out: string[] = [];
  const head = r.webgpu ?? r.wasm;
  if (head) {
    out.push(
      `${head.model}, one guided image per evaluation (batch 2); ${head.machine}` +
        (r.webgpu?.adapter ? `; WebGPU adapter ${r.webgpu.adapter}` : "") +
        (head.schedule ? `; cached = ${head.solver}-${head.steps} ${head.schedule}` : ""),
      "",
    );
  }
  out.push("| path | variant | ms/eval (uncached) | ms/eval in an image | ms/eval cached |");
  out.push("| --- | --- | --- | --- | --- |");
  for (const [label, res] of [["WebGPU", r.webgpu], ["wasm, 1 thread", r.wasm]] as const) {
    if (!res) {
      out.push(`| ${label} | (no result) | | | |`);
      continue;
    }
    for (const row of res.rows) {
      out.push(
        `| ${label} | ${row.variant} | ${ms(row.eval_ms)} | ${ms(row.image_eval_ms)} | ${
          ms(row.cached_image_eval_ms)
        } |`,
      );
    }
  }
  for (const t of r.torch) {
    const m = t.ms_per_eval;
    out.push(
      `| PyTorch ${t.torch} ${t.dtype} (${t.device}) | eager | ${ms(m.eager)} | | ${
        ms(m.eager_cached)
      } |`,
    );
    if (m.cuda_graph !== undefined) {
      out.push(
        `| PyTorch ${t.torch} ${t.dtype} (${t.device}) | CUDA graphs | ${ms(m.cuda_graph)} | | ${
          ms(m.cuda_graph_cached)
        } |`,
      );
    }
  }
  if (r.torch.length === 0) out.push("| PyTorch | (no result) | | | |");
  if (r.webgpu) {
    out.push("", "WebGPU API calls per evaluation:", "");
    out.push(
      "| variant | dispatches | writeBuffer | submits | read-backs | copies | bind groups |",
    );
    out.push("| --- | --- | --- | --- | --- | --- | --- |");
    for (const row of r.webgpu.rows) {
      const c = row.calls;
      if (!c) continue;
      out.push(
        `| ${row.variant} | ${c.dispatches} | ${c.writeBuffers} | ${c.submits} | ${c.readBacks} | ${c.copies} | ${c.bindGroups} |`,
      );
    }
  }
  const gpu = r.webgpu?.rows.find((x) => x.variant === "captured") ?? r.webgpu?.rows[0];
  const cpuBest = r.wasm?.rows.reduce((a, b) => (b.eval_ms < a.eval_ms ? b : a));
  const eager = r.torch.find((t) => t.dtype === "float32")?.ms_per_eval.eager;
  out.push("", "Goals (issue #13):", "");
  if (gpu) {
    out.push(
      `- WebGPU ≤ 10 ms per evaluation: ${ms(gpu.eval_ms)} ms (${gpu.variant}) → ${
        gpu.eval_ms <= 10 ? "met" : "missed"
      }`,
    );
  }
  if (gpu && cpuBest) {
    const x = cpuBest.eval_ms / gpu.eval_ms;
    out.push(
      `- ≥ 5x faster than wasm (${cpuBest.variant}, ${ms(cpuBest.eval_ms)} ms): ${
        x.toFixed(2)
      }x → ${x >= 5 ? "met" : "missed"}`,
    );
  }
  if (gpu && eager !== undefined) {
    const x = gpu.eval_ms / eager;
    out.push(
      `- within 3x of PyTorch eager float32 (${ms(eager)} ms): ${x.toFixed(2)}x → ${
        x <= 3 ? "met" : "missed"
      }`,
    );
  }
  return out.join("\n") + "\n";
}

async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(path)) as T;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw new Error(`${path}: ${(e as Error).message}`);
  }
}

if (import.meta.main) {
  const dir = Deno.args[0];
  if (!dir || Deno.args.length > 1) {
    console.error("usage: deno run --allow-read=DIR --allow-write=DIR bench/gpu_summary.ts DIR");
    Deno.exit(2);
  }
  try {
    const torch: TorchResult[] = [];
    for (const dtype of ["float32", "float16"]) {
      const t = await readJson<TorchResult>(`${dir}/gpu_torch_${dtype}.json`);
      if (t) torch.push(t);
    }
    const text = summarize({
      webgpu: await readJson<BenchEngineResult>(`${dir}/gpu_webgpu.json`),
      wasm: await readJson<BenchEngineResult>(`${dir}/gpu_wasm.json`),
      torch,
    });
    await writeFileAtomic(`${dir}/gpu_engine_summary.md`, text);
    console.log(text);
  } catch (e) {
    console.error(`bench/gpu_summary.ts: ${e instanceof Error ? e.message : String(e)}`);
    Deno.exit(1);
  }
}

import { benchSplit } from "./bench/split.ts";
const model = "/tmp/h2/real/unet.onnx";
for (const name of ["all", "one", "all", "one"]) {
  const r = await benchSplit({ model, plan: `/tmp/h2/plans/b_${name}`, reps: 60, warmup: 15, log: () => {} });
  console.log(name, r.segments, "cpu", r.monolithicCpuMs.toFixed(2), r.splitCpuMs.toFixed(2), ((r.cpuRatio-1)*100).toFixed(1), "med", r.monolithicMs.toFixed(2), r.splitMs.toFixed(2), r.overheadPct.toFixed(1), "min", r.monolithicMinMs.toFixed(2), r.splitMinMs.toFixed(2), ((r.splitMinMs/r.monolithicMinMs-1)*100).toFixed(1));
}

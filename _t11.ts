import { splitModel } from "./lib/onnx/split.ts";
import { benchSplit } from "./bench/split.ts";
const model = "/tmp/h2/real/unet.onnx";
for (const [name, pat] of [["one", "^mid_block\\.attentions\\.0$"], ["all", undefined]]) {
  await splitModel(model, { out: `/tmp/h2/plans/b_${name}`, blockPattern: pat });
  const r = await benchSplit({ model, plan: `/tmp/h2/plans/b_${name}`, reps: 40, log: () => {} });
  console.log(name, r.segments, "cpu", r.monolithicCpuMs.toFixed(2), r.splitCpuMs.toFixed(2), ((r.cpuRatio-1)*100).toFixed(1), "med", r.monolithicMs.toFixed(2), r.splitMs.toFixed(2), r.overheadPct.toFixed(1), "min", r.monolithicMinMs.toFixed(2), r.splitMinMs.toFixed(2), ((r.splitMinMs/r.monolithicMinMs-1)*100).toFixed(1));
}

import { FP32_OPS } from "./lib/onnx/quantize.ts";
import { splitModel } from "./lib/onnx/split.ts";
import { UNetEngine } from "./lib/unet/engine.ts";
import { createSession } from "./lib/runtime/backend.ts";
import { ort } from "./lib/runtime/ort.ts";
import { toFloat32 } from "./lib/runtime/tensors.ts";
for (const op of Deno.args) FP32_OPS.add(op);
await splitModel("tests/fixtures/tiny_unet.onnx", { out: "/tmp/h2/plans/f16x", precision: "fp16" });
const mono = await createSession(await Deno.readFile("tests/fixtures/tiny_unet.onnx"), "webgpu");
const eng = await UNetEngine.load("/tmp/h2/plans/f16x", { backend: "webgpu", log: () => {} });
let worst = 0;
for (const seed of [1, 2, 3]) {
  let s = seed; const rnd = () => ((s = (s * 16807) % 2147483647) / 2147483647) * 2 - 1;
  const feeds = { sample: new ort.Tensor("float32", Float32Array.from({ length: 2*4*8*8 }, rnd), [2,4,8,8]), timestep: new ort.Tensor("int64", BigInt64Array.of(BigInt(100 + seed*250)), [1]), encoder_hidden_states: new ort.Tensor("float32", Float32Array.from({ length: 2*4*16 }, rnd), [2,4,16]) };
  const a = await toFloat32((await mono.run(feeds)).out_sample);
  const b = await toFloat32((await eng.run(feeds)).out_sample);
  let d = 0, m = 0; for (let i = 0; i < a.length; i++) { d = Math.max(d, Math.abs(a[i]-b[i])); m = Math.max(m, Math.abs(a[i])); }
  worst = Math.max(worst, d/m);
}
console.log(Deno.args.join(","), worst.toExponential(2));

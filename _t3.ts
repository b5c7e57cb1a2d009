import { splitModel } from "./lib/onnx/split.ts";
import { UNetEngine } from "./lib/unet/engine.ts";
import { ort } from "./lib/runtime/ort.ts";
import { createSession } from "./lib/runtime/backend.ts";
import { toFloat32 } from "./lib/runtime/tensors.ts";
const backend = (Deno.args[0] ?? "wasm") as "wasm" | "webgpu";
const precision = (Deno.args[1] ?? "fp32") as "fp32";
const mode = (Deno.args[2] ?? "residual") as "residual";
let t = performance.now();
const { plan } = await splitModel("tests/fixtures/tiny_unet.onnx", { out: `/tmp/h2/plans/p_${precision}_${mode}`, precision, mode, log: console.log });
console.log("split ms", performance.now() - t);
t = performance.now();
const eng = await UNetEngine.load(`/tmp/h2/plans/p_${precision}_${mode}`, { backend });
console.log("load ms", performance.now() - t);
const mono = await createSession(await Deno.readFile("tests/fixtures/tiny_unet.onnx"), backend);
let seed = 1; const rnd = () => { seed = (seed * 16807) % 2147483647; return seed / 2147483647 * 2 - 1; };
const sample = new ort.Tensor("float32", Float32Array.from({length: 2*4*8*8}, rnd), [2,4,8,8]);
const ts = new ort.Tensor("int64", BigInt64Array.from([637n]), [1]);
const ehs = new ort.Tensor("float32", Float32Array.from({length: 2*4*16}, rnd), [2,4,16]);
const feeds = { sample, timestep: ts, encoder_hidden_states: ehs };
const a = await toFloat32((await mono.run(feeds)).out_sample);
for (let k = 0; k < 3; k++) {
t = performance.now();
const b = await toFloat32((await eng.run(feeds)).out_sample);
console.log("run ms", performance.now() - t);
let md = 0, ma = 0; for (let i = 0; i < a.length; i++) { md = Math.max(md, Math.abs(a[i]-b[i])); ma = Math.max(ma, Math.abs(a[i])); }
console.log("max diff", md, "max abs", ma);
}
console.log(eng.timings().map(x => `${x.name}:${x.lastMs?.toFixed(1)}`).join(" "));

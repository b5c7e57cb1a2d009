import { UNetEngine } from "./lib/unet/engine.ts";
import { ort } from "./lib/runtime/ort.ts";
const eng = await UNetEngine.load("/tmp/h2/plans/b_all", { backend: "wasm", log: () => {} });
const dims = (s) => s.shape.map((d) => typeof d === "number" ? d : 2);
const feeds = {};
for (const i of eng.inputs) feeds[i.name] = i.dtype === "int64" ? new ort.Tensor("int64", BigInt64Array.from([500n]), dims(i)) : new ort.Tensor("float32", Float32Array.from({length: dims(i).reduce((a,b)=>a*b)}, () => Math.random()-0.5), dims(i));
for (let i = 0; i < 15; i++) await eng.run(feeds);
const gaps = [];
for (let i = 0; i < 40; i++) {
  const t0 = performance.now();
  await eng.run(feeds);
  const wall = performance.now() - t0;
  const inside = eng.timings().reduce((a, t) => a + (t.lastMs ?? 0), 0);
  gaps.push([wall, inside]);
}
gaps.sort((a, b) => a[0] - b[0]);
console.log(gaps.slice(0, 10).map(([w, i]) => `${w.toFixed(2)}/${i.toFixed(2)}`).join(" "));

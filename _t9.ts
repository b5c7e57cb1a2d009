import { splitModel } from "./lib/onnx/split.ts";
const ort = await import("onnxruntime-web/wasm");
ort.env.wasm.numThreads = 1;
const model = Deno.args[0]; const dir = Deno.args[1];
await splitModel(model, { out: dir });
const plan = JSON.parse(await Deno.readTextFile(dir + "/plan.json"));
const opt = { executionProviders: ["wasm"], graphOptimizationLevel: "all" } as const;
const sessions = [];
for (const s of plan.segments) sessions.push(await ort.InferenceSession.create(await Deno.readFile(`${dir}/${s.file}`), opt));
const mono = await ort.InferenceSession.create(await Deno.readFile(model), opt);
const dims = (s) => s.shape.map((d) => typeof d === "number" ? d : 2);
const feeds = {};
for (const i of plan.inputs) feeds[i.name] = i.dtype === "int64" ? new ort.Tensor("int64", BigInt64Array.from([500n]), dims(i)) : new ort.Tensor("float32", Float32Array.from({length: dims(i).reduce((a,b)=>a*b)}, () => Math.random()-0.5), dims(i));
async function runSplit() {
  const held = new Map(Object.entries(feeds));
  const per = [];
  for (const [i, s] of plan.segments.entries()) {
    const inp = {}; for (const x of s.inputs) inp[x.name] = held.get(x.name);
    const t0 = performance.now();
    const out = await sessions[i].run(inp);
    per.push(performance.now() - t0);
    for (const [k, v] of Object.entries(out)) held.set(k, v);
  }
  return per;
}
for (let i = 0; i < 3; i++) { await mono.run(feeds); await runSplit(); }
const M = [], S = [], P = plan.segments.map(() => []);
for (let i = 0; i < 40; i++) {
  let t = performance.now(); await mono.run(feeds); M.push(performance.now() - t);
  t = performance.now(); const per = await runSplit(); S.push(performance.now() - t); per.forEach((p, j) => P[j].push(p));
}
const mn = (a) => Math.min(...a);
const med = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
console.log("mono min", mn(M).toFixed(2), "med", med(M).toFixed(2), "split min", mn(S).toFixed(2), "med", med(S).toFixed(2), "sum seg mins", P.map(mn).reduce((a,b)=>a+b).toFixed(2));
console.log(plan.segments.map((s, j) => `${s.name}:${mn(P[j]).toFixed(2)}`).join(" "));

const which = Deno.args[0];
const ort = which === "wasm" ? await import("onnxruntime-web/wasm") : await import("onnxruntime-web/webgpu");
ort.env.wasm.numThreads = 1;
const dir = "/tmp/h2/plans/p_fp32_residual";
const plan = JSON.parse(await Deno.readTextFile(dir + "/plan.json"));
const sessions = [];
for (const s of plan.segments) sessions.push(await ort.InferenceSession.create(await Deno.readFile(`${dir}/${s.file}`), { executionProviders: ["wasm"], graphOptimizationLevel: "all" }));
const mono = await ort.InferenceSession.create(await Deno.readFile("tests/fixtures/tiny_unet.onnx"), { executionProviders: ["wasm"] });
const feeds = { sample: new ort.Tensor("float32", new Float32Array(2*4*8*8).fill(0.1), [2,4,8,8]), timestep: new ort.Tensor("int64", BigInt64Array.from([500n]), [1]), encoder_hidden_states: new ort.Tensor("float32", new Float32Array(2*4*16).fill(0.2), [2,4,16]) };
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
for (let i = 0; i < 5; i++) { await mono.run(feeds); await runSplit(); }
const M = [], S = [], P = plan.segments.map(() => []);
for (let i = 0; i < 60; i++) {
  let t = performance.now(); await mono.run(feeds); M.push(performance.now() - t);
  t = performance.now(); const per = await runSplit(); S.push(performance.now() - t); per.forEach((p, j) => P[j].push(p));
}
const med = (a) => a.sort((x, y) => x - y)[0];
console.log(which, "mono", med(M).toFixed(2), "split", med(S).toFixed(2), "min", Math.min(...M).toFixed(2), Math.min(...S).toFixed(2));
console.log(plan.segments.map((s, j) => `${s.name}:${med(P[j]).toFixed(2)}`).join(" "));

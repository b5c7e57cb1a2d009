const which = Deno.args[0];
const ort = which === "wasm" ? await import("onnxruntime-web/wasm") : which === "node" ? await import("onnxruntime-web") : await import("onnxruntime-web/webgpu");
ort.env.wasm.numThreads = 1;
const mono = await ort.InferenceSession.create(await Deno.readFile(Deno.args[1] ?? "tests/fixtures/tiny_unet.onnx"), { executionProviders: ["wasm"] });
const feeds = { sample: new ort.Tensor("float32", new Float32Array(2*4*8*8).fill(0.1), [2,4,8,8]), timestep: new ort.Tensor("int64", BigInt64Array.from([500n]), [1]), encoder_hidden_states: new ort.Tensor("float32", new Float32Array(2*4*16).fill(0.2), [2,4,16]) };
for (let i = 0; i < 5; i++) await mono.run(feeds);
const M = [];
for (let i = 0; i < 40; i++) { const t = performance.now(); await mono.run(feeds); M.push(performance.now() - t); }
M.sort((a,b)=>a-b);
console.log(which, "min", M[0].toFixed(2), "p25", M[10].toFixed(2), "med", M[20].toFixed(2));

import * as A from "onnxruntime-web/webgpu";
import * as B from "onnxruntime-web/wasm";
A.env.wasm.numThreads = 1; B.env.wasm.numThreads = 1;
console.log("same Tensor class", A.Tensor === B.Tensor);
const s = await B.InferenceSession.create(await Deno.readFile("tests/fixtures/tiny_unet.onnx"), { executionProviders: ["wasm"] });
const feeds = { sample: new A.Tensor("float32", new Float32Array(2*4*8*8).fill(0.1), [2,4,8,8]), timestep: new A.Tensor("int64", BigInt64Array.from([500n]), [1]), encoder_hidden_states: new A.Tensor("float32", new Float32Array(2*4*16).fill(0.2), [2,4,16]) };
const r = await s.run(feeds);
console.log(r.out_sample.data.slice(0,3), r.out_sample instanceof A.Tensor, r.out_sample instanceof B.Tensor);

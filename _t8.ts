import { encodeModel, DataType } from "./lib/onnx/model.ts";
const ort = await import("onnxruntime-web/wasm");
ort.env.wasm.numThreads = 1;
const vi = (name: string) => ({ name, type: { tensor: { elemType: DataType.FLOAT, shape: [{ value: 2 }, { value: 8 }, { value: 8 }, { value: 8 }] } } });
const m = encodeModel({ irVersion: 8, opsetImport: [{ domain: "", version: 17 }], metadataProps: [], graph: { name: "g", node: [{ name: "n", opType: "Relu", domain: "", input: ["x"], output: ["y"], attribute: [] }], initializer: [], input: [vi("x")], output: [vi("y")], valueInfo: [] } });
const s = await ort.InferenceSession.create(m, { executionProviders: ["wasm"] });
const x = new ort.Tensor("float32", new Float32Array(1024).fill(1), [2, 8, 8, 8]);
for (let i = 0; i < 200; i++) await s.run({ x });
const T = [];
for (let i = 0; i < 500; i++) { const t = performance.now(); await s.run({ x }); T.push(performance.now() - t); }
T.sort((a, b) => a - b);
console.log("relu run min", T[0].toFixed(3), "med", T[250].toFixed(3));

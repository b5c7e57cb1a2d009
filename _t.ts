import { decodeModel } from "./lib/onnx/model.ts";
import { partitionGraph, DEFAULT_BLOCK_PATTERN } from "./lib/onnx/partition.ts";
import { inferGraph } from "./lib/onnx/infer.ts";
const m = decodeModel(await Deno.readFile("tests/fixtures/tiny_unet.onnx"));
for (const mode of ["residual", "output"] as const) {
const t = performance.now();
const parts = partitionGraph(m, { mode, blockPattern: new RegExp(DEFAULT_BLOCK_PATTERN) });
console.log(mode, performance.now() - t);
const info = inferGraph(m.graph);
for (const p of parts) console.log(p.name, p.nodes.length, p.initializers.length, "in:", p.inputs.map(x=>x+JSON.stringify(info.get(x)?.shape)).join(" "), "out:", p.outputs.map(x=>x+JSON.stringify(info.get(x)?.shape)+info.get(x)?.elemType).join(" "), p.cached ?? "", p.blockInput ?? "");
}

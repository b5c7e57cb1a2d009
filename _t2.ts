import { decodeModel } from "./lib/onnx/model.ts";
import { inferGraph } from "./lib/onnx/infer.ts";
const m = decodeModel(await Deno.readFile("tests/fixtures/tiny_unet.onnx"));
const info = inferGraph(m.graph);
let c = 0;
for (const n of m.graph.node) {
  if (n.name.split("/").length > 3 || n.name.startsWith("/down") || n.opType === "Identity" || n.opType==="Constant") continue;
  console.log(n.name, n.opType, n.input.map(i => JSON.stringify(info.get(i)?.shape)+ (info.get(i)?.value? "v"+JSON.stringify(info.get(i)?.value):"")).join(" | "), "=>", JSON.stringify(info.get(n.output[0])));
  if (++c > 40) break;
}

import { assert, assertEquals } from "./_assert.ts";
import { DataType, decodeModel, encodeModel, type Graph, type Model } from "../lib/onnx/model.ts";
import { DEFAULT_BLOCK_PATTERN, splitModel } from "../lib/onnx/split.ts";
import { blockOfName, partitionGraph, scopeOf } from "../lib/onnx/partition.ts";
import { sha256File } from "../lib/io/hash.ts";
import { isExternal } from "../lib/onnx/tensor.ts";
import { validateSplitManifest } from "../lib/unet/split_manifest.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url).pathname;
const FIXTURE = `${FIXTURES}tiny_unet.onnx`;
const BLOCKS = [
  "down_blocks.0.attentions.0",
  "down_blocks.1.attentions.0",
  "mid_block.attentions.0",
  "up_blocks.1.attentions.0",
  "up_blocks.1.attentions.1",
  "up_blocks.2.attentions.0",
  "up_blocks.2.attentions.1",
];

async function rejects(p: Promise<unknown>, text: string): Promise<Error> {
  try {
    await p;
  } catch (e) {
    const err = e as Error;
    if (!err.message.includes(text)) {
      throw new Error(`expected an error including ${JSON.stringify(text)}, got: ${err.message}`);
    }
    return err;
  }
  throw new Error(`expected a rejection including ${JSON.stringify(text)}`);
}

async function listDir(dir: string): Promise<string[]> {
  const names = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

async function withTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "split-test-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("module paths come from node names; the pattern picks the shortest matching scope", () => {
  const re = new RegExp(DEFAULT_BLOCK_PATTERN);
  assertEquals(scopeOf("/down_blocks.0/attentions.1/proj_in/Conv"), [
    "down_blocks.0",
    "attentions.1",
    "proj_in",
  ]);
  assertEquals(scopeOf("Constant_12"), []);
  assertEquals(
    blockOfName("/down_blocks.0/attentions.1/transformer_blocks.0/attn1/to_q/MatMul", re),
    "down_blocks.0.attentions.1",
  );
  assertEquals(blockOfName("/mid_block/attentions.0/Add", re), "mid_block.attentions.0");
  assertEquals(blockOfName("/down_blocks.0/resnets.0/conv1/Conv", re), undefined);
  assertEquals(blockOfName("/up_blocks.1/Concat", re), undefined);
  assertEquals(blockOfName("Identity_3", re), undefined);
});

Deno.test("the fixture splits into glue, block, …, glue with residual outputs and verified files", async () => {
  await withTemp(async (tmp) => {
    const out = `${tmp}/manifest`;
    const { manifest } = await splitModel(FIXTURE, { out });
    assertEquals(JSON.parse(await Deno.readTextFile(`${out}/split.json`)), manifest);
    validateSplitManifest(manifest);
    assertEquals(manifest.mode, "residual");
    assertEquals(manifest.precision, "fp32");
    assertEquals(manifest.source.file, "tiny_unet.onnx");
    assertEquals(manifest.source.sha256, await sha256File(FIXTURE));
    assertEquals(manifest.inputs.map((i) => [i.name, i.dtype, i.shape]), [
      ["sample", "float32", ["batch", 4, 8, 8]],
      ["timestep", "int64", [1]],
      ["encoder_hidden_states", "float32", ["batch", 4, 16]],
    ]);
    assertEquals(manifest.segments.filter((s) => s.kind === "block").map((s) => s.name), BLOCKS);
    manifest.segments.forEach((s, i) =>
      assertEquals(s.kind, i % 2 === 0 ? "glue" : "block", s.name)
    );
    assertEquals(manifest.segments.length, 2 * BLOCKS.length + 1);
    assertEquals(
      await listDir(out),
      [...manifest.segments.map((s) => s.file), "split.json"].sort(),
    );
    for (const s of manifest.segments) {
      assertEquals(await sha256File(`${out}/${s.file}`), s.sha256, s.file);
    }

    const produced = new Set(manifest.inputs.map((i) => i.name));
    for (const [i, s] of manifest.segments.entries()) {
      for (const t of s.inputs) {
        assert(produced.has(t.name), `${s.name} reads ${t.name} before it exists`);
      }
      for (const t of s.outputs) produced.add(t.name);
      if (s.kind !== "block") continue;
      // the residual is the proj_out output; the residual Add now starts the next glue
      assertEquals(s.outputs.map((o) => o.name), [s.cached]);
      assertEquals(s.cached, `/${s.name.replace(/\.(attentions)/, "/$1")}/proj_out/Conv_output_0`);
      assert(s.inputs.some((t) => t.name === s.blockInput), "the block reads its input");
      assertEquals(s.outputs[0].dtype, "float32");
      assertEquals(s.outputs[0].shape[0], "batch");
      assertEquals(s.outputs[0].shape.length, 4);
      const next = decodeModel(await Deno.readFile(`${out}/${manifest.segments[i + 1].file}`));
      const add = next.graph.node.find((n) =>
        n.name === `/${s.name.replace(/\.(attentions)/, "/$1")}/Add`
      );
      assert(add && add.input.includes(s.cached!) && add.input.includes(s.blockInput!));
    }
    assertEquals(manifest.segments[1].outputs[0].shape, ["batch", 8, 8, 8]);
    assert(produced.has("out_sample"));

    // every computing node of the source is in exactly one segment; constants may be copied
    const src = decodeModel(await Deno.readFile(FIXTURE));
    const count = new Map<string, number>();
    for (const s of manifest.segments) {
      const m = decodeModel(await Deno.readFile(`${out}/${s.file}`));
      for (const n of m.graph.node) count.set(n.name, (count.get(n.name) ?? 0) + 1);
      assertEquals(m.graph.input.map((v) => v.name), s.inputs.map((t) => t.name));
      assertEquals(m.graph.output.map((v) => v.name), s.outputs.map((t) => t.name));
    }
    // …and the batch size of encoder_hidden_states, which the exporter computes once in the
    // first block and shares with the others, is recomputed in each block that reads it
    const shared = ["Shape_3", "Gather_3"].map((x) =>
      `/down_blocks.0/attentions.0/transformer_blocks.0/attn2/${x}`
    );
    for (const n of src.graph.node) {
      const c = count.get(n.name) ?? 0;
      if (n.opType === "Constant" || n.opType === "Identity") assert(c >= 1, n.name);
      else if (shared.includes(n.name)) assertEquals(c, BLOCKS.length, n.name);
      else assertEquals(c, 1, n.name);
    }
  });
});

Deno.test("output mode caches the whole block output", async () => {
  await withTemp(async (tmp) => {
    const { manifest } = await splitModel(FIXTURE, { out: `${tmp}/manifest`, mode: "output" });
    assertEquals(manifest.mode, "output");
    for (const s of manifest.segments.filter((x) => x.kind === "block")) {
      assertEquals(s.cached, `/${s.name.replace(/\.(attentions)/, "/$1")}/Add_output_0`);
      assertEquals(s.outputs.map((o) => o.name), [s.cached]);
      assert(s.blockInput?.endsWith("_output_0"));
    }
  });
});

Deno.test("a model with external data splits into the same segment files", async () => {
  await withTemp(async (tmp) => {
    const a = await splitModel(FIXTURE, { out: `${tmp}/a` });
    const b = await splitModel(`${FIXTURES}tiny_unet_external.onnx`, { out: `${tmp}/b` });
    assertEquals(
      b.manifest.segments.map((s) => s.sha256),
      a.manifest.segments.map((s) => s.sha256),
    );
  });
});

Deno.test("segments over the size threshold keep their weights in a .weights file", async () => {
  await withTemp(async (tmp) => {
    const out = `${tmp}/manifest`;
    const { manifest } = await splitModel(`${FIXTURES}tiny_unet_external.onnx`, {
      out,
      externalThreshold: 20_000,
    });
    const withWeights = manifest.segments.filter((s) => s.externalData);
    assert(withWeights.length >= 2 && withWeights.length < manifest.segments.length);
    for (const s of withWeights) {
      const [x] = s.externalData!;
      assertEquals(x.file, s.file.replace(".onnx", ".weights"));
      assertEquals(await sha256File(`${out}/${x.file}`), x.sha256);
      const m = decodeModel(await Deno.readFile(`${out}/${s.file}`));
      const ext = m.graph.initializer.filter(isExternal);
      assert(ext.length > 0);
      for (const t of ext) {
        assertEquals(t.externalData?.find((e) => e.key === "location")?.value, x.file);
      }
    }
  });
});

Deno.test("bad inputs are refused with clear errors and leave nothing behind", async () => {
  await withTemp(async (tmp) => {
    const out = `${tmp}/manifest`;
    await Deno.writeTextFile(`${tmp}/notes.onnx`, "this is not a model\n");
    await rejects(splitModel(`${tmp}/notes.onnx`, { out }), "not an ONNX model");
    await rejects(splitModel(`${tmp}/absent.onnx`, { out }), "cannot read model");
    const none = await rejects(
      splitModel(FIXTURE, { out, blockPattern: "^encoder\\.layers\\.\\d+$" }),
      "no node matches the block pattern",
    );
    assert(
      none.message.includes("down_blocks.0.resnets.0"),
      "the error shows what module paths look like",
    );
    assertEquals(none.name, "SplitError");
    await rejects(
      splitModel(FIXTURE, { out, blockPattern: "(" }),
      "not a valid regular expression",
    );
    // proj_out alone ends in a Conv: no residual Add to move
    await rejects(
      splitModel(FIXTURE, { out, blockPattern: "^down_blocks\\.0\\.attentions\\.0\\.proj_out$" }),
      "does not end in a residual Add",
    );
    assertEquals(await listDir(tmp), ["notes.onnx"]);
    // …which output mode accepts
    await splitModel(FIXTURE, {
      out,
      mode: "output",
      blockPattern: "^down_blocks\\.0\\.attentions\\.0\\.proj_out$",
    });
  });
});

Deno.test("a cut that would leave a dangling tensor is refused", async () => {
  await withTemp(async (tmp) => {
    // the fixture plus a graph output that reads a tensor inside a block
    const m = decodeModel(await Deno.readFile(FIXTURE));
    const inner = "/down_blocks.0/attentions.0/proj_in/Conv_output_0";
    m.graph.node.push({
      name: "/probe/Identity",
      opType: "Identity",
      domain: "",
      input: [inner],
      output: ["probe"],
      attribute: [],
    });
    m.graph.output.push({ name: "probe", type: { tensor: { elemType: DataType.FLOAT } } });
    await Deno.writeFile(`${tmp}/probe.onnx`, encodeModel(m));
    const e = await rejects(
      splitModel(`${tmp}/probe.onnx`, { out: `${tmp}/manifest` }),
      "dangling tensor",
    );
    assert(
      e.message.includes(inner) && e.message.includes("down_blocks.0.attentions.0"),
      e.message,
    );
    assertEquals(await listDir(tmp), ["probe.onnx"]);
  });
});

Deno.test("a block whose output flows back into it is refused as not contiguous", () => {
  const f = (name: string) => ({
    name,
    type: { tensor: { elemType: DataType.FLOAT, shape: [{ value: 2 }] } },
  });
  const g: Graph = {
    name: "g",
    node: [
      { name: "/blk.0/A", opType: "Relu", domain: "", input: ["x"], output: ["a"], attribute: [] },
      { name: "/glue/B", opType: "Neg", domain: "", input: ["a"], output: ["b"], attribute: [] },
      { name: "/blk.0/C", opType: "Relu", domain: "", input: ["b"], output: ["c"], attribute: [] },
      { name: "/glue/D", opType: "Neg", domain: "", input: ["a"], output: ["y"], attribute: [] },
    ],
    initializer: [],
    input: [f("x")],
    output: [f("y")],
    valueInfo: [],
  };
  const model: Model = {
    irVersion: 8,
    opsetImport: [{ domain: "", version: 17 }],
    graph: g,
    metadataProps: [],
  };
  let message = "";
  try {
    partitionGraph(model, { mode: "output", blockPattern: /^blk\.\d+$/ });
  } catch (e) {
    message = (e as Error).message;
  }
  assert(message.includes("blk.0 is not a contiguous cut"), message);
  // a missing producer is a dangling tensor too
  const broken = {
    ...model,
    graph: { ...g, node: [{ ...g.node[0], input: ["nowhere"] }, g.node[3]] },
  };
  message = "";
  try {
    partitionGraph(broken, { mode: "output", blockPattern: /^blk\.\d+$/ });
  } catch (e) {
    message = (e as Error).message;
  }
  assert(message.includes("dangling tensor nowhere"), message);
});

Deno.test("a failure while writing leaves no partial folder", async () => {
  await withTemp(async (tmp) => {
    // the external-data model without its weights file: fails after writing has started
    await Deno.copyFile(`${FIXTURES}tiny_unet_external.onnx`, `${tmp}/m.onnx`);
    await rejects(
      splitModel(`${tmp}/m.onnx`, { out: `${tmp}/manifest` }),
      "tiny_unet_external.weights cannot be opened",
    );
    assertEquals(await listDir(tmp), ["m.onnx"]);
  });
});

Deno.test("an earlier manifest is replaced; any other folder is left alone", async () => {
  await withTemp(async (tmp) => {
    const out = `${tmp}/manifest`;
    await splitModel(FIXTURE, { out, mode: "output" });
    await Deno.writeTextFile(`${out}/stale.txt`, "from before");
    const { manifest } = await splitModel(FIXTURE, { out });
    assertEquals(manifest.mode, "residual");
    assert(!(await listDir(out)).includes("stale.txt"));
    assertEquals(await listDir(tmp), ["manifest"]);

    const other = `${tmp}/photos`;
    await Deno.mkdir(other);
    await Deno.writeTextFile(`${other}/cat.txt`, "meow");
    await rejects(splitModel(FIXTURE, { out: other }), "is not a split folder");
    assertEquals(await listDir(other), ["cat.txt"]);
  });
});

/**
 * Partitions a UNet graph into an ordered list of segments: one per cacheable block (nodes whose
 * module path matches the block pattern) and the always-run glue between them. Pure graph logic,
 * no I/O: {@link partitionGraph} returns node lists and boundary tensor names; `split.ts` writes
 * them out.
 *
 * Rules:
 * - A node belongs to the block whose module path (the node name's scope, `/down_blocks.0/
 *   attentions.1/…` → `down_blocks.0.attentions.1`) is the shortest prefix matching the pattern.
 * - Unscoped nodes (`Identity_12`, `Constant_7`) go by data flow: to a block when all their
 *   consumers are in it, else to glue. Constant-valued nodes (`Constant`, `Identity` of an
 *   initializer) are copied into every segment that reads them, so constants never cross a cut.
 * - Glue slot k runs after block k−1. A glue node runs as late as its readers allow (beside
 *   its use), so few tensors cross segments.
 * - Integer shape arithmetic inside a block that later blocks also read (the exporter shares
 *   common subexpressions) is copied into its readers when it depends on graph inputs only,
 *   else hoisted into the glue before the block.
 * - Residual mode: the block's final `Add` (block input + residual) moves to the following glue,
 *   and the block segment outputs the residual.
 *
 * @module
 */

import type { CacheMode } from "../unet/split_manifest.ts";
import { inferGraph } from "./infer.ts";
import { DataType, type Graph, isStd, type Model, type Node, type TensorProto } from "./model.ts";

/** The default cacheable blocks: diffusers' SpatialTransformer blocks, as in the paper. */
export const DEFAULT_BLOCK_PATTERN = String
  .raw`^(down_blocks\.\d+|up_blocks\.\d+|mid_block)\.attentions\.\d+$`;

/** A refusal the user can act on (bad model, pattern, cut); its message is for people. */
export class SplitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SplitError";
  }
}

/** One segment of a partition. */
export interface SegmentPart {
  /** `glue_00`, … or the block's module path. */
  name: string;
  kind: "glue" | "block";
  /** Nodes in topological order (shared with the source model; do not mutate). */
  nodes: Node[];
  /** Initializers the nodes read (shared with the source model). */
  initializers: TensorProto[];
  /** Tensors the segment reads that earlier segments or the graph inputs provide. */
  inputs: string[];
  /** Tensors the segment produces that later segments or the graph outputs read. */
  outputs: string[];
  /** Blocks only: the tensor the cache stores (residual or block output). */
  cached?: string;
  /** Blocks only: the block's input (the operand the residual is added to). */
  blockInput?: string;
}

/** Options of {@link partitionGraph}. */
export interface PartitionOptions {
  mode: CacheMode;
  blockPattern: RegExp;
}

/** The module path components of a node name: `/a.0/b.1/Conv` → `["a.0", "b.1"]`. */
export function scopeOf(nodeName: string): string[] {
  const parts = nodeName.split("/").filter((p) => p.length > 0);
  return parts.slice(0, -1);
}

/** The block a node name belongs to: the shortest scope prefix matching the pattern. */
export function blockOfName(nodeName: string, pattern: RegExp): string | undefined {
  const scope = scopeOf(nodeName);
  for (let k = 1; k <= scope.length; k++) {
    const path = scope.slice(0, k).join(".");
    pattern.lastIndex = 0;
    if (pattern.test(path)) return path;
  }
  return undefined;
}

/** Names a subgraph reads from the enclosing scope (If/Loop/Scan bodies). */
function outerReads(g: Graph): Set<string> {
  const local = new Set<string>([
    ...g.input.map((v) => v.name),
    ...g.initializer.map((t) => t.name),
  ]);
  const reads = new Set<string>();
  for (const n of g.node) {
    for (const name of nodeReads(n)) if (!local.has(name)) reads.add(name);
    for (const o of n.output) local.add(o);
  }
  return reads;
}

/** Every tensor a node reads: its inputs and what its subgraphs read from outside. */
export function nodeReads(n: Node): string[] {
  const out = n.input.filter((s) => s !== "");
  for (const a of n.attribute) {
    for (const g of [...(a.g ? [a.g] : []), ...(a.graphs ?? [])]) {
      for (const name of outerReads(g)) if (!out.includes(name)) out.push(name);
    }
  }
  return out;
}

const GLUE = -1;
const CONST = -2;

/**
 * Splits a model's graph into ordered segments. Throws {@link SplitError} when no node matches
 * the pattern, a block has more than one tensor leaving it (reusing it would leave the other
 * dangling), a block is not contiguous, or (residual mode) a block does not end in a residual Add.
 */
export function partitionGraph(model: Model, opts: PartitionOptions): SegmentPart[] {
  const g = model.graph;
  const nodes = g.node;
  const n = nodes.length;
  const initByName = new Map(g.initializer.map((t) => [t.name, t]));
  const graphInputs = new Set(g.input.map((v) => v.name).filter((x) => !initByName.has(x)));
  const graphOutputs = new Set(g.output.map((v) => v.name));

  const reads = nodes.map(nodeReads);
  const producer = new Map<string, number>();
  nodes.forEach((node, i) => {
    for (const o of node.output) if (o) producer.set(o, i);
  });
  const consumers = new Map<string, number[]>();
  reads.forEach((rs, i) => {
    for (const r of rs) {
      let list = consumers.get(r);
      if (!list) consumers.set(r, list = []);
      list.push(i);
    }
  });

  // constant-valued nodes: copied into whichever segment reads them
  const label = new Array<number>(n).fill(GLUE);
  const isConstTensor = (name: string) =>
    initByName.has(name) || (producer.has(name) && label[producer.get(name)!] === CONST);
  nodes.forEach((node, i) => {
    const constOp = isStd(node) && (node.opType === "Constant" ||
      (node.opType === "Identity" && reads[i].length === 1 && isConstTensor(reads[i][0])));
    if (constOp && !node.output.some((o) => graphOutputs.has(o))) label[i] = CONST;
  });

  // blocks by module path
  const blockNames: string[] = [];
  const blockIndex = new Map<string, number>();
  const scoped = new Array<boolean>(n).fill(false);
  nodes.forEach((node, i) => {
    if (label[i] === CONST) return;
    scoped[i] = scopeOf(node.name).length > 0;
    const b = blockOfName(node.name, opts.blockPattern);
    if (b === undefined) return;
    let k = blockIndex.get(b);
    if (k === undefined) {
      k = blockNames.length;
      blockNames.push(b);
      blockIndex.set(b, k);
    }
    label[i] = k;
  });
  if (blockNames.length === 0) {
    const examples = [...new Set(nodes.map((x) => scopeOf(x.name).join(".")).filter((s) => s))]
      .slice(0, 5);
    throw new SplitError(
      `no node matches the block pattern /${opts.blockPattern.source}/` +
        (examples.length
          ? ` (module paths in this model look like: ${examples.join(", ")})`
          : " (this model's node names carry no module paths)"),
    );
  }

  // unscoped nodes by data flow, consumers first
  for (let i = n - 1; i >= 0; i--) {
    if (label[i] === CONST || scoped[i] || label[i] !== GLUE) continue;
    const outs = nodes[i].output.filter((o) => o);
    if (outs.some((o) => graphOutputs.has(o))) continue;
    let owner: number | undefined;
    let ok = true;
    for (const o of outs) {
      for (const c of consumers.get(o) ?? []) {
        const l = label[c];
        if (l < 0 || (owner !== undefined && owner !== l)) ok = false;
        owner = l;
      }
    }
    if (ok && owner !== undefined && owner >= 0) label[i] = owner;
  }

  // a block's outside-facing tensors
  const outsideOutputs = (k: number): { tensor: string; node: number; reader?: number }[] => {
    const res: { tensor: string; node: number; reader?: number }[] = [];
    nodes.forEach((node, i) => {
      if (label[i] !== k) return;
      for (const o of node.output) {
        if (!o) continue;
        const outside = (consumers.get(o) ?? []).find((c) => label[c] !== k);
        if (outside !== undefined || graphOutputs.has(o)) {
          res.push({ tensor: o, node: i, reader: outside });
        }
      }
    });
    return res;
  };

  // Shape arithmetic computed inside a block but read by later blocks (the exporter shares
  // common subexpressions such as the batch size of encoder_hidden_states): hoist it into glue,
  // so that reusing the block from cache leaves nothing undefined.
  const info = inferGraph(g);
  const isIndexType = (t: string) => {
    const e = info.get(t)?.elemType;
    return e === DataType.INT64 || e === DataType.INT32 || e === DataType.BOOL;
  };
  const hoistShapeMath = (k: number) => {
    for (const out of outsideOutputs(k)) {
      if (!isIndexType(out.tensor)) continue;
      const closure = new Set<number>();
      const stack = [out.node];
      let ok = true;
      let fromGraphInputs = true;
      while (stack.length && ok) {
        const i = stack.pop()!;
        if (closure.has(i)) continue;
        closure.add(i);
        if (!nodes[i].output.every((o) => !o || isIndexType(o))) ok = false;
        for (const r of reads[i]) {
          const p = producer.get(r);
          if (p !== undefined && label[p] === k) stack.push(p);
          else if (!graphInputs.has(r) && !isConstTensor(r)) fromGraphInputs = false;
        }
      }
      // a function of the graph inputs alone is recomputed wherever it is read (like a
      // constant); anything else runs once, in the glue before the block
      if (ok) { for (const i of closure) label[i] = fromGraphInputs ? CONST : GLUE; }
    }
  };

  const cached: string[] = [];
  const blockInputs: string[] = [];
  for (let k = 0; k < blockNames.length; k++) {
    const name = blockNames[k];
    hoistShapeMath(k);
    const outs = outsideOutputs(k);
    if (outs.length === 0) throw new SplitError(`block ${name} has no output read outside it`);
    if (outs.length > 1) {
      const [, second] = outs;
      const readerName = second.reader !== undefined
        ? nodes[second.reader].name || nodes[second.reader].opType
        : "the graph output";
      throw new SplitError(
        `cutting block ${name} would leave a dangling tensor: besides ${outs[0].tensor}, ` +
          `${second.tensor} (from node ${nodes[second.node].name}) is read outside the block by ` +
          `${readerName}; when the block is reused from cache it would not exist ` +
          "(choose a --blocks pattern whose blocks have a single output)",
      );
    }
    const out = outs[0];
    const last = nodes[out.node];
    const inBlock = (t: string) => producer.has(t) && label[producer.get(t)!] === k;
    const isResidualAdd = last.opType === "Add" && last.input.length === 2 &&
      last.input.filter(inBlock).length === 1 &&
      last.input.every((t) => inBlock(t) || !isConstTensor(t));
    if (opts.mode === "residual") {
      if (!isResidualAdd) {
        throw new SplitError(
          `block ${name} does not end in a residual Add (its output ${out.tensor} comes from ` +
            `a ${last.opType} node ${last.name}); use --mode output to cache the block output`,
        );
      }
      label[out.node] = GLUE;
      const residual = last.input.find(inBlock)!;
      const after = outsideOutputs(k);
      if (after.length !== 1 || after[0].tensor !== residual) {
        throw new SplitError(
          `cutting block ${name} at its residual ${residual} would leave a dangling tensor ` +
            `(${after.map((x) => x.tensor).join(", ")} leave the block)`,
        );
      }
      cached.push(residual);
      blockInputs.push(last.input.find((t) => !inBlock(t))!);
    } else {
      cached.push(out.tensor);
      if (isResidualAdd) blockInputs.push(last.input.find((t) => !inBlock(t))!);
      else {
        const first = nodes.findIndex((_, i) => label[i] === k);
        const inputs = reads.flatMap((rs, i) => (label[i] === k ? rs : []))
          .filter((t) => !inBlock(t) && !isConstTensor(t));
        const nonGraph = inputs.find((t) => !graphInputs.has(t));
        blockInputs.push(nonGraph ?? inputs[0] ?? reads[first][0]);
      }
    }
  }

  // glue slots: first the earliest (after the blocks they depend on), to check that blocks are
  // sequential
  const slot = new Array<number>(n).fill(0);
  for (let i = 0; i < n; i++) {
    if (label[i] !== GLUE) continue;
    let e = 0;
    for (const r of reads[i]) {
      const p = producer.get(r);
      if (p === undefined) continue;
      if (label[p] >= 0) e = Math.max(e, label[p] + 1);
      else if (label[p] === GLUE) e = Math.max(e, slot[p]);
    }
    slot[i] = e;
  }
  for (let i = 0; i < n; i++) {
    const k = label[i];
    if (k < 0) continue;
    for (const r of reads[i]) {
      const p = producer.get(r);
      if (p === undefined) continue;
      const late = (label[p] >= 0 && label[p] > k) || (label[p] === GLUE && slot[p] > k);
      if (late) {
        const other = label[p] >= 0 ? label[p] : slot[p] - 1;
        throw new SplitError(
          `block ${blockNames[k]} is not a contiguous cut: its node ${nodes[i].name} reads ` +
            `${r}, which is computed only after block ${blockNames[other]}` +
            (other === k ? " (its own output flows back into it through outside nodes)" : "") +
            "; choose a --blocks pattern of whole, sequential modules",
        );
      }
    }
  }

  // then run each glue node as late as its readers allow: beside its use, so fewer tensors
  // cross segments (each resnet's timestep projection runs next to its resnet, not up front)
  const last = blockNames.length;
  for (let i = n - 1; i >= 0; i--) {
    if (label[i] !== GLUE) continue;
    let l = last;
    for (const o of nodes[i].output) {
      for (const c of consumers.get(o) ?? []) {
        if (label[c] >= 0) l = Math.min(l, label[c]);
        else if (label[c] === GLUE) l = Math.min(l, slot[c]);
      }
    }
    slot[i] = l;
  }

  // assemble segments in order: glue_0, block_0, glue_1, …, glue_B
  const parts: SegmentPart[] = [];
  const member = new Array<number>(n).fill(-1);
  const groups: { name: string; kind: "glue" | "block"; idx: number[]; block?: number }[] = [];
  for (let k = 0; k <= blockNames.length; k++) {
    const glue = [];
    for (let i = 0; i < n; i++) if (label[i] === GLUE && slot[i] === k) glue.push(i);
    if (glue.length > 0) {
      groups.push({ name: `glue_${String(k).padStart(2, "0")}`, kind: "glue", idx: glue });
    }
    if (k < blockNames.length) {
      const blk = [];
      for (let i = 0; i < n; i++) if (label[i] === k) blk.push(i);
      groups.push({ name: blockNames[k], kind: "block", idx: blk, block: k });
    }
  }
  groups.forEach((grp, s) => {
    for (const i of grp.idx) member[i] = s;
  });
  const produced = new Set<string>(graphInputs);
  groups.forEach((grp, s) => {
    const set = new Set(grp.idx);
    // pull in the constant-valued nodes this segment reads
    const stack = grp.idx.flatMap((i) => reads[i]);
    while (stack.length) {
      const t = stack.pop()!;
      const p = producer.get(t);
      if (p !== undefined && label[p] === CONST && !set.has(p)) {
        set.add(p);
        stack.push(...reads[p]);
      }
    }
    const idx = [...set].sort((a, b) => a - b);
    const local = new Set<string>();
    for (const i of idx) for (const o of nodes[i].output) if (o) local.add(o);
    const inputs: string[] = [];
    const inits: TensorProto[] = [];
    const seenInit = new Set<string>();
    for (const i of idx) {
      for (const r of reads[i]) {
        if (local.has(r)) continue;
        const init = initByName.get(r);
        if (init) {
          if (!seenInit.has(r)) inits.push(init), seenInit.add(r);
          continue;
        }
        if (!produced.has(r)) {
          const why = producer.has(r)
            ? `it is computed later, in segment ${groups[member[producer.get(r)!]]?.name}`
            : "no node, initializer or graph input provides it";
          throw new SplitError(
            `dangling tensor ${r}: node ${nodes[i].name || nodes[i].opType} in segment ` +
              `${grp.name} reads it, but ${why}`,
          );
        }
        if (!inputs.includes(r)) inputs.push(r);
      }
    }
    const outputs: string[] = [];
    for (const i of grp.idx) {
      for (const o of nodes[i].output) {
        if (!o) continue;
        const readOutside = (consumers.get(o) ?? []).some((c) =>
          member[c] !== s && label[c] !== CONST
        );
        if (readOutside || graphOutputs.has(o)) outputs.push(o);
      }
    }
    for (const o of outputs) produced.add(o);
    const part: SegmentPart = {
      name: grp.name,
      kind: grp.kind,
      nodes: idx.map((i) => nodes[i]),
      initializers: inits,
      inputs,
      outputs,
    };
    if (grp.block !== undefined) {
      part.cached = cached[grp.block];
      part.blockInput = blockInputs[grp.block];
      if (outputs.length !== 1 || outputs[0] !== part.cached) {
        throw new SplitError(
          `block ${grp.name}: expected the single output ${part.cached}, got ${outputs.join(", ")}`,
        );
      }
    }
    parts.push(part);
  });
  for (const o of graphOutputs) {
    if (!produced.has(o)) throw new SplitError(`graph output ${o} is produced by no segment`);
  }
  return parts;
}

import { assert, assertEquals, assertThrows } from "./_assert.ts";
import {
  changeHeatmapSvg,
  escapeXml,
  niceTicks,
  scheduleGridSvg,
  speedQualitySvg,
  viridis,
} from "../lib/image/plots.ts";

interface Element {
  name: string;
  attrs: Record<string, string>;
}

/**
 * A minimal XML well-formedness check: tags nest and close, attributes are quoted, text has no
 * raw `<` or stray `&`. Returns the elements in document order.
 */
function parseXml(xml: string): Element[] {
  const out: Element[] = [];
  const stack: string[] = [];
  const tag = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/y;
  let i = 0;
  while (i < xml.length) {
    const lt = xml.indexOf("<", i);
    const textPart = xml.slice(i, lt < 0 ? xml.length : lt);
    if (/&(?!(amp|lt|gt|quot|apos);)/.test(textPart)) throw new Error(`stray & in ${textPart}`);
    if (lt < 0) break;
    tag.lastIndex = lt;
    const m = tag.exec(xml);
    if (!m) throw new Error(`malformed tag at ${lt}: ${xml.slice(lt, lt + 60)}`);
    const [, close, name, attrText, selfClose] = m;
    if (close) {
      const open = stack.pop();
      if (open !== name) throw new Error(`</${name}> closes <${open}>`);
    } else {
      const attrs: Record<string, string> = {};
      for (const a of attrText.matchAll(/([\w:-]+)="([^"]*)"/g)) {
        if (a[1] in attrs) throw new Error(`duplicate attribute ${a[1]} on <${name}>`);
        if (/&(?!(amp|lt|gt|quot|apos);)/.test(a[2])) throw new Error(`stray & in ${a[2]}`);
        attrs[a[1]] = a[2];
      }
      out.push({ name, attrs });
      if (!selfClose) stack.push(name);
    }
    i = tag.lastIndex;
  }
  if (stack.length) throw new Error(`unclosed <${stack.join("> <")}>`);
  if (out[0]?.name !== "svg") throw new Error("root is not <svg>");
  return out;
}

const byClass = (els: Element[], cls: string) => els.filter((e) => e.attrs.class === cls);

const BLOCKS = ["down_blocks.0.attentions.0", "mid_block.attentions.0", "up<&>\"'block"];

Deno.test("the XML checker itself rejects broken SVG", () => {
  assertThrows(() => parseXml("<svg><g></svg>"), "closes");
  assertThrows(() => parseXml("<svg><text>a & b</text></svg>"), "stray &");
  assertThrows(() => parseXml("<svg><rect x=1/></svg>"), "malformed");
  assertThrows(() => parseXml("<svg>"), "unclosed");
});

Deno.test("heatmap: one cell per (block, step), labels, legend, escaped names", () => {
  const curves = BLOCKS.map((_, i) =>
    Array.from({ length: 20 }, (_, t) => (t === 0 ? 1 : (i + 1) * t / 100))
  );
  for (const scale of ["linear", "log"] as const) {
    const svg = changeHeatmapSvg(curves, BLOCKS, { title: "L1_rel ddim 20 & more", scale });
    const els = parseXml(svg);
    assertEquals(byClass(els, "cell").length, 3 * 20);
    assert(svg.includes("down_blocks.0.attentions.0"));
    assert(svg.includes("up&lt;&amp;&gt;&quot;&apos;block"));
    assert(svg.includes("L1_rel ddim 20 &amp; more"));
    assert(svg.includes(">19</text>"), "last step labelled");
    assert(els.some((e) => e.name === "linearGradient"));
    // the largest value gets the top colour, the smallest (> 0 for log) the bottom one
    const cells = byClass(els, "cell");
    assertEquals(cells[2 * 20 + 19].attrs.fill, viridis(1));
    assertEquals(cells[0].attrs.fill, "#bbbbbb"); // step 0 is grey
  }
  assertThrows(() => changeHeatmapSvg(curves, BLOCKS.slice(1), { title: "x" }), "3 curves for 2");
  assertThrows(() => changeHeatmapSvg([[1, 2], [1]], ["a", "b"], { title: "x" }), "same");
});

Deno.test("schedule grid: filled = computed, empty = reused", () => {
  const recompute = Array.from({ length: 50 }, (_, t) => [true, t % 2 === 0, t % 5 === 0]);
  const svg = scheduleGridSvg(recompute, BLOCKS, { title: "ddim-50-delta-0.50" });
  const els = parseXml(svg);
  const computed = recompute.flat().filter((x) => x).length;
  assertEquals(byClass(els, "computed").length, computed);
  assertEquals(byClass(els, "reused").length, 150 - computed);
  assert(
    svg.includes(">50/50</text>") && svg.includes(">25/50</text>") && svg.includes(">10/50</text>"),
  );
  assert(svg.includes(`${150 - computed} of 150 block evaluations reused`));
  assertThrows(() => scheduleGridSvg([[true]], BLOCKS, { title: "x" }), "3 entries");
});

Deno.test("speed-quality chart: every point drawn, a line per series, legend", () => {
  const series = [
    {
      name: "cache (δ)",
      points: [0.25, 0.5, 1].map((d, i) => ({ x: 1.3 + i * 0.3, y: 20 + i * 2, label: `δ=${d}` })),
    },
    {
      name: "fewer steps",
      points: [{ x: 1.4, y: 23, label: "14 steps" }, { x: 2, y: 30 }],
      dashed: true,
    },
    { name: "uniform", points: [{ x: 2, y: 26 }], line: false },
  ];
  const svg = speedQualitySvg(series, {
    title: "ddim 20: speed vs FD",
    xLabel: "UNet speedup",
    yLabel: "FD",
    hLines: [{ y: 19.5, label: "full steps" }],
  });
  const els = parseXml(svg);
  assertEquals(byClass(els, "point").length, 6);
  assertEquals(els.filter((e) => e.name === "polyline").length, 2);
  assertEquals(byClass(els, "hline").length, 1);
  assert(svg.includes("δ=0.25") && svg.includes("14 steps") && svg.includes(">uniform</text>"));
  // points stay inside the plot frame
  const frame = els.find((e) => e.name === "rect" && e.attrs.fill === "none")!;
  const [fx, fy] = [Number(frame.attrs.x), Number(frame.attrs.y)];
  const [fw, fh] = [Number(frame.attrs.width), Number(frame.attrs.height)];
  for (const p of byClass(els, "point")) {
    const [cx, cy] = [Number(p.attrs.cx), Number(p.attrs.cy)];
    assert(cx >= fx && cx <= fx + fw && cy >= fy && cy <= fy + fh, `point ${cx},${cy} outside`);
  }
  assertThrows(
    () =>
      speedQualitySvg([{ name: "s", points: [{ x: 1, y: NaN }] }], {
        title: "",
        xLabel: "",
        yLabel: "",
      }),
    "point 0 is not finite",
  );
  assertThrows(() => speedQualitySvg([], { title: "", xLabel: "", yLabel: "" }), "no series");
});

Deno.test("helpers: escaping, ticks, colours", () => {
  assertEquals(escapeXml(`a<b>&"c'`), "a&lt;b&gt;&amp;&quot;c&apos;");
  assertEquals(niceTicks(0, 1), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assertEquals(niceTicks(1.3, 1.9), [1.2, 1.4, 1.6, 1.8, 2]);
  const t = niceTicks(5, 5);
  assert(t[0] < 5 && t[t.length - 1] > 5);
  assertEquals(viridis(0), "#440154");
  assertEquals(viridis(1), "#fde725");
});

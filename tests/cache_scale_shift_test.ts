import { assert, assertClose, assertEquals, assertThrows } from "./_assert.ts";
import { applyScaleShift } from "../lib/cache/scale_shift.ts";
import { DEFAULT_RIDGE, ScaleShiftAccumulator } from "../lib/calibration/scale_shift_fit.ts";
import { skippedFraction, validateSchedule } from "../lib/cache/schedule.ts";
import { mulberry32 } from "../lib/metrics/kid.ts";

/** Standard normal draws (Box–Muller) from a seeded PRNG. */
function gaussian(seed: number): () => number {
  const u = mulberry32(seed);
  return () => Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
}

/** NCHW pairs: fresh[n,c,p] = scale[c]·cached + shift[c] + noise·N(0,1); cached ~ mean[c] + sd[c]·N. */
function pairs(
  seed: number,
  dims: number[],
  scale: number[],
  shift: number[],
  noise: number,
  mean = [0.3, -1, 2],
  sd = [1, 0.5, 2],
): { cached: Float32Array; fresh: Float32Array } {
  const g = gaussian(seed);
  const [items, channels] = dims;
  const hw = dims.slice(2).reduce((a, b) => a * b, 1);
  const cached = new Float32Array(items * channels * hw);
  const fresh = new Float32Array(cached.length);
  for (let n = 0; n < items; n++) {
    for (let c = 0; c < channels; c++) {
      for (let p = 0; p < hw; p++) {
        const i = (n * channels + c) * hw + p;
        cached[i] = mean[c] + sd[c] * g();
        fresh[i] = scale[c] * cached[i] + shift[c] + noise * g();
      }
    }
  }
  return { cached, fresh };
}

Deno.test("recovers a known per-channel scale and shift from noisy data", () => {
  const scale = [1.2, 0.7, -0.5];
  const shift = [0.1, -0.3, 2];
  const acc = new ScaleShiftAccumulator();
  // Two batches of different sizes (streaming merge) for one (block, step).
  for (const [seed, dims] of [[1, [2, 3, 16, 16]], [2, [1, 3, 8, 32]]] as const) {
    const { cached, fresh } = pairs(seed, [...dims], scale, shift, 0.05);
    acc.add("blk", 3, cached, fresh, dims);
  }
  const exact = acc.fit(0)["blk"]["3"];
  for (let c = 0; c < 3; c++) {
    assertClose(exact.scale[c], scale[c], 0.01, `scale[${c}]`);
    assertClose(exact.shift[c], shift[c], 0.02, `shift[${c}]`);
  }
  const ridged = acc.fit()["blk"]["3"]; // default ridge: still close
  for (let c = 0; c < 3; c++) {
    assertClose(ridged.scale[c], scale[c], 0.02, `ridged scale[${c}]`);
    assertClose(ridged.shift[c], shift[c], 0.03, `ridged shift[${c}]`);
  }
  const [rep] = acc.report(acc.fit(0));
  assertEquals(rep.count, 2 * 256 + 256);
  assertClose(rep.mseFit, 0.05 ** 2, 3e-4); // the noise is all that is left
  assert(rep.mseIdentity > 100 * rep.mseFit);
});

Deno.test("closed form equals the direct 2×2 normal equations, ridge included", () => {
  const dims = [2, 3, 5, 7];
  const { cached, fresh } = pairs(3, dims, [0.9, 1.4, 0.2], [0.5, 0, -1], 0.3);
  const acc = new ScaleShiftAccumulator();
  acc.add("b", 1, cached.subarray(0, 105), fresh.subarray(0, 105), [1, 3, 5, 7]);
  acc.add("b", 1, cached.subarray(105), fresh.subarray(105), [1, 3, 5, 7]);
  const ridge = 0.1;
  const fit = acc.fit(ridge)["b"]["1"];
  // Independent route: raw sums and Cramer's rule on the normal equations of
  // J(a, b) = Σ(a·r + b − f)² + λa·(a − 1)² + λb·(b − (1 − a)·r̄)², λa = ρ·n·s², λb = ρ·n:
  //   a·(Σr² + λa + λb·r̄²) + b·(Σr + λb·r̄) = Σrf + λa + λb·r̄²
  //   a·(Σr + λb·r̄)        + b·(n + λb)      = Σf + λb·r̄
  const hw = 35;
  const n = 2 * hw;
  let s2 = 0;
  const sums = [0, 1, 2].map((c) => {
    let sr = 0, sf = 0, srr = 0, srf = 0;
    for (let k = 0; k < 2; k++) {
      for (let p = 0; p < hw; p++) {
        const i = (k * 3 + c) * hw + p;
        sr += cached[i];
        sf += fresh[i];
        srr += cached[i] * cached[i];
        srf += cached[i] * fresh[i];
      }
    }
    s2 += srr / n / 3;
    return { sr, sf, srr, srf };
  });
  for (let c = 0; c < 3; c++) {
    const { sr, sf, srr, srf } = sums[c];
    const la = ridge * n * s2;
    const lb = ridge * n;
    const rm = sr / n;
    const [m11, m12, m22] = [srr + la + lb * rm * rm, sr + lb * rm, n + lb];
    const [v1, v2] = [srf + la + lb * rm * rm, sf + lb * rm];
    const det = m11 * m22 - m12 * m12;
    const a = (v1 * m22 - m12 * v2) / det;
    const b = (m11 * v2 - m12 * v1) / det;
    assertClose(fit.scale[c], a, 1e-9, `scale[${c}]`);
    assertClose(fit.shift[c], b, 1e-9, `shift[${c}]`);
  }
});

Deno.test("batch-by-batch statistics equal one batch", () => {
  const { cached, fresh } = pairs(4, [4, 3, 6, 6], [2, 1, 0.5], [1, 2, 3], 0.2);
  const one = new ScaleShiftAccumulator();
  one.add("b", 2, cached, fresh, [4, 3, 6, 6]);
  const many = new ScaleShiftAccumulator();
  for (let k = 0; k < 4; k++) {
    const s = k * 108;
    many.add("b", 2, cached.subarray(s, s + 108), fresh.subarray(s, s + 108), [1, 3, 6, 6]);
  }
  const a = one.fit(0.01)["b"]["2"];
  const b = many.fit(0.01)["b"]["2"];
  for (let c = 0; c < 3; c++) {
    assertClose(a.scale[c], b.scale[c], 1e-10);
    assertClose(a.shift[c], b.shift[c], 1e-10);
  }
});

Deno.test("fresh == cached gives the identity", () => {
  const { cached } = pairs(5, [2, 3, 4, 4], [1, 1, 1], [0, 0, 0], 0);
  const acc = new ScaleShiftAccumulator();
  acc.add("b", 1, cached, cached, [2, 3, 4, 4]);
  for (const ridge of [0, DEFAULT_RIDGE, 1]) {
    const f = acc.fit(ridge)["b"]["1"];
    for (let c = 0; c < 3; c++) {
      assertClose(f.scale[c], 1, 1e-9);
      assertClose(f.shift[c], 0, 1e-9);
    }
  }
});

Deno.test("zero variance: the ridge keeps the scale at identity and only moves the mean", () => {
  const dims = [1, 2, 4, 4];
  const cached = new Float32Array(32); // channel 0 all 0, channel 1 all 2
  const fresh = new Float32Array(32);
  for (let p = 0; p < 16; p++) {
    cached[16 + p] = 2;
    fresh[p] = 3;
    fresh[16 + p] = 5;
  }
  const acc = new ScaleShiftAccumulator();
  acc.add("b", 1, cached, fresh, dims);
  const rho = 0.01;
  const f = acc.fit(rho)["b"]["1"];
  // Channel 0: r ≡ 0 carries no information about the scale: a = 1, b = 3 / (1 + ρ).
  assertEquals(f.scale[0], 1);
  assertClose(f.shift[0], 3 / (1 + rho), 1e-12);
  // Channel 1: r ≡ 2, f ≡ 5: the scale stays 1 and the shift moves the mean by 3 / (1 + ρ).
  assertEquals(f.scale[1], 1);
  assertClose(f.shift[1], 3 / (1 + rho), 1e-12);
  // ρ = 0 and no variance: scale falls back to 1, shift takes the whole mean difference.
  const g = acc.fit(0)["b"]["1"];
  assertEquals(g.scale, [1, 1]);
  assertClose(g.shift[0], 3, 1e-12);
  assertClose(g.shift[1], 3, 1e-12);
  // An all-zero block (no scale reference at all) stays finite.
  const z = new ScaleShiftAccumulator();
  z.add("b", 1, new Float32Array(32), fresh, dims);
  assertEquals(z.fit()["b"]["1"].scale, [1, 1]);
});

Deno.test("fit output is a valid schedule scaleShift table", () => {
  const acc = new ScaleShiftAccumulator();
  const { cached, fresh } = pairs(6, [1, 3, 2, 2], [1, 1, 1], [0, 0, 0], 0.1);
  acc.add("blk", 1, cached, fresh, [1, 3, 2, 2]);
  acc.add("blk", 2, cached, fresh, [1, 3, 2, 2]);
  assertEquals(acc.entries().map((e) => [e.block, e.step, e.channels, e.count]), [
    ["blk", 1, 3, 4],
    ["blk", 2, 3, 4],
  ]);
  const recompute = [[true], [false], [false]];
  validateSchedule({
    format: "blockcache-schedule/1",
    model: "m",
    solver: "ddim",
    steps: 3,
    name: "delta-1.00",
    kind: "delta",
    mode: "residual",
    blocks: ["blk"],
    recompute,
    skippedFraction: skippedFraction(recompute),
    scaleShift: acc.fit(),
  });
});

Deno.test("add rejects mismatched shapes", () => {
  const acc = new ScaleShiftAccumulator();
  const a = new Float32Array(12);
  assertThrows(() => acc.add("b", 1, a, new Float32Array(11), [1, 3, 2, 2]), "cached has 12");
  assertThrows(() => acc.add("b", 1, a, a, [1, 3, 2, 3]), "do not match 12 values");
  assertThrows(() => acc.add("b", 1, a, a, [12]), "dims must be [N, C, ...spatial]");
  acc.add("b", 1, a, a, [1, 3, 2, 2]);
  assertThrows(() => acc.add("b", 1, a, a, [1, 4, 3]), "earlier batches had 3");
  assertThrows(() => acc.add("b", -1, a, a, [1, 3, 2, 2]), "step");
  assertThrows(() => acc.fit(-1), "ridge");
});

Deno.test("applyScaleShift applies per channel across the batch", () => {
  // N=2, C=2, HW=2
  const x = new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]);
  const y = applyScaleShift(x, [2, 2, 1, 2], { scale: [2, -1], shift: [0.5, 10] });
  assertEquals(Array.from(y), [2.5, 4.5, 7, 6, 10.5, 12.5, 3, 2]);
  assertEquals(Array.from(x), [1, 2, 3, 4, 5, 6, 7, 8]); // untouched
  applyScaleShift(x, [2, 2, 2], { scale: [2, -1], shift: [0.5, 10] }, x); // in place
  assertEquals(Array.from(x), Array.from(y));
  const h = applyScaleShift(new Float16Array([1, 2]), [1, 2], { scale: [3, 4], shift: [0, 0] });
  assert(h instanceof Float16Array);
  assertEquals(Array.from(h), [3, 8]);
  assertThrows(() => applyScaleShift(x, [2, 2, 2], { scale: [1], shift: [0, 0] }), "scale has 1");
  assertThrows(
    () => applyScaleShift(x, [2, 3, 2], { scale: [1, 1, 1], shift: [0, 0, 0] }),
    "do not match",
  );
});

/** History-form data: r as in {@link pairs}, p = r − drift, f = a·r + g·p + b + noise. */
function historyTriples(seed: number, dims: number[], a: number[], g: number[], b: number[]) {
  const rnd = gaussian(seed + 1000); // independent of the draws of r
  const { cached } = pairs(seed, dims, a, b, 0);
  const previous = new Float32Array(cached.length);
  const fresh = new Float32Array(cached.length);
  const [, channels] = dims;
  const hw = dims.slice(2).reduce((x, y) => x * y, 1);
  for (let i = 0; i < cached.length; i++) {
    const c = Math.floor(i / hw) % channels;
    previous[i] = cached[i] - 0.3 * rnd(); // correlated with r, as a block's values over steps
    fresh[i] = a[c] * cached[i] + g[c] * previous[i] + b[c] + 0.01 * rnd();
  }
  return { cached, previous, fresh };
}

Deno.test("history form recovers a known scale, previous weight and shift", () => {
  const a = [1.5, 0.8, 1];
  const g = [-0.5, 0.3, 0];
  const b = [0.2, -0.1, 0.5];
  const dims = [4, 3, 8, 8];
  const { cached, previous, fresh } = historyTriples(5, dims, a, g, b);
  const acc = new ScaleShiftAccumulator();
  acc.add(
    "blk",
    4,
    cached.subarray(0, 384),
    fresh.subarray(0, 384),
    [2, 3, 8, 8],
    previous.subarray(0, 384),
  );
  acc.add(
    "blk",
    4,
    cached.subarray(384),
    fresh.subarray(384),
    [2, 3, 8, 8],
    previous.subarray(384),
  );
  const fit = acc.fit(0)["blk"]["4"];
  for (let c = 0; c < 3; c++) {
    assertClose(fit.scale[c], a[c], 0.01, `scale[${c}]`);
    assertClose(fit.previous![c], g[c], 0.01, `previous[${c}]`);
    assertClose(fit.shift[c], b[c], 0.01, `shift[${c}]`);
  }
  const [rep] = acc.report(acc.fit(0));
  assertClose(rep.mseFit, 0.01 ** 2, 2e-5); // the noise is all that is left
  // the paper's form on the same data cannot use p, so it leaves more error
  const paper = new ScaleShiftAccumulator();
  paper.add("blk", 4, cached, fresh, dims);
  const [paperRep] = paper.report(paper.fit(0));
  assert(paperRep.mseFit > 10 * rep.mseFit, `${paperRep.mseFit} vs ${rep.mseFit}`);
  // applying the fitted parameters reproduces the fit's error
  const y = applyScaleShift(cached, dims, fit, undefined, previous);
  const mse = y.reduce((s, v, i) => s + (v - fresh[i]) ** 2, 0) / y.length;
  assertClose(mse, rep.mseFit, 1e-7);
});

Deno.test("history form at ridge 0 equals least squares on raw sums (3×3 normal equations)", () => {
  const dims = [1, 2, 6, 5];
  const { cached, previous, fresh } = historyTriples(9, dims, [0.7, 1.2], [0.4, -0.6], [1, -2]);
  // perturb f so the fit is not exact
  const rnd = gaussian(17);
  for (let i = 0; i < fresh.length; i++) fresh[i] += 0.2 * rnd();
  const acc = new ScaleShiftAccumulator();
  acc.add("b", 2, cached, fresh, dims, previous);
  const fit = acc.fit(0)["b"]["2"];
  const hw = 30;
  for (let c = 0; c < 2; c++) {
    // normal equations of f ≈ a·r + g·p + b over channel c, solved by Cramer's rule
    const m = [[0, 0, 0], [0, 0, 0], [0, 0, 0]];
    const v = [0, 0, 0];
    for (let q = c * hw; q < (c + 1) * hw; q++) {
      const x = [cached[q], previous[q], 1];
      for (let i = 0; i < 3; i++) {
        v[i] += x[i] * fresh[q];
        for (let j = 0; j < 3; j++) m[i][j] += x[i] * x[j];
      }
    }
    const det = (k: number[][]) =>
      k[0][0] * (k[1][1] * k[2][2] - k[1][2] * k[2][1]) -
      k[0][1] * (k[1][0] * k[2][2] - k[1][2] * k[2][0]) +
      k[0][2] * (k[1][0] * k[2][1] - k[1][1] * k[2][0]);
    const d = det(m);
    const solve = (col: number) =>
      det(m.map((row, i) => row.map((x, j) => j === col ? v[i] : x))) / d;
    assertClose(fit.scale[c], solve(0), 1e-6, `scale[${c}]`);
    assertClose(fit.previous![c], solve(1), 1e-6, `previous[${c}]`);
    assertClose(fit.shift[c], solve(2), 1e-6, `shift[${c}]`);
  }
});

Deno.test("history form: add rejects mixing forms, apply needs the previous value", () => {
  const acc = new ScaleShiftAccumulator();
  const a = new Float32Array(12);
  assertThrows(() => acc.add("b", 1, a, a, [1, 3, 2, 2], new Float32Array(11)), "previous 11");
  acc.add("b", 1, a, a, [1, 3, 2, 2], a);
  assertThrows(
    () => acc.add("b", 1, a, a, [1, 3, 2, 2]),
    "no previous value, earlier batches had one",
  );
  const ss = { scale: [1, 1, 1], shift: [0, 0, 0], previous: [0, 0, 0] };
  assertThrows(() => applyScaleShift(a, [1, 3, 2, 2], ss), "needs the previous value");
  assertThrows(
    () => applyScaleShift(a, [1, 3, 2, 2], { ...ss, previous: [0] }),
    "previous 1",
  );
});

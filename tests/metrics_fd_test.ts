import { assert, assertClose, assertThrows } from "./_assert.ts";
import {
  frechetDistance,
  frechetDistanceFromStats,
  type GaussianStats,
  gaussianStats,
} from "../lib/metrics/fd.ts";
import { mulberry32 } from "../lib/metrics/kid.ts";

const REF = JSON.parse(
  Deno.readTextFileSync(new URL("./fixtures/metrics_reference.json", import.meta.url)),
);

function stats(mean: number[], cov: number[]): GaussianStats {
  return { dim: mean.length, count: 0, mean: Float64Array.from(mean), cov: Float64Array.from(cov) };
}

Deno.test("FD of identical sets is 0", () => {
  const r = mulberry32(1);
  const a = Array.from({ length: 50 }, () => Array.from({ length: 16 }, () => r() * 4 - 2));
  assertClose(frechetDistance(a, a), 0, 1e-9);
});

Deno.test("FD of 1-D samples by hand: [-1, 1] vs [2, 4] → 3² + (√2 − √2)² = 9", () => {
  // means 0 and 3, unbiased variances 2 and 2
  assertClose(frechetDistance([[-1], [1]], [[2], [4]]), 9, 1e-12);
  // variances 2 and 8: 1 + (√2 − √8)² = 1 + 2 = 3
  assertClose(
    frechetDistance([[-1], [1]], [[-1], [3]]),
    1 + (Math.SQRT2 - Math.sqrt(8)) ** 2,
    1e-12,
  );
});

Deno.test("FD of 2-D Gaussians matches the closed form", () => {
  // Diagonal (commuting): |Δμ|² + Σ(√σ1 − √σ2)²
  const d1 = frechetDistanceFromStats(stats([0, 0], [4, 0, 0, 1]), stats([1, 2], [1, 0, 0, 9]));
  assertClose(d1, 5 + (2 - 1) ** 2 + (1 - 3) ** 2, 1e-12);
  // Non-commuting: for 2×2 PSD M, tr√M = √(tr M + 2√det M), and
  // tr√(S1^½ S2 S1^½) = √(tr(S1 S2) + 2√(det S1 · det S2)).
  const s1 = [2, 1, 1, 2];
  const s2 = [3, -1, -1, 1];
  const trS1S2 = s1[0] * s2[0] + s1[1] * s2[2] + s1[2] * s2[1] + s1[3] * s2[3]; // 6 - 2 + 2 = 6
  const detProd = (2 * 2 - 1) * (3 * 1 - 1); // 3 · 2
  const expected = 0.25 + 4 + 4 - 2 * Math.sqrt(trS1S2 + 2 * Math.sqrt(detProd));
  const got = frechetDistanceFromStats(stats([0, 0.5], s1), stats([0, 0], s2));
  assertClose(got, expected, 1e-12);
});

Deno.test("FD matches an independent numpy computation (fixture)", () => {
  const fd = frechetDistance(REF.featuresA, REF.featuresB);
  assertClose(fd, REF.fd, 1e-9 * Math.max(1, REF.fd));
});

Deno.test("FD works at 128 dimensions and is symmetric", () => {
  const r = mulberry32(2);
  const a = Array.from({ length: 300 }, () => Array.from({ length: 128 }, () => r() - 0.5));
  const b = Array.from({ length: 300 }, () => Array.from({ length: 128 }, (_, k) => r() + k / 256));
  const ab = frechetDistance(a, b);
  const ba = frechetDistance(b, a);
  assert(ab > 1, `expected a clear distance, got ${ab}`);
  assertClose(ab, ba, 1e-8 * ab);
  assertClose(frechetDistance(a, a), 0, 1e-8);
});

Deno.test("gaussianStats and FD reject bad input", () => {
  assertThrows(() => gaussianStats([[1, 2]]), "at least 2");
  assertThrows(() => gaussianStats([[1, 2], [1]]), "features[1] has length 1");
  assertThrows(() => gaussianStats([[1, NaN], [1, 2]]), "features[0][1] is not finite");
  assertThrows(() => frechetDistance([[1], [2]], [[1, 2], [3, 4]]), "differ in dimension");
  const s = gaussianStats([[1, 2], [3, 5], [0, 0]]);
  assertClose(s.mean[1], 7 / 3, 1e-15);
  assertClose(s.cov[0], ((1 - 4 / 3) ** 2 + (3 - 4 / 3) ** 2 + (4 / 3) ** 2) / 2, 1e-15);
});

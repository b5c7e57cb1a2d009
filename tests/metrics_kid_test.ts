import { assert, assertClose, assertEquals, assertThrows } from "./_assert.ts";
import { kernelInceptionDistance, mulberry32, polynomialKernel } from "../lib/metrics/kid.ts";

const REF = JSON.parse(
  Deno.readTextFileSync(new URL("./fixtures/metrics_reference.json", import.meta.url)),
);

function gaussianSet(seed: number, n: number, d: number, shift = 0): number[][] {
  const u = mulberry32(seed);
  const g = () => Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
  return Array.from({ length: n }, () => Array.from({ length: d }, () => g() + shift));
}

Deno.test("kernel and a hand-computed MMD²", () => {
  assertEquals(polynomialKernel([1, 2], [3, 4]), (11 / 2 + 1) ** 3);
  // d = 1, x = {0, 1}, y = {2, 3}, k = (xy + 1)³:
  // xx off-diagonal: 2·k(0,1) = 2 → /2 = 1; yy: 2·k(2,3) = 2·343 → /2 = 343;
  // xy: k(0,2)+k(0,3)+k(1,2)+k(1,3) = 1+1+27+64 = 93 → 2·93/4 = 46.5. MMD² = 297.5.
  const r = kernelInceptionDistance([[0], [1]], [[2], [3]], { subsets: 5 });
  assertClose(r.mean, 297.5, 1e-12);
  assertEquals(r.std, 0); // every subset is the whole set
  assertEquals(r.subsetSize, 2);
});

Deno.test("KID matches an independent numpy computation on full subsets (fixture)", () => {
  const b = REF.featuresB.slice(0, 40);
  const r = kernelInceptionDistance(REF.featuresA, b, { subsets: 3, subsetSize: 40 });
  assertClose(r.mean, REF.kidFull40, 1e-9 * Math.max(1, Math.abs(REF.kidFull40)));
});

Deno.test("KID ≈ 0 for the same distribution, positive for a shifted one", () => {
  const a = gaussianSet(1, 200, 16);
  const b = gaussianSet(2, 200, 16);
  const c = gaussianSet(3, 200, 16, 0.5);
  const same = kernelInceptionDistance(a, b, { subsets: 50, subsetSize: 100, seed: 1 });
  const shifted = kernelInceptionDistance(a, c, { subsets: 50, subsetSize: 100, seed: 1 });
  assert(Math.abs(same.mean) < 3 * same.std + 1e-3, `same: ${JSON.stringify(same)}`);
  assert(shifted.mean > 10 * Math.abs(same.mean), `shifted ${shifted.mean} vs same ${same.mean}`);
  assert(shifted.mean > 5 * shifted.std, `shifted: ${JSON.stringify(shifted)}`);
  // One set against itself is not exactly 0: 2·(mean of K − mean of diag K)/(m − 1) = O(1/m).
  const self = kernelInceptionDistance(a, a, { subsets: 10, subsetSize: 200 });
  const maxDiag = Math.max(...a.map((x) => polynomialKernel(x, x)));
  assert(self.mean <= 0 && -self.mean < (2 * maxDiag) / 199, `self: ${self.mean}`);
});

Deno.test("KID subsets are reproducible by seed", () => {
  const a = gaussianSet(4, 60, 4);
  const b = gaussianSet(5, 60, 4, 0.2);
  const o = { subsets: 20, subsetSize: 30 };
  const r1 = kernelInceptionDistance(a, b, { ...o, seed: 9 });
  const r2 = kernelInceptionDistance(a, b, { ...o, seed: 9 });
  const r3 = kernelInceptionDistance(a, b, { ...o, seed: 10 });
  assertEquals(r1, r2);
  assert(r1.mean !== r3.mean);
  assert(r1.std > 0);
});

Deno.test("KID rejects bad input", () => {
  assertThrows(() => kernelInceptionDistance([[1]], [[1], [2]]), "at least 2");
  assertThrows(() => kernelInceptionDistance([[1], [2]], [[1, 2], [2, 3]]), "b[0] has length 2");
  assertThrows(() => kernelInceptionDistance([[1], [2]], [[1], [2]], { subsets: 0 }), "subsets");
  assertThrows(
    () => kernelInceptionDistance([[1], [2]], [[1], [2]], { subsetSize: 1 }),
    "subsetSize",
  );
});

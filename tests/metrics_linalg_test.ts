import { assertClose, assertThrows } from "./_assert.ts";
import { matMul, psdSqrt, symmetricEigen } from "../lib/metrics/linalg.ts";
import { mulberry32 } from "../lib/metrics/kid.ts";

Deno.test("eigenvalues of a known 2×2 and 3×3", () => {
  const e = symmetricEigen([2, 1, 1, 2], 2);
  const v = Array.from(e.values).sort();
  assertClose(v[0], 1, 1e-14);
  assertClose(v[1], 3, 1e-14);
  // diag stays diag
  const d = symmetricEigen([5, 0, 0, 0, -1, 0, 0, 0, 2], 3);
  const dv = Array.from(d.values).sort((a, b) => a - b);
  [-1, 2, 5].forEach((x, i) => assertClose(dv[i], x, 0));
});

Deno.test("Jacobi reconstructs a random symmetric 40×40 with orthonormal vectors", () => {
  const n = 40;
  const r = mulberry32(11);
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) a[i * n + j] = a[j * n + i] = r() * 2 - 1;
  }
  const { values, vectors } = symmetricEigen(a, n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let rec = 0;
      let orth = 0;
      for (let k = 0; k < n; k++) {
        rec += vectors[i * n + k] * values[k] * vectors[j * n + k];
        orth += vectors[k * n + i] * vectors[k * n + j];
      }
      assertClose(rec, a[i * n + j], 1e-12, `A[${i}][${j}]`);
      assertClose(orth, i === j ? 1 : 0, 1e-12, `VᵀV[${i}][${j}]`);
    }
  }
});

Deno.test("psdSqrt squared gives back the matrix", () => {
  const n = 6;
  const r = mulberry32(3);
  const b = Array.from({ length: n * n }, () => r() - 0.5);
  const bt = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) bt[i * n + j] = b[j * n + i];
  const a = matMul(b, bt, n); // B·Bᵀ is PSD
  const s = psdSqrt(a, n);
  const ss = matMul(s, s, n);
  for (let k = 0; k < n * n; k++) assertClose(ss[k], a[k], 1e-13);
  assertThrows(() => symmetricEigen([1, 2, 3], 2), "expected 2x2");
  assertThrows(() => symmetricEigen([1, NaN, NaN, 1], 2), "non-finite");
});

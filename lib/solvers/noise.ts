/**
 * The documented, seeded source of the initial noise: the same seed gives the same latents on every
 * run and platform.
 *
 * Generator: PCG32 (O'Neill, "PCG: A Family of Simple Fast Space-Efficient Statistically Good
 * Algorithms for Random Number Generation", 2014), the "XSH RR 64/32" member, exactly as
 * `pcg32_srandom_r` / `pcg32_random_r` of the reference pcg-c-basic library:
 *
 *     state, inc: unsigned 64-bit;  MULT = 6364136223846793005
 *     seeding (initstate, initseq):  state = 0; inc = (initseq << 1) | 1; next();
 *                                    state += initstate; next()
 *     next():  old = state
 *              state = old · MULT + inc                      (mod 2^64)
 *              xorshifted = (((old >> 18) ^ old) >> 27) mod 2^32
 *              rot = old >> 59
 *              return rotr32(xorshifted, rot)
 *
 * The image seed is `initstate` (an integer 0 … 2^32−1); `initseq` is fixed at 54, the stream of
 * pcg-c's demo, so seed 42 reproduces its published first outputs (0xa15c02b7 0x7b47f409 …).
 *
 * Normals: Box–Muller on consecutive pairs of outputs (a, b):
 *
 *     u1 = (a + 1) / 2^32 ∈ (0, 1],  u2 = b / 2^32 ∈ [0, 1)
 *     r = √(−2 ln u1);  z_{2k} = r·cos(2π·u2),  z_{2k+1} = r·sin(2π·u2)
 *
 * computed in float64 and rounded to float32. An odd length drops the last sine. The integer part
 * is bit-exact everywhere; `Math.log/cos/sin` are V8's fdlibm ports, so Deno gives identical
 * floats on every platform (another engine could differ in a last float64 bit, which very rarely
 * changes a float32).
 *
 * @module
 */

/** The PCG stream (`initseq`) used for image noise. */
export const NOISE_STREAM = 54;

const MULT_HI = 0x5851f42d; // 6364136223846793005 = 0x5851F42D_4C957F2D
const MULT_LO = 0x4c957f2d;
const TWO32 = 4294967296;

/** PCG32 (XSH RR 64/32) with 64-bit state kept as two uint32 halves; see the module doc. */
export class Pcg32 {
  #hi = 0;
  #lo = 0;
  #incHi: number;
  #incLo: number;

  /** `pcg32_srandom_r(initState, initSeq)`; both are integers 0 … 2^32−1. */
  constructor(initState: number, initSeq: number = NOISE_STREAM) {
    validateSeed(initState);
    validateSeed(initSeq, "initSeq");
    this.#incHi = initSeq >>> 31;
    this.#incLo = ((initSeq << 1) | 1) >>> 0;
    this.#advance();
    const lo = this.#lo + initState;
    this.#hi = (this.#hi + (lo >= TWO32 ? 1 : 0)) >>> 0;
    this.#lo = lo >>> 0;
    this.#advance();
  }

  /** state = state · MULT + inc (mod 2^64), via 16-bit partial products (all exact in float64). */
  #advance(): void {
    const hi = this.#hi, lo = this.#lo;
    const a0 = lo & 0xffff, a1 = lo >>> 16, b0 = MULT_LO & 0xffff, b1 = MULT_LO >>> 16;
    const mid = a0 * b1 + a1 * b0; // < 2^33
    const low = a0 * b0 + (mid % 65536) * 65536; // < 2^33
    let newHi = a1 * b1 + Math.floor(mid / 65536) + Math.floor(low / TWO32) +
      Math.imul(hi, MULT_LO) + Math.imul(lo, MULT_HI);
    let newLo = low % TWO32 + this.#incLo;
    newHi += this.#incHi + (newLo >= TWO32 ? 1 : 0);
    newLo %= TWO32;
    this.#hi = newHi >>> 0;
    this.#lo = newLo >>> 0;
  }

  /** The next 32-bit output, an integer 0 … 2^32−1. */
  nextUint32(): number {
    const hi = this.#hi, lo = this.#lo;
    this.#advance();
    // xorshifted = ((old >> 18) ^ old) >> 27, low 32 bits
    const xHi = hi ^ (hi >>> 18);
    const xLo = lo ^ ((lo >>> 18) | (hi << 14));
    const xs = ((xLo >>> 27) | (xHi << 5)) >>> 0;
    const rot = hi >>> 27;
    return ((xs >>> rot) | (xs << ((32 - rot) & 31))) >>> 0;
  }
}

/** Throws unless `seed` is an integer 0 … 2^32−1; the message names `field`. */
export function validateSeed(seed: number, field = "seed"): void {
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new RangeError(`${field}: expected an integer 0..4294967295, got ${seed}`);
  }
}

/**
 * `length` standard normal values (float32) from PCG32 seeded with `seed` (stream 54) through
 * Box–Muller, as documented in this module. Deterministic.
 */
export function gaussianNoise(seed: number, length: number): Float32Array {
  validateSeed(seed);
  if (!Number.isInteger(length) || length < 0) {
    throw new RangeError(`length: expected a non-negative integer, got ${length}`);
  }
  const rng = new Pcg32(seed, NOISE_STREAM);
  const out = new Float32Array(length);
  for (let i = 0; i < length; i += 2) {
    const u1 = (rng.nextUint32() + 1) / TWO32;
    const u2 = rng.nextUint32() / TWO32;
    const r = Math.sqrt(-2 * Math.log(u1));
    const theta = 2 * Math.PI * u2;
    out[i] = r * Math.cos(theta);
    if (i + 1 < length) out[i + 1] = r * Math.sin(theta);
  }
  return out;
}

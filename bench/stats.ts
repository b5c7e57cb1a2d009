/**
 * What the benchmarks share to summarize timings and to draw deterministic inputs.
 *
 * @module
 */

/** The median of `xs` (the mean of the middle two for an even count; NaN for none). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? NaN : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * A seeded Park–Miller generator (`seed · 16807 mod 2³¹ − 1`): each call returns the next value,
 * scaled to [-1, 1). The same seed gives the same sequence.
 */
export function lcg(seed: number): () => number {
  return () => {
    seed = (seed * 16807) % 2147483647;
    return (seed / 2147483647) * 2 - 1;
  };
}

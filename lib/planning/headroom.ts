/**
 * Deadline headroom: how much longer than predicted a generation may take on this replica, from
 * its own recent record. The planner's predictions are medians of the replica's per-segment
 * latencies, so about half of all generations run longer than predicted; a plan taken when its
 * prediction just fits then misses its deadline about half the time. A plan is taken only when
 * `predicted × factor()` fits, where the factor is a high quantile of recent `actual / predicted`
 * ratios — on a shared, noisy host it grows, on a quiet one it stays near 1.
 *
 * @module
 */

/** Settings of a {@link DeadlineHeadroom}. */
export interface HeadroomOptions {
  /** Quantile of the recent ratios the factor is (default 0.9). */
  quantile?: number;
  /** Ratios remembered, newest kept (default 64). */
  window?: number;
  /** Ratios needed before the record is used; until then the factor is `prior` (default 8). */
  minSamples?: number;
  /** The factor before enough ratios are known (default 1.15). */
  prior?: number;
  /** Bounds of the factor (default 1 and 3): never below the prediction, never absurdly above. */
  min?: number;
  max?: number;
}

/** A quantile of the recent `actual / predicted` generation-time ratios (pure, no clock). */
export class DeadlineHeadroom {
  readonly #ratios: number[] = [];
  readonly #o: Required<HeadroomOptions>;

  /** Throws `RangeError` for a quantile outside 0..1, a window under 1 or bounds out of order. */
  constructor(opts: HeadroomOptions = {}) {
    this.#o = {
      quantile: 0.9,
      window: 64,
      minSamples: 8,
      prior: 1.15,
      min: 1,
      max: 3,
      ...opts,
    };
    const o = this.#o;
    if (!(o.quantile >= 0 && o.quantile <= 1)) throw new RangeError("quantile must be in 0..1");
    if (!(o.window >= 1) || !(o.minSamples >= 1)) {
      throw new RangeError("window and minSamples must be >= 1");
    }
    if (!(o.min > 0 && o.min <= o.max)) throw new RangeError("need 0 < min <= max");
  }

  /** Records one generation: its predicted and measured wall time (ms). Ignores unusable pairs. */
  observe(predictedMs: number, actualMs: number): void {
    if (!(predictedMs > 0) || !Number.isFinite(actualMs) || actualMs < 0) return;
    this.#ratios.push(actualMs / predictedMs);
    if (this.#ratios.length > this.#o.window) this.#ratios.shift();
  }

  /** Ratios recorded (at most the window). */
  get samples(): number {
    return this.#ratios.length;
  }

  /**
   * The factor to multiply a prediction by before checking it against a deadline: the
   * `quantile` of the recorded ratios (linear interpolation between order statistics), clamped
   * to `[min, max]`; `prior` (clamped) while fewer than `minSamples` are recorded.
   */
  factor(): number {
    const { quantile, minSamples, prior, min, max } = this.#o;
    const clamp = (x: number) => Math.min(max, Math.max(min, x));
    if (this.#ratios.length < minSamples) return clamp(prior);
    const s = [...this.#ratios].sort((a, b) => a - b);
    const pos = quantile * (s.length - 1);
    const lo = Math.floor(pos), hi = Math.ceil(pos);
    return clamp(s[lo] + (s[hi] - s[lo]) * (pos - lo));
  }
}

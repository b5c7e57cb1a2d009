/**
 * Per-segment UNet latencies kept apart for each latent size and UNet batch, so a deadline planner
 * can predict a plan at the size it asks for: a segment's time grows with the number of latent
 * positions (and its attention with their square) and with the batch (2 samples per image with
 * guidance, 1 without), so means over mixed shapes predict none of them. Fed with the
 * engine's per-evaluation timings after every UNet evaluation; like the engine's own means, the
 * first run of a segment at a size (allocation, shader compile) is left out once there are more.
 *
 * @module
 */
import type { LatentShape } from "../model/sizes.ts";
import type { SegmentTiming } from "../unet/engine.ts";

interface Mean {
  runs: number;
  first: number;
  sum: number;
}

/** Segment means per latent size and UNet batch. */
export class SizeTimings {
  private bySize = new Map<string, Mean[]>();

  private static key(latent: LatentShape, batch: number): string {
    return `${latent.height}x${latent.width}x${batch}`;
  }

  /**
   * Records one evaluation of `batch` samples at `latent`: every segment that ran (not reused
   * from the cache).
   */
  record(latent: LatentShape, batch: number, timings: SegmentTiming[]): void {
    const key = SizeTimings.key(latent, batch);
    let means = this.bySize.get(key);
    if (!means) {
      means = timings.map(() => ({ runs: 0, first: 0, sum: 0 }));
      this.bySize.set(key, means);
    }
    timings.forEach((t, i) => {
      if (t.skipped || t.lastMs === undefined) return;
      const m = means[i];
      if (m.runs === 0) m.first = t.lastMs;
      else m.sum += t.lastMs;
      m.runs++;
    });
  }

  /**
   * Mean ms of segment `i` for `batch` samples at `latent` (the first run left out once there are
   * two); undefined before any run.
   */
  meanMs(latent: LatentShape, batch: number, i: number): number | undefined {
    const m = this.bySize.get(SizeTimings.key(latent, batch))?.[i];
    if (!m || m.runs === 0) return undefined;
    return m.runs === 1 ? m.first : m.sum / (m.runs - 1);
  }

  /**
   * Expected ms of one evaluation of `batch` samples at `latent`: every glue segment plus the
   * blocks `compute` selects (by index among the blocks). `kinds` lists the segments' kinds in
   * order. Undefined until every needed segment has run at this shape.
   */
  expectedMs(
    latent: LatentShape,
    batch: number,
    kinds: ("glue" | "block")[],
    compute: (blockIndex: number) => boolean = () => true,
  ): number | undefined {
    let total = 0, block = 0;
    for (const [i, kind] of kinds.entries()) {
      if (kind === "block" && !compute(block++)) continue;
      const ms = this.meanMs(latent, batch, i);
      if (ms === undefined) return undefined;
      total += ms;
    }
    return total;
  }

  /** The shapes measured so far (`HxWxbatch`). */
  sizes(): string[] {
    return [...this.bySize.keys()];
  }
}

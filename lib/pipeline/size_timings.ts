/**
 * Per-segment UNet latencies kept apart for each latent size, so a deadline planner can predict a
 * plan at the size it asks for: a segment's time grows with the number of latent positions (and
 * its attention with their square), so means over mixed sizes predict none of them. Fed with the
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

/** Segment means per latent size. */
export class SizeTimings {
  private bySize = new Map<string, Mean[]>();

  private static key(latent: LatentShape): string {
    return `${latent.height}x${latent.width}`;
  }

  /** Records one evaluation at `latent`: every segment that ran (not reused from the cache). */
  record(latent: LatentShape, timings: SegmentTiming[]): void {
    const key = SizeTimings.key(latent);
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

  /** Mean ms of segment `i` at `latent` (the first run left out once there are two); undefined before any run. */
  meanMs(latent: LatentShape, i: number): number | undefined {
    const m = this.bySize.get(SizeTimings.key(latent))?.[i];
    if (!m || m.runs === 0) return undefined;
    return m.runs === 1 ? m.first : m.sum / (m.runs - 1);
  }

  /**
   * Expected ms of one evaluation at `latent`: every glue segment plus the blocks `compute`
   * selects (by index among the blocks). `kinds` lists the segments' kinds in order. Undefined
   * until every needed segment has run at this size.
   */
  expectedMs(
    latent: LatentShape,
    kinds: ("glue" | "block")[],
    compute: (blockIndex: number) => boolean = () => true,
  ): number | undefined {
    let total = 0, block = 0;
    for (const [i, kind] of kinds.entries()) {
      if (kind === "block" && !compute(block++)) continue;
      const ms = this.meanMs(latent, i);
      if (ms === undefined) return undefined;
      total += ms;
    }
    return total;
  }

  /** The latent sizes measured so far (`HxW`). */
  sizes(): string[] {
    return [...this.bySize.keys()];
  }
}

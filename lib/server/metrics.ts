/**
 * The service's counters and their Prometheus text rendering (`GET /metrics`). Hand-written
 * because it is small: counters by label, one latency histogram, gauges read at render time.
 *
 * @module
 */
import type { WorkerStatus } from "../exec/pool.ts";

/** Upper bounds (seconds) of the request latency histogram. */
export const LATENCY_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300] as const;

/** Routes that get their own label; anything else is counted as `other` (bounded cardinality). */
export const KNOWN_ROUTES = [
  "/v1/images/generations",
  "/generate",
  "/v1/models",
  "/healthz",
  "/metrics",
] as const;

/** Live values read when the metrics are rendered. */
export interface Gauges {
  queueWaiting: number;
  queueRunning: number;
  /** The generation workers, when the service runs them. */
  workers?: WorkerStatus[];
}

function label(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function num(v: number): string {
  return Number.isFinite(v) ? String(v) : v > 0 ? "+Inf" : v < 0 ? "-Inf" : "NaN";
}

/** The route label for a path. */
export function routeLabel(path: string): string {
  return (KNOWN_ROUTES as readonly string[]).includes(path) ? path : "other";
}

interface Histogram {
  counts: number[];
  sum: number;
  count: number;
}

/** Metric state of one service instance. */
export class Metrics {
  #requests = new Map<string, number>();
  #latency = new Map<string, Histogram>();
  #deadlineMisses = new Map<string, number>();
  #deadlineRejections = 0;
  #cancelled = new Map<string, number>();
  #images = 0;
  #skippedWeighted = 0;
  #stepsTotal = 0;
  #skippedSum = 0;
  #ratioSum = 0;
  #ratioCount = 0;

  /** Counts one answered request. */
  request(route: string, status: number): void {
    const key = `${routeLabel(route)}\u0000${status}`;
    this.#requests.set(key, (this.#requests.get(key) ?? 0) + 1);
  }

  /** Records the wall time of a generation request (any outcome). */
  latency(route: string, seconds: number): void {
    const r = routeLabel(route);
    let h = this.#latency.get(r);
    if (!h) this.#latency.set(r, h = { counts: LATENCY_BUCKETS.map(() => 0), sum: 0, count: 0 });
    LATENCY_BUCKETS.forEach((b, i) => {
      if (seconds <= b) h.counts[i]++;
    });
    h.sum += seconds;
    h.count++;
  }

  /** A request whose deadline passed while it waited (`queue`) or ran (`running`). */
  deadlineMiss(stage: "queue" | "running"): void {
    this.#deadlineMisses.set(stage, (this.#deadlineMisses.get(stage) ?? 0) + 1);
  }

  /** A request whose work was cancelled before it finished, by why (e.g. `client_disconnect`). */
  cancelled(reason: string): void {
    this.#cancelled.set(reason, (this.#cancelled.get(reason) ?? 0) + 1);
  }

  /** A request refused at once because no plan fitted its deadline. */
  deadlineRejected(): void {
    this.#deadlineRejections++;
  }

  /** One finished image: its cache use and how its time compared with the prediction. */
  image(skippedFraction: number, steps: number, predictedMs: number, actualMs: number): void {
    this.#images++;
    this.#skippedSum += skippedFraction;
    this.#skippedWeighted += skippedFraction * steps;
    this.#stepsTotal += steps;
    if (predictedMs > 0 && Number.isFinite(actualMs)) {
      this.#ratioSum += actualMs / predictedMs;
      this.#ratioCount++;
    }
  }

  /** The Prometheus text exposition (format 0.0.4). */
  render(g: Gauges): string {
    const out: string[] = [];
    const head = (name: string, type: string, help: string) =>
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    head("imagegen_http_requests_total", "counter", "HTTP requests by route and status.");
    for (const [key, v] of [...this.#requests].sort()) {
      const [route, status] = key.split("\u0000");
      out.push(
        `imagegen_http_requests_total{route="${label(route)}",status="${status}"} ${v}`,
      );
    }
    const lat = "imagegen_request_duration_seconds";
    head(lat, "histogram", "Wall time of generation requests from arrival to the last byte.");
    for (const [route, h] of [...this.#latency].sort()) {
      const r = `route="${label(route)}"`;
      LATENCY_BUCKETS.forEach((b, i) => out.push(`${lat}_bucket{${r},le="${b}"} ${h.counts[i]}`));
      out.push(`${lat}_bucket{${r},le="+Inf"} ${h.count}`);
      out.push(`${lat}_sum{${r}} ${num(h.sum)}`, `${lat}_count{${r}} ${h.count}`);
    }
    head("imagegen_queue_depth", "gauge", "Generation requests waiting in the queue.");
    out.push(`imagegen_queue_depth ${g.queueWaiting}`);
    head("imagegen_queue_running", "gauge", "Generations running now.");
    out.push(`imagegen_queue_running ${g.queueRunning}`);
    head("imagegen_deadline_misses_total", "counter", "Requests whose deadline passed, by stage.");
    for (const stage of ["queue", "running"]) {
      out.push(
        `imagegen_deadline_misses_total{stage="${stage}"} ${this.#deadlineMisses.get(stage) ?? 0}`,
      );
    }
    head(
      "imagegen_deadline_rejections_total",
      "counter",
      "Requests refused at once (503) because no plan fitted their deadline.",
    );
    out.push(`imagegen_deadline_rejections_total ${this.#deadlineRejections}`);
    head(
      "imagegen_requests_cancelled_total",
      "counter",
      "Generation requests whose work was cancelled before it finished, by reason.",
    );
    for (const [reason, v] of [...this.#cancelled].sort()) {
      out.push(`imagegen_requests_cancelled_total{reason="${label(reason)}"} ${v}`);
    }
    if (g.workers) {
      head("imagegen_workers", "gauge", "Generation workers by state.");
      for (const state of ["idle", "busy", "loading", "failed"] as const) {
        out.push(
          `imagegen_workers{state="${state}"} ${g.workers.filter((w) => w.state === state).length}`,
        );
      }
      head(
        "imagegen_worker_restarts_total",
        "counter",
        "Generation workers replaced after a crash or hang.",
      );
      out.push(`imagegen_worker_restarts_total ${g.workers.reduce((s, w) => s + w.restarts, 0)}`);
    }
    head("imagegen_images_total", "counter", "Images generated.");
    out.push(`imagegen_images_total ${this.#images}`);
    head(
      "imagegen_block_evaluations_skipped_fraction",
      "gauge",
      "Fraction of cacheable block evaluations served from the cache, over all images (step-weighted).",
    );
    out.push(
      `imagegen_block_evaluations_skipped_fraction ${
        num(this.#stepsTotal > 0 ? this.#skippedWeighted / this.#stepsTotal : 0)
      }`,
    );
    head(
      "imagegen_image_skipped_fraction",
      "summary",
      "Per-image fraction of block evaluations skipped.",
    );
    out.push(`imagegen_image_skipped_fraction_sum ${num(this.#skippedSum)}`);
    out.push(`imagegen_image_skipped_fraction_count ${this.#images}`);
    head(
      "imagegen_prediction_ratio",
      "summary",
      "Actual over predicted generation time per request (1 = exact).",
    );
    out.push(`imagegen_prediction_ratio_sum ${num(this.#ratioSum)}`);
    out.push(`imagegen_prediction_ratio_count ${this.#ratioCount}`);
    return out.join("\n") + "\n";
  }
}

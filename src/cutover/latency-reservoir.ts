/**
 * The most recent `capacity` latencies in a ring buffer: bounded memory, O(1) per sample on the hot
 * path; percentiles sort a copy only when metrics are read.
 */
export class LatencyReservoir {
  private readonly samples: Float64Array;
  private next = 0;
  private filled = 0;
  /** Samples recorded since creation (not only those kept). */
  count = 0;
  /** Sum of every sample recorded since creation, in milliseconds. */
  sum = 0;

  constructor(readonly capacity = 2048) {
    this.samples = new Float64Array(capacity);
  }

  record(milliseconds: number): void {
    this.samples[this.next] = milliseconds;
    this.next = (this.next + 1) % this.capacity;
    if (this.filled < this.capacity) this.filled++;
    this.count++;
    this.sum += milliseconds;
  }

  /** p50/p95/p99 in milliseconds over the kept samples (null when none). */
  summary(): LatencySummary {
    const sum = round(this.sum);
    if (this.filled === 0) return { count: this.count, sum, p50: null, p95: null, p99: null };
    const sorted = this.samples.slice(0, this.filled).sort();
    const at = (q: number) => round(sorted[Math.min(this.filled - 1, Math.ceil(q * this.filled) - 1)]!);
    return { count: this.count, sum, p50: at(0.5), p95: at(0.95), p99: at(0.99) };
  }
}

export interface LatencySummary {
  count: number;
  /** Total milliseconds of all `count` samples. */
  sum: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

import type { PrometheusFamily } from "../cutover/prometheus.ts";

/** Default buckets in seconds, from 1 ms to 10 s (OpenTelemetry's advice for db.client.operation.duration). */
export const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10];

/** A Prometheus histogram with one label set per series (e.g. operation and outcome). */
export class Histogram {
  private readonly series = new Map<
    string,
    { labels: Record<string, string>; counts: number[]; sum: number; count: number }
  >();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: readonly number[] = DURATION_BUCKETS,
  ) {}

  observe(value: number, labels: Record<string, string> = {}): void {
    const key = JSON.stringify(Object.entries(labels).sort());
    let s = this.series.get(key);
    if (!s) {
      s = { labels, counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      this.series.set(key, s);
    }
    this.buckets.forEach((bound, i) => {
      if (value <= bound) s.counts[i]! += 1;
    });
    s.sum += value;
    s.count += 1;
  }

  family(): PrometheusFamily {
    const samples: PrometheusFamily["samples"] = [];
    for (const s of this.series.values()) {
      this.buckets.forEach((bound, i) =>
        samples.push({ suffix: "_bucket", labels: { ...s.labels, le: String(bound) }, value: s.counts[i]! }),
      );
      samples.push({ suffix: "_bucket", labels: { ...s.labels, le: "+Inf" }, value: s.count });
      samples.push({ suffix: "_sum", labels: s.labels, value: s.sum });
      samples.push({ suffix: "_count", labels: s.labels, value: s.count });
    }
    return { name: this.name, help: this.help, type: "histogram", samples };
  }
}

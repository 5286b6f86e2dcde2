import assert from "node:assert/strict";
import { test } from "node:test";
import { LatencyReservoir } from "../../../src/cutover/latency-reservoir.ts";
import { renderPrometheus } from "../../../src/cutover/prometheus.ts";
import { ShadowStats } from "../../../src/cutover/shadow-stats.ts";

test("the latency reservoir keeps a bounded window and reports nearest-rank percentiles", () => {
  const reservoir = new LatencyReservoir(100);
  assert.deepEqual(reservoir.summary(), { count: 0, sum: 0, p50: null, p95: null, p99: null });
  for (let i = 1; i <= 100; i++) reservoir.record(i);
  assert.deepEqual(reservoir.summary(), { count: 100, sum: 5050, p50: 50, p95: 95, p99: 99 });
  // 100 more samples of 1000 ms push the old ones out of the window.
  for (let i = 0; i < 100; i++) reservoir.record(1000);
  assert.deepEqual(reservoir.summary(), { count: 200, sum: 105050, p50: 1000, p95: 1000, p99: 1000 });
});

test("shadow stats keep the most recent samples and compute the mismatch rate", () => {
  const stats = new ShadowStats(2);
  stats.counts.matched = 7;
  stats.mismatch("get", "a", { s: 1 }, { s: 2 });
  stats.mismatch("get", "b", { s: 1 }, { s: 3 });
  stats.mismatch("get", "c", { s: 1 }, { s: 4 });
  stats.error("get", "d", "next", new Error("boom"));
  const snapshot = stats.snapshot();
  assert.equal(snapshot.counts.mismatched, 3);
  assert.equal(snapshot.mismatchRate, 0.3);
  assert.deepEqual(
    snapshot.mismatches.map((m) => m.key),
    ["b", "c"],
  );
  assert.deepEqual(snapshot.mismatches[1]!.diff, [{ path: "/s", legacy: 1, next: 4 }]);
  assert.equal(snapshot.errors[0]!.error, "boom");
});

test("Prometheus text: HELP/TYPE lines, escaped labels, null samples left out", () => {
  const text = renderPrometheus([
    {
      name: "x_total",
      help: "things\ncounted",
      type: "counter",
      samples: [
        { labels: { a: 'q"uote', b: "back\\slash" }, value: 3 },
        { labels: { a: "none" }, value: null },
      ],
    },
    { name: "y", help: "a gauge", type: "gauge", samples: [{ value: Number.POSITIVE_INFINITY }] },
  ]);
  assert.equal(
    text,
    [
      "# HELP x_total things\\ncounted",
      "# TYPE x_total counter",
      'x_total{a="q\\"uote",b="back\\\\slash"} 3',
      "# HELP y a gauge",
      "# TYPE y gauge",
      "y +Inf",
      "",
    ].join("\n"),
  );
});

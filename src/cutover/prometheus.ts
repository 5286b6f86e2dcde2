import type { CutoverMetrics } from "./create-cutover.ts";
import { CUTOVER_PHASES, parseCutoverPhase } from "./phases.ts";

/** Names of the metrics the health server exports for cutovers (alert rules refer to these). */
export const CUTOVER_METRICS = {
  phase: "pgshift_cutover_phase",
  rampPercent: "pgshift_cutover_ramp_percent",
  calls: "pgshift_cutover_calls_total",
  readErrors: "pgshift_cutover_read_errors_total",
  writeErrors: "pgshift_cutover_write_errors_total",
  shadow: "pgshift_cutover_shadow_total",
  shadowMismatchRatio: "pgshift_cutover_shadow_mismatch_ratio",
  repairsRecorded: "pgshift_cutover_repairs_recorded_total",
  repairBacklog: "pgshift_cutover_repair_backlog",
  listenerUp: "pgshift_cutover_listener_up",
  readSeconds: "pgshift_cutover_read_seconds",
  writeSeconds: "pgshift_cutover_write_seconds",
  shadowReadSeconds: "pgshift_cutover_shadow_read_seconds",
} as const;

/** The pool gauge the health server exports (labels state="total" | "idle" | "waiting"). */
export const POOL_CONNECTIONS_METRIC = "pgshift_pool_connections";

/** One metric family in Prometheus text exposition format 0.0.4. */
export interface PrometheusFamily {
  name: string;
  help: string;
  type: "counter" | "gauge" | "summary" | "histogram";
  samples: {
    labels?: Record<string, string>;
    value: number | null;
    suffix?: string;
  }[];
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Number.POSITIVE_INFINITY) return "+Inf";
  if (value === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(value);
}

export function renderPrometheus(families: readonly PrometheusFamily[]): string {
  const lines: string[] = [];
  for (const family of families) {
    lines.push(`# HELP ${family.name} ${family.help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`);
    lines.push(`# TYPE ${family.name} ${family.type}`);
    for (const sample of family.samples) {
      if (sample.value === null) continue;
      const labels = Object.entries(sample.labels ?? {})
        .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
        .join(",");
      lines.push(
        `${family.name}${sample.suffix ?? ""}${labels ? `{${labels}}` : ""} ${formatValue(sample.value)}`,
      );
    }
  }
  return `${lines.join("\n")}\n`;
}

/** Metric families for a set of cutovers (one label `cutover` per series). */
export function cutoverMetricFamilies(all: readonly CutoverMetrics[]): PrometheusFamily[] {
  const family = (
    metric: keyof typeof CUTOVER_METRICS,
    help: string,
    type: PrometheusFamily["type"],
    samples: PrometheusFamily["samples"],
  ): PrometheusFamily => ({ name: CUTOVER_METRICS[metric], help, type, samples });
  const perSide = (pick: (m: CutoverMetrics, side: "legacy" | "next") => number) =>
    all.flatMap((m) =>
      (["legacy", "next"] as const).map((side) => ({
        labels: { cutover: m.name, side },
        value: pick(m, side),
      })),
    );
  const latency = (kind: "reads" | "writes" | "shadowReads") =>
    all.flatMap((m) =>
      (["legacy", "next"] as const).flatMap((side) => {
        const s = m.sides[side][kind];
        return [
          ...(["p50", "p95", "p99"] as const).map((q) => ({
            labels: {
              cutover: m.name,
              side,
              quantile: { p50: "0.5", p95: "0.95", p99: "0.99" }[q],
            },
            value: s[q] === null ? null : s[q]! / 1000,
          })),
          { labels: { cutover: m.name, side }, value: s.sum / 1000, suffix: "_sum" },
          {
            labels: { cutover: m.name, side },
            value: s.count,
            suffix: "_count",
          },
        ];
      }),
    );
  return [
    family(
      "phase",
      "Current phase as its position (0 legacy-only .. 5 next-only); the phase label names it",
      "gauge",
      all.map((m) => ({
        labels: { cutover: m.name, phase: m.phase, source: m.phaseSource },
        value: CUTOVER_PHASES.indexOf(parseCutoverPhase(m.phase).kind),
      })),
    ),
    family(
      "rampPercent",
      "Percent of keyed reads served from next",
      "gauge",
      all.map((m) => ({
        labels: { cutover: m.name },
        value: m.routing.reads === "split" ? m.routing.nextReadPercent : m.routing.reads === "next" ? 100 : 0,
      })),
    ),
    family(
      "calls",
      "Calls through the cutover by kind",
      "counter",
      all.flatMap((m) =>
        (["reads", "writes", "other"] as const).map((kind) => ({
          labels: { cutover: m.name, kind },
          value: m.calls[kind],
        })),
      ),
    ),
    family(
      "readErrors",
      "Failed reads per side",
      "counter",
      perSide((m, s) => m.sides[s].readErrors),
    ),
    family(
      "writeErrors",
      "Failed writes per side",
      "counter",
      perSide((m, s) => m.sides[s].writeErrors),
    ),
    family(
      "shadow",
      "Shadow read outcomes",
      "counter",
      all.flatMap((m) =>
        (["matched", "mismatched", "raced", "errors", "skipped"] as const).map((outcome) => ({
          labels: { cutover: m.name, outcome },
          value: m.shadow[outcome],
        })),
      ),
    ),
    family(
      "shadowMismatchRatio",
      "Mismatched shadow comparisons / compared",
      "gauge",
      all.map((m) => ({
        labels: { cutover: m.name },
        value: m.shadow.mismatchRate,
      })),
    ),
    family(
      "repairsRecorded",
      "Failed non-authoritative writes recorded in the repair ledger",
      "counter",
      all.map((m) => ({
        labels: { cutover: m.name },
        value: m.repairs.recorded,
      })),
    ),
    family(
      "repairBacklog",
      "Ledger entries waiting in memory because PostgreSQL was unreachable",
      "gauge",
      all.map((m) => ({
        labels: { cutover: m.name },
        value: m.repairs.backlog,
      })),
    ),
    family(
      "listenerUp",
      "1 when the LISTEN connection for phase changes is up",
      "gauge",
      all.map((m) => ({
        labels: { cutover: m.name },
        value: m.watcher.listening ? 1 : 0,
      })),
    ),
    family("readSeconds", "Latency of served reads (recent window)", "summary", latency("reads")),
    family("writeSeconds", "Latency of writes (recent window)", "summary", latency("writes")),
    family("shadowReadSeconds", "Latency of shadow reads (recent window)", "summary", latency("shadowReads")),
  ];
}

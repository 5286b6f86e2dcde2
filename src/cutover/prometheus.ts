import type { CutoverMetrics } from "./create-cutover.ts";
import { CUTOVER_PHASES, parseCutoverPhase } from "./phases.ts";

/** One metric family in Prometheus text exposition format 0.0.4. */
export interface PrometheusFamily {
  name: string;
  help: string;
  type: "counter" | "gauge" | "summary";
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
    name: string,
    help: string,
    type: PrometheusFamily["type"],
    samples: PrometheusFamily["samples"],
  ): PrometheusFamily => ({ name: `pgshift_cutover_${name}`, help, type, samples });
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
      "ramp_percent",
      "Percent of keyed reads served from next",
      "gauge",
      all.map((m) => ({
        labels: { cutover: m.name },
        value: m.routing.reads === "split" ? m.routing.nextReadPercent : m.routing.reads === "next" ? 100 : 0,
      })),
    ),
    family(
      "calls_total",
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
      "read_errors_total",
      "Failed reads per side",
      "counter",
      perSide((m, s) => m.sides[s].readErrors),
    ),
    family(
      "write_errors_total",
      "Failed writes per side",
      "counter",
      perSide((m, s) => m.sides[s].writeErrors),
    ),
    family(
      "shadow_total",
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
      "shadow_mismatch_ratio",
      "Mismatched shadow comparisons / compared",
      "gauge",
      all.map((m) => ({
        labels: { cutover: m.name },
        value: m.shadow.mismatchRate,
      })),
    ),
    family(
      "repairs_recorded_total",
      "Failed non-authoritative writes recorded in the repair ledger",
      "counter",
      all.map((m) => ({
        labels: { cutover: m.name },
        value: m.repairs.recorded,
      })),
    ),
    family(
      "repair_backlog",
      "Ledger entries waiting in memory because PostgreSQL was unreachable",
      "gauge",
      all.map((m) => ({
        labels: { cutover: m.name },
        value: m.repairs.backlog,
      })),
    ),
    family(
      "listener_up",
      "1 when the LISTEN connection for phase changes is up",
      "gauge",
      all.map((m) => ({
        labels: { cutover: m.name },
        value: m.watcher.listening ? 1 : 0,
      })),
    ),
    family("read_seconds", "Latency of served reads (recent window)", "summary", latency("reads")),
    family("write_seconds", "Latency of writes (recent window)", "summary", latency("writes")),
    family(
      "shadow_read_seconds",
      "Latency of shadow reads (recent window)",
      "summary",
      latency("shadowReads"),
    ),
  ];
}

import { validateCutoverName } from "./phases.ts";
import { CUTOVER_METRICS as M, POOL_CONNECTIONS_METRIC } from "./prometheus.ts";
import { DEFAULT_RAMP_THRESHOLDS, type RampThresholds } from "./ramp-settings.ts";

export interface CutoverAlertRulesOptions {
  name: string;
  /** The ramp's thresholds (p95 and error rate are taken from them; defaults 500 ms and 1 %). */
  thresholds?: Partial<RampThresholds>;
  /** How long a condition must hold before the alert fires (default 5m). */
  for?: string;
}

interface AlertRule {
  alert: string;
  expr: string;
  for: string;
  severity: "page" | "ticket";
  summary: string;
}

/** YAML double-quoted scalar (JSON strings are valid YAML). */
const q = (text: string) => JSON.stringify(text);

/**
 * Prometheus alerting rules (a rules file for `rule_files:`) for one cutover, on the metrics the
 * health server exports: p95 latency, failed calls, pool exhaustion, shadow mismatches, repair
 * backlog, and a ramp that moved back.
 */
export function cutoverAlertRules(options: CutoverAlertRulesOptions): string {
  const name = validateCutoverName(options.name);
  const t = { ...DEFAULT_RAMP_THRESHOLDS, ...options.thresholds };
  const hold = options.for ?? "5m";
  const sel = `cutover=${q(name)}`;
  const p95Seconds = t.maxP95Ms / 1000;
  const rules: AlertRule[] = [
    {
      alert: "PgshiftCutoverReadLatencyHigh",
      expr: `max by (cutover, side) (${M.readSeconds}{${sel},quantile="0.95"}) > ${p95Seconds}`,
      for: hold,
      severity: "page",
      summary: `p95 of served reads above ${t.maxP95Ms} ms on {{ $labels.side }}`,
    },
    {
      alert: "PgshiftCutoverWriteLatencyHigh",
      expr: `max by (cutover, side) (${M.writeSeconds}{${sel},quantile="0.95"}) > ${p95Seconds}`,
      for: hold,
      severity: "page",
      summary: `p95 of writes above ${t.maxP95Ms} ms on {{ $labels.side }}`,
    },
    {
      alert: "PgshiftCutoverFailedCalls",
      expr: `(sum by (cutover) (rate(${M.readErrors}{${sel}}[5m])) + sum by (cutover) (rate(${M.writeErrors}{${sel}}[5m]))) / sum by (cutover) (rate(${M.calls}{${sel},kind=~"reads|writes"}[5m])) > ${t.maxErrorRate}`,
      for: hold,
      severity: "page",
      summary: `more than ${t.maxErrorRate * 100} % of calls failed`,
    },
    {
      alert: "PgshiftPoolExhausted",
      expr: `max(${POOL_CONNECTIONS_METRIC}{state="waiting"}) > 0`,
      for: "1m",
      severity: "page",
      summary: "callers are waiting for a database connection: the pool is exhausted",
    },
    {
      alert: "PgshiftCutoverShadowMismatch",
      expr: `sum by (cutover) (increase(${M.shadow}{${sel},outcome="mismatched"}[10m])) > 0`,
      for: "0m",
      severity: "ticket",
      summary: "shadow reads found legacy and next disagreeing",
    },
    {
      alert: "PgshiftCutoverRepairBacklog",
      expr: `max by (cutover) (${M.repairBacklog}{${sel}}) > 0 or sum by (cutover) (increase(${M.repairsRecorded}{${sel}}[10m])) > 0`,
      for: "0m",
      severity: "ticket",
      summary: "writes to the secondary side failed and wait in the repair ledger",
    },
    {
      alert: "PgshiftCutoverRampRolledBack",
      expr: `max by (cutover) (${M.rampPercent}{${sel}}) < max by (cutover) (max_over_time(${M.rampPercent}{${sel}}[1h]))`,
      for: "0m",
      severity: "page",
      summary: "the share of reads served from next went down (automatic or manual rollback)",
    },
  ];
  const lines = ["groups:", `  - name: ${q(`pgshift-cutover-${name}`)}`, "    rules:"];
  for (const rule of rules) {
    lines.push(
      `      - alert: ${rule.alert}`,
      `        expr: ${q(rule.expr)}`,
      `        for: ${rule.for}`,
      "        labels:",
      `          severity: ${rule.severity}`,
      `          cutover: ${q(name)}`,
      "        annotations:",
      `          summary: ${q(`cutover ${name}: ${rule.summary}`)}`,
    );
  }
  return `${lines.join("\n")}\n`;
}

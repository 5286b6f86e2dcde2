/** The shape of bench/results/*.json. Keys are stable; bench/README.md documents each one. */

export type TargetOp = "<=" | ">=" | "<" | ">";

export interface Target {
  op: TargetOp;
  value: number;
}

export interface Ratio {
  /** null when one side could not be measured (see the scenario's notes). */
  value: number | null;
  /** Human label, e.g. "pgshift wall / pgloader wall". */
  label: string;
  target: Target | null;
  /** Whether value meets target; null without a value or without a target. */
  met: boolean | null;
  /** Where the target applies, when it is narrower than this run (e.g. "on a 5M-row database"). */
  note?: string;
}

export type ScenarioStatus = "ok" | "partial" | "not available" | "failed";

export interface TextTable {
  title: string;
  headers: string[];
  rows: (string | number)[][];
}

export interface ScenarioResult {
  name: string;
  status: ScenarioStatus;
  /** One sentence: what ran, on what data. */
  summary: string;
  params: Record<string, unknown>;
  /** Absolute figures per contender (secondary: the machine is shared and noisy). */
  measurements: Record<string, unknown>;
  /** Headline ratios, measured side by side in this run. */
  ratios: Record<string, Ratio>;
  /** Tables for the Markdown report. */
  tables: TextTable[];
  notes: string[];
  durationS: number;
  /** 1-minute load average when the scenario started and ended: how busy the shared machine was. */
  loadAvg1m?: { start: number; end: number };
}

export interface MachineInfo {
  hostname: string;
  os: string;
  kernel: string;
  cpuModel: string;
  cpus: number;
  memoryGb: number;
  loadAvgStart: number[];
  loadAvgEnd?: number[];
  node: string;
  postgres: string;
  postgresSettings: Record<string, string>;
  tools: Record<string, string>;
  pgshiftVersion: string;
  gitCommit: string;
}

export interface BenchResult {
  resultVersion: 1;
  mode: "quick" | "full";
  startedAt: string;
  finishedAt: string;
  durationS: number;
  argv: string[];
  machine: MachineInfo;
  scenarios: Record<string, ScenarioResult>;
}

export function ratio(
  label: string,
  value: number | null | undefined,
  target: Target | null,
  note?: string,
): Ratio {
  const v = value === undefined || value === null || !Number.isFinite(value) ? null : value;
  let met: boolean | null = null;
  if (v !== null && target) {
    met =
      target.op === "<="
        ? v <= target.value
        : target.op === ">="
          ? v >= target.value
          : target.op === "<"
            ? v < target.value
            : v > target.value;
  }
  return { value: v, label, target, met, ...(note ? { note } : {}) };
}

export function emptyScenario(name: string, summary: string): ScenarioResult {
  return {
    name,
    status: "ok",
    summary,
    params: {},
    measurements: {},
    ratios: {},
    tables: [],
    notes: [],
    durationS: 0,
  };
}

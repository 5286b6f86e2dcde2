import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { PrometheusFamily } from "../cutover/prometheus.ts";
import type { DrillReport } from "./drill.ts";
import { readManifest } from "./manifest.ts";
import { readLastOffsite } from "./offsite-files.ts";

export const BACKUP_METRICS = {
  lastSuccess: "pgshift_backup_last_success_timestamp_seconds",
  lastSize: "pgshift_backup_last_size_bytes",
  lastDuration: "pgshift_backup_last_duration_seconds",
  count: "pgshift_backup_count",
  drillTime: "pgshift_backup_last_drill_timestamp_seconds",
  drillOk: "pgshift_backup_last_drill_ok",
  drillRto: "pgshift_backup_last_drill_rto_seconds",
  drillRpo: "pgshift_backup_last_drill_rpo_seconds",
  offsiteTime: "pgshift_backup_last_offsite_timestamp_seconds",
  offsiteBytes: "pgshift_backup_last_offsite_uploaded_bytes",
} as const;

/** The newest drill of a repository, as `last-drill.json` beside the manifest keeps it. */
export interface LastDrill {
  finishedAt: string;
  ok: boolean;
  label: string | undefined;
  rtoMs: number | undefined;
  rpoMs: number | undefined;
  failure?: { code: string; message: string };
}

const lastDrillPath = (repository: string): string => join(repository, "last-drill.json");

/** Records a drill's outcome in the repository (atomically), for `serve`'s metrics and `backup list`. */
export function recordLastDrill(repository: string, report: DrillReport): void {
  const summary: LastDrill = {
    finishedAt: report.finishedAt,
    ok: report.ok,
    label: report.backup?.label,
    rtoMs: report.rtoMs,
    rpoMs: report.rpoMs,
    ...(report.failure ? { failure: report.failure } : {}),
  };
  const path = lastDrillPath(repository);
  writeFileSync(`${path}.tmp`, `${JSON.stringify(summary, null, 2)}\n`);
  renameSync(`${path}.tmp`, path);
}

export function readLastDrill(repository: string): LastDrill | null {
  const path = lastDrillPath(repository);
  return existsSync(path) ? (JSON.parse(readFileSync(path, "utf8")) as LastDrill) : null;
}

const seconds = (iso: string): number => Date.parse(iso) / 1000;

/**
 * What an operator alerts on for a pgshift backup repository: per kind the newest backup's finish time,
 * size and duration and the number kept, the newest drill's time, outcome, RTO and RPO, and when the
 * newest successful off-site push finished (`backup offsite push`) and what it uploaded. (WAL
 * archiving's counters and lag come from the server: serve/wal-metrics.ts.)
 */
export async function backupMetricFamilies(options: { repository: string }): Promise<PrometheusFamily[]> {
  const families: PrometheusFamily[] = [];
  const backups = readManifest(options.repository).backups;
  const newest = new Map<string, (typeof backups)[number]>();
  const counts = new Map<string, number>();
  for (const b of backups) {
    counts.set(b.kind, (counts.get(b.kind) ?? 0) + 1);
    const seen = newest.get(b.kind);
    if (!seen || seen.finishedAt < b.finishedAt) newest.set(b.kind, b);
  }
  const latest = [...newest.values()];
  families.push(
    {
      name: BACKUP_METRICS.lastSuccess,
      help: "When the newest backup of each kind finished (Unix seconds)",
      type: "gauge",
      samples: latest.map((b) => ({ labels: { kind: b.kind }, value: seconds(b.finishedAt) })),
    },
    {
      name: BACKUP_METRICS.lastSize,
      help: "Size of the newest backup of each kind, in bytes",
      type: "gauge",
      samples: latest.map((b) => ({ labels: { kind: b.kind }, value: b.sizeBytes })),
    },
    {
      name: BACKUP_METRICS.lastDuration,
      help: "How long the newest backup of each kind took, in seconds",
      type: "gauge",
      samples: latest.map((b) => ({ labels: { kind: b.kind }, value: b.durationMs / 1000 })),
    },
    {
      name: BACKUP_METRICS.count,
      help: "Backups of each kind in the repository",
      type: "gauge",
      samples: [...counts].map(([kind, n]) => ({ labels: { kind }, value: n })),
    },
  );
  const drill = readLastDrill(options.repository);
  if (drill)
    families.push(
      {
        name: BACKUP_METRICS.drillTime,
        help: "When the newest restore drill finished (Unix seconds)",
        type: "gauge",
        samples: [{ value: seconds(drill.finishedAt) }],
      },
      {
        name: BACKUP_METRICS.drillOk,
        help: "Whether the newest restore drill passed every check",
        type: "gauge",
        samples: [{ value: drill.ok ? 1 : 0 }],
      },
      {
        name: BACKUP_METRICS.drillRto,
        help: "RTO the newest restore drill measured: restore start until the server accepted writes, in seconds",
        type: "gauge",
        samples: drill.rtoMs === undefined ? [] : [{ value: drill.rtoMs / 1000 }],
      },
      {
        name: BACKUP_METRICS.drillRpo,
        help: "RPO the newest restore drill measured: its target minus the last replayed commit, in seconds",
        type: "gauge",
        samples: drill.rpoMs === undefined ? [] : [{ value: drill.rpoMs / 1000 }],
      },
    );
  const offsite = readLastOffsite(options.repository);
  if (offsite)
    families.push(
      {
        name: BACKUP_METRICS.offsiteTime,
        help: "When the newest successful off-site copy (backup offsite push) finished (Unix seconds)",
        type: "gauge",
        samples: [{ labels: { target: offsite.target }, value: seconds(offsite.finishedAt) }],
      },
      {
        name: BACKUP_METRICS.offsiteBytes,
        help: "Bytes the newest successful off-site copy uploaded (0 when everything was there already)",
        type: "gauge",
        samples: [{ labels: { target: offsite.target }, value: offsite.bytesUploaded }],
      },
    );
  return families;
}

/**
 * Registers the backup metrics with a health server (its `addMetrics` extension point):
 *   registerBackupMetrics(health, { repository: "/var/backups/app" });
 */
export function registerBackupMetrics(
  server: { addMetrics(source: () => Promise<PrometheusFamily[]>): void },
  options: { repository: string },
): void {
  server.addMetrics(() => backupMetricFamilies(options));
}

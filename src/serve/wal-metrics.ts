import type pg from "pg";
import type { PrometheusFamily } from "../cutover/prometheus.ts";
import { readArchiverStatus, readReplicas } from "./wal-status.ts";

/**
 * The archiver (pg_stat_archiver, named as postgres_exporter names it, counters with `_total`) and the
 * standbys' replay lag (pg_stat_replication). Nothing of the archiver when archive_mode is off.
 */
export async function walFamilies(pool: pg.Pool): Promise<PrometheusFamily[]> {
  const [archiver, replicas] = await Promise.all([readArchiverStatus(pool), readReplicas(pool)]);
  const families: PrometheusFamily[] = [];
  if (archiver.configured && !archiver.inRecovery) {
    families.push(
      {
        name: "pg_stat_archiver_archived_total",
        help: "WAL files archived successfully",
        type: "counter",
        samples: [{ value: archiver.archivedCount }],
      },
      {
        name: "pg_stat_archiver_failed_total",
        help: "Failed attempts to archive WAL files",
        type: "counter",
        samples: [{ value: archiver.failedCount }],
      },
      {
        name: "pg_stat_archiver_lag_seconds",
        help: "How long a completed WAL segment has waited for the archiver, in seconds (0: up to date)",
        type: "gauge",
        samples: [{ value: archiver.lagSeconds }],
      },
    );
  }
  families.push({
    name: "pg_stat_replication_replay_lag_seconds",
    help: "Replay lag of each standby streaming from this server, in seconds",
    type: "gauge",
    samples: replicas.map((r) => ({
      labels: { application_name: r.applicationName, client_addr: r.client, state: r.state },
      value: r.replayLagSeconds,
    })),
  });
  return families;
}

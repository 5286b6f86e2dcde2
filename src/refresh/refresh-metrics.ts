import type pg from "pg";
import type { PrometheusFamily } from "../cutover/prometheus.ts";

export const REFRESH_METRICS = {
  liveVersion: "pgshift_refresh_live_version",
  liveSwitched: "pgshift_refresh_live_switched_timestamp_seconds",
  lastOutcome: "pgshift_refresh_last_outcome",
  lastTime: "pgshift_refresh_last_run_timestamp_seconds",
} as const;

export type RefreshOutcome = "switched" | "verification_failed" | "failed" | "building";
const OUTCOMES: readonly RefreshOutcome[] = ["switched", "verification_failed", "failed", "building"];

/**
 * Per dataset: the live version and when it went live; the newest run's outcome (1 for the current one)
 * and when it last moved (switched, built or started). [] when refresh has never run on this database.
 */
export async function refreshMetricFamilies(pool: pg.Pool): Promise<PrometheusFamily[]> {
  const { rows: present } = await pool.query(
    "select to_regclass('pgshift.refresh_versions') is not null as ok",
  );
  if (!present[0].ok) return [];
  const { rows: live } = await pool.query(
    `select dataset, version, extract(epoch from switched_at)::float8 as switched
       from pgshift.refresh_versions where status = 'live' order by dataset`,
  );
  // the newest run of each dataset (version 0 is the adopted schema, not a run)
  const { rows: last } = await pool.query(
    `select distinct on (dataset) dataset, status, error->>'step' as step,
            extract(epoch from coalesce(switched_at, built_at, started_at))::float8 as at
       from pgshift.refresh_versions where version > 0 order by dataset, version desc`,
  );
  const outcomeOf = (r: { status: string; step: string | null }): RefreshOutcome =>
    r.status === "building"
      ? "building"
      : r.status === "failed"
        ? r.step === "verify"
          ? "verification_failed"
          : "failed"
        : "switched";
  return [
    {
      name: REFRESH_METRICS.liveVersion,
      help: "The version of each refresh dataset that is live",
      type: "gauge",
      samples: live.map((r) => ({ labels: { dataset: r.dataset }, value: Number(r.version) })),
    },
    {
      name: REFRESH_METRICS.liveSwitched,
      help: "When the live version of each refresh dataset was switched live (Unix seconds)",
      type: "gauge",
      samples: live
        .filter((r) => r.switched !== null)
        .map((r) => ({ labels: { dataset: r.dataset }, value: Number(r.switched) })),
    },
    {
      name: REFRESH_METRICS.lastOutcome,
      help: "Outcome of each refresh dataset's newest run (1 for the current outcome)",
      type: "gauge",
      samples: last.flatMap((r) =>
        OUTCOMES.map((outcome) => ({
          labels: { dataset: r.dataset, outcome },
          value: outcomeOf(r) === outcome ? 1 : 0,
        })),
      ),
    },
    {
      name: REFRESH_METRICS.lastTime,
      help: "When each refresh dataset's newest run switched, was built or started (Unix seconds)",
      type: "gauge",
      samples: last.map((r) => ({ labels: { dataset: r.dataset }, value: Number(r.at) })),
    },
  ];
}

/**
 * Registers the refresh metrics with a health server (its `addMetrics` extension point):
 *   const health = await startHealthServer({ pool }); registerRefreshMetrics(health, pool);
 */
export function registerRefreshMetrics(
  server: { addMetrics(source: () => Promise<PrometheusFamily[]>): void },
  pool: pg.Pool,
): void {
  server.addMetrics(() => refreshMetricFamilies(pool));
}

import type pg from "pg";
import type { PrometheusFamily } from "../cutover/prometheus.ts";

/** pg_stat_database columns exported as counters, named as postgres_exporter names them plus `_total`. */
const DATABASE_COUNTERS = [
  ["xact_commit", "Transactions committed"],
  ["xact_rollback", "Transactions rolled back"],
  ["blks_read", "Disk blocks read"],
  ["blks_hit", "Buffer cache hits"],
  ["tup_returned", "Rows returned by queries"],
  ["tup_fetched", "Rows fetched by queries"],
  ["tup_inserted", "Rows inserted"],
  ["tup_updated", "Rows updated"],
  ["tup_deleted", "Rows deleted"],
  ["conflicts", "Queries cancelled by recovery conflicts"],
  ["deadlocks", "Deadlocks detected"],
] as const;

/**
 * What the server says about the database the pool points at: pg_stat_database counters, connections by
 * state and the age of the oldest open transaction (pg_stat_activity). One query, one connection. The age is
 * taken against clock_timestamp(), not now(): now() is this query's own start, and a transaction another session
 * opened after it would come out negative.
 */
export async function databaseFamilies(pool: pg.Pool): Promise<PrometheusFamily[]> {
  const { rows } = await pool.query<Record<string, string | null>>(
    `select d.datname, ${DATABASE_COUNTERS.map(([c]) => `d.${c}::text as ${c}`).join(", ")},
            (select coalesce(json_object_agg(s.state, s.n), '{}')::text from (
               select coalesce(state, 'unknown') as state, count(*) as n from pg_stat_activity
                where datname = current_database() and backend_type = 'client backend' group by 1) s) as states,
            (select greatest(coalesce(extract(epoch from max(clock_timestamp() - xact_start)), 0), 0)::text from pg_stat_activity
              where datname = current_database() and xact_start is not null and pid <> pg_backend_pid()) as oldest_xact
       from pg_stat_database d where d.datname = current_database()`,
  );
  const row = rows[0];
  if (!row) return [];
  const datname = row.datname ?? "";
  const families: PrometheusFamily[] = DATABASE_COUNTERS.map(([column, help]) => ({
    name: `pg_stat_database_${column}_total`,
    help,
    type: "counter",
    samples: [{ labels: { datname }, value: Number(row[column] ?? 0) }],
  }));
  const states = JSON.parse(row.states ?? "{}") as Record<string, number>;
  for (const state of ["active", "idle", "idle in transaction", "idle in transaction (aborted)"])
    states[state] ??= 0;
  families.push({
    name: "pg_stat_activity_count",
    help: "Client connections to the database by state",
    type: "gauge",
    samples: Object.entries(states).map(([state, n]) => ({ labels: { datname, state }, value: Number(n) })),
  });
  families.push({
    name: "pg_stat_activity_max_tx_duration_seconds",
    help: "Age of the oldest open transaction, in seconds",
    type: "gauge",
    samples: [{ labels: { datname }, value: Number(row.oldest_xact ?? 0) }],
  });
  return families;
}

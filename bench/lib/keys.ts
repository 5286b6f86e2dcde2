import type { ScenarioName } from "./args.ts";
import { type Ratio, ratio, type ScenarioResult, type Target } from "./result.ts";

interface ExpectedRatio {
  key: string;
  label: string;
  target: Target | null;
}

const sqliteKeys: ExpectedRatio[] = [
  {
    key: "pgshift_default_vs_pgloader_wall",
    label: "pgshift default command (verified) wall / pgloader wall",
    target: { op: "<=", value: 0.8 },
  },
  {
    key: "verify_added_vs_no_verify_wall",
    label: "(pgshift default wall - pgshift --no-verify wall) / pgshift --no-verify wall",
    target: { op: "<=", value: 0.25 },
  },
  {
    key: "pgshift_vs_pgloader_wall",
    label: "pgshift end-to-end wall / pgloader end-to-end wall",
    target: { op: "<=", value: 0.5 },
  },
  {
    key: "pgshift_data_vs_raw_copy",
    label: "pgshift data phase / raw sqlite3 | psql \\copy",
    target: { op: "<=", value: 1.5 },
  },
  {
    key: "pgshift_peak_rss_mb",
    label: "pgshift peak RSS (MB, whole process tree)",
    target: { op: "<", value: 300 },
  },
];

const queryKeys: ExpectedRatio[] = [
  {
    key: "key_lookup_speedup",
    label: "JSON file scan / PostgreSQL key lookup p50 (1 client)",
    target: { op: ">=", value: 200 },
  },
  {
    key: "containment_speedup",
    label: "JSON file scan / PostgreSQL @> p50 (1 client)",
    target: { op: ">=", value: 200 },
  },
  { key: "trigram_speedup", label: "JSON file scan / PostgreSQL trigram ILIKE p50 (1 client)", target: null },
  {
    key: "key_lookup_p99_ms_20_clients",
    label: "key lookup p99 in ms, 20 concurrent clients",
    target: { op: "<", value: 2 },
  },
  {
    key: "key_lookup_p99_ms_20_threads",
    label: "key lookup p99 in ms, 20 closed-loop clients in 20 worker threads, 1 connection each",
    target: { op: "<", value: 2 },
  },
  {
    key: "key_lookup_p99_ms_pgbench_20_clients",
    label:
      "key lookup p99 in ms, pgbench -M prepared -c 20 -j 2, closed loop, same SELECT (server capability)",
    target: { op: "<", value: 2 },
  },
  {
    key: "key_lookup_p99_ms_20_clients_open_loop",
    label: "key lookup p99 in ms, 20 clients in 2 worker threads, open loop",
    target: { op: "<", value: 2 },
  },
];

/**
 * Every scenario's ratio keys: the stable part of the JSON, documented in bench/README.md. A scenario
 * that failed or could not run still carries each key, with a null value.
 */
/** The PgBouncer part of the refresh scenario, and the `refresh-pgbouncer` scenario (the same at full size). */
const refreshPgbouncerKeys: ExpectedRatio[] = [
  {
    key: "refresh_pgbouncer_failed_queries",
    label:
      "probe queries through the PgBouncer alias that failed during the two measured refreshes (20 readers)",
    target: { op: "<=", value: 0 },
  },
  {
    key: "refresh_pgbouncer_reader_p99_ms",
    label: "reader p99 in ms through the PgBouncer alias over build and switch (worst of the two refreshes)",
    target: { op: "<", value: 250 },
  },
  {
    key: "refresh_pgbouncer_pause_ms",
    label: "PgBouncer PAUSE-to-RESUME window in ms, pgbouncer mode",
    target: null,
  },
  {
    key: "refresh_pgbouncer_mixed_window_ms",
    label: "mixed-version window in ms through the PgBouncer alias, pgbouncer mode",
    target: null,
  },
  {
    key: "refresh_pgbouncer_reload_mixed_window_ms",
    label: "mixed-version window in ms through the PgBouncer alias, pgbouncer-reload mode",
    target: null,
  },
  {
    key: "refresh_pgbouncer_rollback_ms",
    label: "rollback through PgBouncer wall in ms",
    target: { op: "<", value: 1000 },
  },
];

export const EXPECTED_RATIOS: Record<ScenarioName, ExpectedRatio[]> = {
  sqlite: sqliteKeys,
  "sqlite-5m": sqliteKeys,
  "sqlite-onetable": sqliteKeys,
  "ndjson-small": [
    {
      key: "ndjson_small_default_vs_copy_rate",
      label: "pgshift default command (verified) docs/s / psql \\copy docs/s, ~100-byte documents",
      target: { op: ">=", value: 0.4 },
    },
    {
      key: "ndjson_small_no_verify_vs_copy_rate",
      label: "pgshift --no-verify docs/s / psql \\copy docs/s, ~100-byte documents",
      target: { op: ">=", value: 0.6 },
    },
    {
      key: "ndjson_small_verify_added_vs_no_verify_wall",
      label:
        "(pgshift default wall - pgshift --no-verify wall) / pgshift --no-verify wall, ~100-byte documents",
      target: null,
    },
  ],
  verify: [
    {
      key: "verify_vs_import_time",
      label: "pgshift verify wall / pgshift import wall",
      target: { op: "<=", value: 1.0 },
    },
    {
      key: "import_and_verify_vs_pgloader_wall",
      label: "(pgshift import + verify) wall / pgloader wall",
      target: null,
    },
  ],
  ndjson: [
    {
      key: "pgshift_vs_copy_rate",
      label: "pgshift NDJSON docs/s / psql \\copy docs/s",
      target: { op: ">=", value: 0.5 },
    },
    {
      key: "pgshift_vs_insert_speedup",
      label: "pgshift NDJSON docs/s / row-by-row INSERT docs/s",
      target: { op: ">=", value: 50 },
    },
    {
      key: "document_verify_vs_import_time",
      label: "pgshift verify ndjson: wall / pgshift import ndjson: wall",
      target: null,
    },
    {
      key: "pgshift_json_dir_vs_copy_rate",
      label: "pgshift JSON directory docs/s / psql \\copy (NDJSON) docs/s",
      target: null,
    },
  ],
  queries: queryKeys,
  "queries-1m": queryKeys,
  "refresh-pgbouncer": refreshPgbouncerKeys,
  refresh: [
    {
      key: "refresh_delta_vs_full_wall",
      label:
        "delta refresh wall (1 % changed, steady state of a delta schedule: reuses the spare) / full reload wall of the same dataset",
      target: { op: "<=", value: 0.5 },
    },
    {
      key: "refresh_first_delta_vs_full_wall",
      label: "first delta after a full reload (copies live and indexes it again) / full reload wall",
      target: { op: "<=", value: 0.5 },
    },
    {
      key: "refresh_failed_queries",
      label: "probe queries that failed during the three measured refreshes (20 readers)",
      target: { op: "<=", value: 0 },
    },
    {
      key: "refresh_swap_lock_ms",
      label: "longest schema-swap lock hold in ms",
      target: { op: "<", value: 100 },
    },
    {
      key: "refresh_reader_p99_ms",
      label: "reader p99 in ms over build and switch (worst of the three refreshes)",
      target: { op: "<", value: 250 },
    },
    {
      key: "refresh_mixed_window_ms",
      label: "mixed-version window in ms (worst of the three refreshes)",
      target: null,
    },
    { key: "refresh_rollback_ms", label: "rollback wall in ms", target: { op: "<", value: 1000 } },
    ...refreshPgbouncerKeys,
  ],
  ramp: [
    {
      key: "ramp_failed_calls",
      label: "calls that failed during the ramp",
      target: { op: "<=", value: 0 },
    },
    {
      key: "ramp_p95_ms",
      label: "caller p95 in ms over the whole ramp (from each request's scheduled time, open loop)",
      target: { op: "<", value: 100 },
    },
    {
      key: "ramp_completed_vs_offered",
      label: "requests completed / requests offered",
      target: { op: ">=", value: 1 },
    },
    {
      key: "ramp_steps_recorded",
      label: "automatic phase changes recorded (reason auto: ...)",
      target: { op: ">=", value: 5 },
    },
  ],
  mirror: [
    {
      key: "mirror_key_p99_1_client_ms",
      label: "key lookup through the fallback reader from PostgreSQL, p99 ms, 1 client",
      target: { op: "<", value: 5 },
    },
    {
      key: "mirror_key_p99_20_clients_ms",
      label: "key lookup through the fallback reader from PostgreSQL, p99 ms, 20 clients",
      target: { op: "<", value: 10 },
    },
    {
      key: "mirror_fallback_p99_ms",
      label: "key lookup served by the cache with PostgreSQL unreachable, p99 ms",
      target: { op: "<", value: 50 },
    },
    {
      key: "mirror_fallback_connect_waits",
      label: "reads that waited for a connect timeout after the breaker opened",
      target: { op: "<=", value: 0 },
    },
    {
      key: "mirror_search_vs_cache_scan",
      label: "API-like search from PostgreSQL vs scanning the cache files: speedup",
      target: { op: ">=", value: 200 },
    },
    {
      key: "mirror_search_p99_ms",
      label: "API-like search from PostgreSQL through the reader, p99 ms",
      target: { op: "<", value: 50 },
    },
    {
      key: "mirror_storage_vs_files",
      label: "table + TOAST + indexes / JSON cache files on disk",
      target: { op: "<=", value: 0.6 },
    },
    {
      key: "mirror_storage_event_vs_files",
      label: "the event table (records of ~5 KB) + indexes / its JSON cache files",
      target: { op: "<=", value: 0.6 },
    },
  ],
  encrypted: [
    {
      key: "encrypted_vs_plain_wall",
      label: "pgshift import wall with 2 encrypted paths + blind index + record MACs / plain import wall",
      target: { op: "<=", value: 1.5 },
    },
  ],
  audit: [
    {
      key: "audit_tps_vs_unaudited",
      label:
        "pgshift audit tps (sealer running) / no-trigger tps, single-row UPDATE, 4 clients, durable commit",
      target: { op: ">=", value: 0.6 },
    },
    {
      key: "audit_tx_time_vs_supa_style",
      label:
        "time per transaction, pgshift audit (sealer running) / supa_audit-style trigger, durable commit",
      target: { op: "<=", value: 1.2 },
    },
    {
      key: "audit_tps_vs_unaudited_async",
      label: "the same with synchronous_commit = off (CPU-bound): pgshift audit tps / no-trigger tps",
      target: { op: ">=", value: 0.6 },
    },
    {
      key: "audit_tx_time_vs_supa_style_async",
      label: "the same with synchronous_commit = off: time per transaction, pgshift audit / supa_audit-style",
      target: { op: "<=", value: 1.2 },
    },
    {
      key: "audit_bulk_insert_vs_unaudited",
      label: "100,000-row INSERT ... SELECT wall, pgshift audit / no trigger",
      target: { op: "<=", value: 4 },
    },
    {
      key: "audit_verify_rows_per_s",
      label: "pgshift audit verify: sealed audit rows checked per second",
      target: { op: ">=", value: 200_000 },
    },
    {
      key: "audit_seal_rows_per_s",
      label: "pgshift audit seal: audit rows chained per second",
      target: null,
    },
  ],
  backup: [
    {
      key: "backup_full_vs_pgbackrest_wall",
      label:
        "pgshift backup run --type full wall / bare pgbackrest backup --type=full wall (median of the rounds' ratios)",
      target: { op: "<=", value: 1.1 },
    },
    {
      key: "backup_logical_encrypted_vs_pg_dump_wall",
      label:
        "pgshift backup run --type logical with a passphrase (OpenPGP) wall / bare pg_dump -Fc wall (median of the rounds' ratios)",
      target: { op: "<=", value: 1.2 },
    },
    {
      key: "restore_rto_s",
      label: "pgshift backup restore (physical, new instance) to ready, seconds",
      target: { op: "<=", value: 120 },
    },
    {
      key: "restore_vs_pgbackrest_restore",
      label: "pgshift physical restore / bare pgbackrest restore + start + recovery (to ready)",
      target: null,
    },
    {
      key: "restore_vs_pg_restore",
      label: "pgshift physical restore / pg_restore of a pg_dump -Fc into an empty database (indexes built)",
      target: null,
    },
    {
      key: "logical_restore_vs_pg_restore",
      label: "pgshift backup restore --database (encrypted dump, single transaction) / bare pg_restore",
      target: null,
    },
    {
      key: "restore_pgbackrest_vs_bare_pgbackrest",
      label: "pgshift pgBackRest restore / bare pgbackrest restore + start + recovery (to ready)",
      target: null,
    },
  ],
  cutover: [
    {
      key: "dual_write_p50_vs_slower_side",
      label: "dual-write p50 / slower side alone (PostgreSQL write) p50",
      target: { op: "<=", value: 1.2 },
    },
    {
      key: "shadow_read_p50_vs_legacy_only",
      label:
        "shadow-phase read p50 / legacy-only read p50 (both through the wrapper, warm, alternating blocks)",
      target: { op: "<=", value: 1.2 },
    },
  ],
  offsite: [
    {
      key: "offsite_push_vs_bare_put_wall",
      label:
        "pgshift offsite push wall (hash, upload, read back, CLI start) / bare concurrent PutObject wall (in-process)",
      target: null,
    },
    {
      key: "offsite_second_push_vs_first_wall",
      label: "second push (nothing to upload) wall / first push wall",
      target: null,
    },
  ],
};

/** Adds each expected key a scenario did not produce, as "not measured", in the documented order. */
export function completeRatios(name: ScenarioName, result: ScenarioResult): void {
  const complete: Record<string, Ratio> = {};
  for (const expected of EXPECTED_RATIOS[name]) {
    complete[expected.key] = result.ratios[expected.key] ?? ratio(expected.label, null, expected.target);
  }
  for (const [key, value] of Object.entries(result.ratios)) complete[key] ??= value;
  result.ratios = complete;
}

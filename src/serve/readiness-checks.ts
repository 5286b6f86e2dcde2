import type pg from "pg";
import { SchemaVersionError } from "../migrate/errors.ts";
import { assertSchemaVersion } from "../migrate/schema-version.ts";
import { sqlstateOf } from "../pg/errors.ts";
import { targetOf } from "../pg/pool.ts";
import type { HealthCheck } from "./health-checks.ts";
import { readArchiverStatus, readReplicas, type ReplicaStatus } from "./wal-status.ts";

export interface MigrationsCheckOptions {
  /** Every migration in this directory must be applied (the application ships its migrations). */
  dir?: string;
  /** The newest applied version must be at least this one. */
  atLeast?: string;
}

/**
 * Readiness: the migrations the application needs are applied (assertSchemaVersion, run on every
 * probe). Fails naming the missing versions, so a deploy that skipped `migrate up` is not sent traffic.
 *
 * @example
 *   await startHealthServer({ pool, checks: [migrationsCheck(pool, { dir: "migrations" })] });
 */
export function migrationsCheck(pool: pg.Pool, options: MigrationsCheckOptions): HealthCheck {
  if (!options.dir && !options.atLeast)
    throw new TypeError("migrationsCheck needs dir (the shipped migrations) or atLeast (a version)");
  return {
    name: "migrations:applied",
    async run() {
      try {
        const info = await assertSchemaVersion(pool, options);
        return { status: "pass", observedValue: info.current ?? "none", observedUnit: "version" };
      } catch (error) {
        // 42501: the application's role may not read the history (provision grants it DML on its schema only)
        if (sqlstateOf(error) === "42501")
          return {
            status: "fail",
            output: `${targetOf(pool).user || "this role"} may not read pgshift.migrations: GRANT USAGE ON SCHEMA pgshift, SELECT ON pgshift.migrations to it (as the migrator)`,
          };
        if (!(error instanceof SchemaVersionError)) throw error;
        const details = error.details as { current: string | null; missing: string[] };
        return {
          status: "fail",
          observedValue: details.current ?? "none",
          observedUnit: "version",
          output: `missing migrations: ${details.missing.join(", ")}; run "pgshift migrate up"`,
        };
      }
    },
  };
}

/**
 * Readiness: WAL archiving keeps up. Fails when a completed WAL segment has waited for the archiver
 * longer than `maxLagSeconds` (point-in-time recovery would lose that much); passes with "archiving not
 * configured" when archive_mode is off, and "in recovery" on a standby.
 */
export function archiveLagCheck(pool: pg.Pool, maxLagSeconds: number): HealthCheck {
  return {
    name: "archiver:lag",
    async run() {
      const status = await readArchiverStatus(pool);
      if (!status.configured)
        return { status: "pass", observedValue: "not configured", output: "archiving not configured" };
      if (status.inRecovery)
        return { status: "pass", observedValue: "in recovery", output: "a standby: its primary archives" };
      const lag = Math.round(status.lagSeconds * 10) / 10;
      if (lag <= maxLagSeconds) return { status: "pass", observedValue: lag, observedUnit: "s" };
      return {
        status: "fail",
        observedValue: lag,
        observedUnit: "s",
        output: `WAL waits for the archiver for ${lag} s (limit ${maxLagSeconds} s): last archived ${status.lastArchivedWal ?? "none"}, ${status.failedCount} failed attempts${status.lastFailedWal ? ` (last ${status.lastFailedWal})` : ""}; check archive_command and the server log`,
      };
    },
  };
}

/** The verdict on the standbys pg_stat_replication lists, against a replay-lag limit. Pure. */
export function replicationLagResult(
  replicas: readonly ReplicaStatus[],
  maxLagSeconds: number,
): Awaited<ReturnType<HealthCheck["run"]>> {
  if (!replicas.length) return { status: "pass", observedValue: "no replicas", output: "no replicas" };
  const worst = replicas.reduce((a, b) => (b.replayLagSeconds > a.replayLagSeconds ? b : a));
  const lag = Math.round(worst.replayLagSeconds * 10) / 10;
  const late = replicas.filter((r) => r.replayLagSeconds > maxLagSeconds);
  if (!late.length) return { status: "pass", observedValue: lag, observedUnit: "s" };
  return {
    status: "fail",
    observedValue: lag,
    observedUnit: "s",
    output: `replay lag over ${maxLagSeconds} s: ${late.map((r) => `${r.applicationName || "(unnamed)"}@${r.client} ${Math.round(r.replayLagSeconds * 10) / 10} s (${r.state})`).join(", ")}`,
  };
}

/** Readiness: every standby replays within `maxLagSeconds`; passes with "no replicas" when none streams. */
export function replicationLagCheck(pool: pg.Pool, maxLagSeconds: number): HealthCheck {
  return {
    name: "replication:lag",
    run: async () => replicationLagResult(await readReplicas(pool), maxLagSeconds),
  };
}

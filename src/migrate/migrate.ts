import { performance } from "node:perf_hooks";
import type pg from "pg";
import { PgshiftError } from "../errors.ts";
import { InterruptedError } from "../pg/abort.ts";
import { ConnectionError, ConnectionLostError } from "../pg/errors.ts";
import { ensureInternalSchema } from "../pg/internal-schema.ts";
import { connectionErrorOf, targetOf } from "../pg/pool.ts";
import type { Logger, ProgressCallback } from "../progress.ts";
import {
  type DriftEntry,
  IrreversibleMigrationError,
  MigrationDriftError,
  MigrationTargetError,
  OutOfOrderError,
} from "./errors.ts";
import { type AppliedMigration, appendLog, migratePart, readHistory, runnerName } from "./history.ts";
import { type LintFinding, lintMigrations } from "./lint.ts";
import { loadMigrations, type MigrationFile, VERSION_PATTERN } from "./migration-file.ts";
import { type LockMode, withMigrationLock } from "./migration-lock.ts";
import { comparePlan, type MigrationPlan } from "./plan.ts";
import { logFailure, migrationSearchPath, runSection, SectionFailure } from "./run-section.ts";

export interface MigrateOptions {
  pool: pg.Pool;
  /** Directory of `<version>_<name>.sql` files. */
  dir: string;
  /** Up: apply up to and including this version. Down: revert everything newer than it ("0" = all). */
  target?: string;
  /** Down only: how many migrations to revert (default 1 when no target). */
  steps?: number;
  /** Compute and return the plan (with lint hazards for up); change nothing. */
  dryRun?: boolean;
  /** Accept changed or missing applied files; each acceptance is recorded in pgshift.migration_log. */
  allowDrift?: boolean;
  /** Apply pending files older than the newest applied one (refused by default). */
  allowOutOfOrder?: boolean;
  lockMode?: LockMode;
  /** How long to wait for another runner's lock (default 0: fail at once naming the holder). */
  lockWaitMs?: number;
  /** lock_timeout for each migration's statements (default 5000). */
  lockTimeoutMs?: number;
  /** statement_timeout for each migration's statements (default 0 = none). */
  statementTimeoutMs?: number;
  /** Retries of a migration (or no-transaction statement) after lock_timeout (default 5). */
  retries?: number;
  retryBaseDelayMs?: number;
  retryMaxDelayMs?: number;
  onProgress?: ProgressCallback;
  logger?: Logger;
  /** Stops between migrations (the one running finishes or rolls back first). */
  signal?: AbortSignal;
}

export type MigrationRunStatus = "applied" | "reverted" | "failed" | "skipped" | "planned";

/** One migration's part in a run. */
export interface MigrationOutcome {
  version: string;
  name: string;
  file: string | null;
  status: MigrationRunStatus;
  transaction: boolean;
  statements: number;
  /** Statements that completed (differs from `statements` only for a failed no-transaction section). */
  statementsDone: number;
  attempts: number;
  durationMs: number;
  error?: { code: string; message: string; line?: number; sqlstate?: string };
  /** Dry run of `up`: lint findings of this migration, as part of the pending set. */
  hazards?: LintFinding[];
  outOfOrder?: boolean;
}

export interface MigrateResult {
  ok: boolean;
  direction: "up" | "down";
  dryRun: boolean;
  database: string;
  lockMode: LockMode;
  lockWaitedMs: number;
  /** Newest applied version before and after the run. */
  versionBefore: string | null;
  versionAfter: string | null;
  migrations: MigrationOutcome[];
  applied: number;
  reverted: number;
  failed: number;
  skipped: number;
  driftAccepted: DriftEntry[];
  durationMs: number;
}

/**
 * Applies pending migrations in version order, each in its own transaction (unless marked
 * `-- migrate:no-transaction`), under the per-database migration lock. Refuses drifted, missing or
 * out-of-order files unless told otherwise. A failing migration stops the run: earlier ones stay
 * applied, the failing one is rolled back, later ones are `skipped`; the result says which.
 *
 * @example
 *   const result = await migrate({ pool, dir: "migrations" });
 *   if (!result.ok) process.exitCode = 1;
 */
export async function migrate(options: MigrateOptions): Promise<MigrateResult> {
  return run("up", options);
}

/** Reverts applied migrations, newest first: one by default, `steps`, or all newer than `target`. */
export async function migrateDown(options: MigrateOptions): Promise<MigrateResult> {
  return run("down", options);
}

async function run(direction: "up" | "down", options: MigrateOptions): Promise<MigrateResult> {
  const started = performance.now();
  const files = await loadMigrations(options.dir);
  validateTarget(options, files);
  const by = runnerName();
  const lockMode = options.lockMode ?? "advisory";
  const base = {
    direction,
    dryRun: Boolean(options.dryRun),
    database: targetOf(options.pool).database,
    lockMode,
  };
  if (options.dryRun) {
    const history = await readHistory(options.pool);
    const plan = comparePlan(files, history);
    const chosen = choose(direction, options, plan, files, history);
    const migrations = chosen.map((m) => outcomeOf(m, "planned", direction, plan));
    if (direction === "up") {
      const lint = lintMigrations(chosen);
      for (const outcome of migrations)
        outcome.hazards = lint.findings.filter((f) => f.version === outcome.version);
    }
    return finish(base, 0, plan.current, plan.current, migrations, [], started);
  }
  // another session in pgshift's schema setup is waited for as long as a migration waits for a lock
  await ensureInternalSchema(options.pool, [migratePart], {
    waitMs: Math.max(options.lockWaitMs ?? 0, options.lockTimeoutMs ?? 5_000),
  });
  return withMigrationLock(
    options.pool,
    {
      mode: lockMode,
      waitMs: options.lockWaitMs ?? 0,
      owner: by,
    },
    async (lock) => {
      const client = lock.client;
      const history = await readHistory(client);
      const plan = comparePlan(files, history);
      const chosen = choose(direction, options, plan, files, history);
      const driftAccepted = plan.drift;
      if (driftAccepted.length) await acceptDrift(client, by, driftAccepted);
      const migrations = chosen.map((m) => outcomeOf(m, "skipped", direction, plan));
      const sectionOptions = {
        lockTimeoutMs: options.lockTimeoutMs ?? 5_000,
        statementTimeoutMs: options.statementTimeoutMs ?? 0,
        retries: options.retries ?? 5,
        retryBaseDelayMs: options.retryBaseDelayMs ?? 200,
        retryMaxDelayMs: options.retryMaxDelayMs ?? 5_000,
        by,
        searchPath: await migrationSearchPath(client),
        assertHeld: lock.assertHeld,
        onRetry: (info: { version: string; attempt: number; delayMs: number; error: unknown }) =>
          options.logger?.warn(
            `migration ${info.version}: lock not available, retry ${info.attempt} in ${info.delayMs} ms`,
            {
              version: info.version,
              attempt: info.attempt,
              delayMs: info.delayMs,
            },
          ),
      };
      const outOfOrder = new Set(plan.outOfOrder.map((m) => m.version));
      for (let i = 0; i < chosen.length; i++) {
        const migration = chosen[i]!;
        const outcome = migrations[i]!;
        const section = direction === "up" ? migration.up : migration.down!;
        if (options.signal?.aborted)
          throw stoppedBetween(new InterruptedError(options.signal.reason), direction, migrations, migration);
        options.onProgress?.({
          task: `migrate ${direction}`,
          done: i,
          total: chosen.length,
          unit: "migrations",
        });
        try {
          const result = await runSection(client, migration, section, direction, sectionOptions);
          outcome.status = direction === "up" ? "applied" : "reverted";
          outcome.attempts = result.attempts;
          outcome.durationMs = result.durationMs;
          outcome.statementsDone = result.statementsDone;
          if (direction === "up" && outOfOrder.has(migration.version))
            await appendLog(client, by, {
              version: migration.version,
              name: migration.name,
              action: "out_of_order_applied",
              sha256: migration.sha256,
            });
          options.logger?.info(`${direction === "up" ? "applied" : "reverted"} ${migration.file}`, {
            version: migration.version,
            durationMs: Math.round(result.durationMs),
          });
        } catch (error) {
          if (!(error instanceof SectionFailure)) throw error;
          // the connection (and the session lock with it) is gone: nothing more can run or be logged on it
          const lost = connectionErrorOf(error.error, options.pool);
          if (lost) throw stoppedBetween(lost, direction, migrations, migration, section.transaction);
          await logFailure(client, by, migration, direction, error, section);
          const cause = error.error as {
            code?: string;
            message?: string;
            details?: { line?: number };
            sqlstate?: string;
          };
          outcome.status = "failed";
          outcome.attempts = error.attempts;
          outcome.statementsDone = error.statementsDone;
          outcome.durationMs = error.durationMs;
          outcome.error = {
            code: cause.code ?? "migration_failed",
            message: cause.message ?? String(error.error),
            ...(cause.details?.line ? { line: cause.details.line } : {}),
            ...(cause.sqlstate ? { sqlstate: cause.sqlstate } : {}),
          };
          break;
        }
      }
      options.onProgress?.({
        task: `migrate ${direction}`,
        done: migrations.filter((m) => m.status === "applied" || m.status === "reverted").length,
        total: chosen.length,
        unit: "migrations",
        finished: true,
      });
      const after = await readHistory(client);
      return finish(
        { ...base },
        lock.waitedMs,
        plan.current,
        after.length ? after[after.length - 1]!.version : null,
        migrations,
        driftAccepted,
        started,
      );
    },
  );
}

/**
 * A run that stopped before its end (interrupted, or its connection lost), as an error that says
 * what was done, what happened to the migration under way, and the command that continues.
 */
function stoppedBetween(
  reason: PgshiftError,
  direction: "up" | "down",
  migrations: readonly MigrationOutcome[],
  current: MigrationFile,
  currentRan?: boolean,
): PgshiftError {
  const done = migrations.filter((m) => m.status === "applied" || m.status === "reverted");
  const verb = direction === "up" ? "applied" : "reverted";
  const under =
    currentRan === undefined
      ? `${current.file} was not started`
      : currentRan
        ? `${current.file} was rolled back (it runs in one transaction; unless the connection broke during its COMMIT: \`pgshift migrate status\` shows it)`
        : `${current.file} runs without a transaction and may be partly done: check it before running again`;
  const message = `${reason.message}; ${verb} in this run: ${done.map((m) => m.version).join(", ") || "none"}; ${under}; run \`pgshift migrate ${direction}\` again to continue`;
  const details = { ...reason.details, [verb]: done.map((m) => m.version), stoppedAt: current.version };
  return reason instanceof ConnectionError
    ? new ConnectionLostError(message, reason.cause, details)
    : new PgshiftError(reason.code, message, { cause: reason, details });
}

function validateTarget(options: MigrateOptions, files: readonly MigrationFile[]): void {
  if (options.target !== undefined && options.target !== "0" && !VERSION_PATTERN.test(options.target))
    throw new MigrationTargetError(
      `target version "${options.target}" is not a 14-digit version (YYYYMMDDHHMMSS) or 0`,
      { target: options.target },
    );
  if (options.steps !== undefined && (!Number.isInteger(options.steps) || options.steps < 1))
    throw new MigrationTargetError(`--steps must be a whole number of at least 1, got ${options.steps}`);
  if (options.steps !== undefined && options.target !== undefined)
    throw new MigrationTargetError("give either --steps or --target, not both");
  if (options.target && options.target !== "0" && !files.some((f) => f.version === options.target)) {
    // A target may also be an applied version whose file is gone; checked against history later.
    if (!options.allowDrift)
      throw new MigrationTargetError(`no migration file has version ${options.target} in ${options.dir}`, {
        target: options.target,
      });
  }
}

/** The migrations a run will touch, in order, after every refusal check. */
function choose(
  direction: "up" | "down",
  options: MigrateOptions,
  plan: MigrationPlan,
  files: readonly MigrationFile[],
  history: readonly AppliedMigration[],
): MigrationFile[] {
  if (plan.drift.length && !options.allowDrift) throw new MigrationDriftError(plan.drift);
  if (direction === "up") {
    if (plan.outOfOrder.length && !options.allowOutOfOrder)
      throw new OutOfOrderError(
        plan.outOfOrder.map((m) => m.file),
        plan.current!,
      );
    const target = options.target;
    return [...plan.outOfOrder, ...plan.pending]
      .filter((m) => target === undefined || m.version <= target)
      .sort((a, b) => a.version.localeCompare(b.version));
  }
  const applied = [...history].sort((a, b) => b.version.localeCompare(a.version));
  const chosen =
    options.target !== undefined
      ? applied.filter((h) => h.version > options.target!)
      : applied.slice(0, options.steps ?? 1);
  const byVersion = new Map(files.map((f) => [f.version, f]));
  return chosen.map((h) => {
    const file = byVersion.get(h.version);
    if (!file)
      throw new IrreversibleMigrationError(h.version, null, `its file ${h.version}_${h.name}.sql is missing`);
    if (!file.down)
      throw new IrreversibleMigrationError(
        h.version,
        file.file,
        `it has no "-- migrate:down" section; write one, or revert by hand and delete the row from pgshift.migrations`,
      );
    return file;
  });
}

async function acceptDrift(client: pg.ClientBase, by: string, entries: readonly DriftEntry[]): Promise<void> {
  for (const entry of entries) {
    await appendLog(client, by, {
      version: entry.version,
      name: entry.name,
      action: entry.file === null ? "missing_accepted" : "drift_accepted",
      sha256: entry.currentSha256,
      previousSha256: entry.recordedSha256,
    });
    if (entry.currentSha256)
      await client.query("update pgshift.migrations set sha256 = $2 where version = $1", [
        entry.version,
        entry.currentSha256,
      ]);
  }
}

function outcomeOf(
  migration: MigrationFile,
  status: MigrationRunStatus,
  direction: "up" | "down",
  plan: MigrationPlan,
): MigrationOutcome {
  const section = direction === "up" ? migration.up : migration.down!;
  return {
    ...(direction === "up" && plan.outOfOrder.includes(migration) ? { outOfOrder: true } : {}),
    version: migration.version,
    name: migration.name,
    file: migration.file,
    status,
    transaction: section.transaction,
    statements: section.statements.length,
    statementsDone: 0,
    attempts: 0,
    durationMs: 0,
  };
}

function finish(
  base: {
    direction: "up" | "down";
    dryRun: boolean;
    database: string;
    lockMode: LockMode;
  },
  lockWaitedMs: number,
  versionBefore: string | null,
  versionAfter: string | null,
  migrations: MigrationOutcome[],
  driftAccepted: DriftEntry[],
  started: number,
): MigrateResult {
  const count = (status: MigrationRunStatus) => migrations.filter((m) => m.status === status).length;
  const failed = count("failed");
  return {
    ok: failed === 0,
    ...base,
    lockWaitedMs: Math.round(lockWaitedMs),
    versionBefore,
    versionAfter,
    migrations,
    applied: count("applied"),
    reverted: count("reverted"),
    failed,
    skipped: count("skipped"),
    driftAccepted,
    durationMs: Math.round(performance.now() - started),
  };
}

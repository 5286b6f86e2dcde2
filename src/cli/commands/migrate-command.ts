import type { Command } from "commander";
import type pg from "pg";
import { ExitCode, UsageError } from "../../errors.ts";
import type { LintFinding, LintResult } from "../../migrate/lint.ts";
import type { MigrateOptions, MigrateResult } from "../../migrate/migrate.ts";
import type { LockMode } from "../../migrate/migration-lock.ts";
import { action } from "../action.ts";
import { auditOperation } from "../audit-operation.ts";
import type { CommandContext } from "../context.ts";
import { renderTable } from "../output.ts";

/** The migrations library, loaded when a migrate command runs: other commands start without it. */
const library = () => import("../../migrate/index.ts");

interface RunFlags {
  dir: string;
  target?: string;
  steps?: string;
  dryRun?: boolean;
  allowDrift?: boolean;
  allowOutOfOrder?: boolean;
  lockWait?: string;
  lockMode?: string;
  lockTimeout?: string;
  statementTimeout?: string;
  retries?: string;
}

const DIR_HELP = "directory of <YYYYMMDDHHMMSS>_<name>.sql files";

/**
 * A pool of its own, without lock_timeout/statement_timeout startup parameters: migrations set those
 * per transaction, and transaction-mode PgBouncer rejects unknown startup parameters.
 */
async function withMigratePool<T>(ctx: CommandContext, fn: (pool: pg.Pool) => Promise<T>): Promise<T> {
  const { url } = await ctx.targetUrl();
  const { createPool } = await import("../../pg/pool.ts");
  const pool = createPool({ url, max: 4, applicationName: "pgshift migrate" });
  try {
    return await fn(pool);
  } finally {
    await pool.end().catch(() => undefined);
  }
}

function milliseconds(flag: string, value: string | undefined, scale: number): number | undefined {
  if (value === undefined) return undefined;
  const number = Number(value);
  if (!Number.isFinite(number) || number < 0)
    throw new UsageError(`${flag} must be a number >= 0, got "${value}"`);
  return Math.round(number * scale);
}

function wholeNumber(flag: string, value: string): number {
  if (!/^\d+$/.test(value)) throw new UsageError(`${flag} must be a whole number >= 0, got "${value}"`);
  return Number(value);
}

function runOptions(ctx: CommandContext, pool: pg.Pool, flags: RunFlags): MigrateOptions {
  const lockMode = (flags.lockMode ?? "advisory") as LockMode;
  if (lockMode !== "advisory" && lockMode !== "row")
    throw new UsageError(`--lock-mode must be "advisory" or "row", got "${flags.lockMode}"`);
  let steps: number | undefined;
  if (flags.steps !== undefined) {
    steps = Number(flags.steps);
    if (!/^\d+$/.test(flags.steps) || steps < 1)
      throw new UsageError(`--steps must be a whole number of at least 1, got "${flags.steps}"`);
  }
  return {
    pool,
    dir: flags.dir,
    ...(flags.target !== undefined ? { target: flags.target } : {}),
    ...(steps !== undefined ? { steps } : {}),
    dryRun: Boolean(flags.dryRun),
    allowDrift: Boolean(flags.allowDrift),
    allowOutOfOrder: Boolean(flags.allowOutOfOrder),
    lockMode,
    lockWaitMs: milliseconds("--lock-wait", flags.lockWait, 1000) ?? 0,
    lockTimeoutMs: milliseconds("--lock-timeout", flags.lockTimeout, 1) ?? ctx.settings.lockTimeoutMs,
    statementTimeoutMs:
      milliseconds("--statement-timeout", flags.statementTimeout, 1) ?? ctx.settings.statementTimeoutMs,
    ...(flags.retries !== undefined ? { retries: wholeNumber("--retries", flags.retries) } : {}),
    onProgress: ctx.progress.onProgress,
    signal: ctx.signal,
    logger: {
      info: () => undefined,
      warn: (message) => ctx.out.notice(message),
    },
  };
}

function withRunFlags(command: Command): Command {
  return command
    .option("--dir <dir>", DIR_HELP, "migrations")
    .option("--dry-run", "print the plan (with lint hazards for up) and change nothing")
    .option(
      "--allow-drift",
      "accept applied files that changed or disappeared (recorded in pgshift.migration_log)",
    )
    .option(
      "--lock-wait <seconds>",
      "wait this long for another runner's lock (default: fail at once naming it)",
    )
    .option(
      "--lock-mode <mode>",
      "advisory (session advisory lock) or row (lock row with heartbeat, for transaction-mode PgBouncer)",
      "advisory",
    )
    .option("--lock-timeout <ms>", "lock_timeout per migration (default: setting lockTimeoutMs, 5000)")
    .option("--retries <n>", "retries after lock_timeout (55P03), with capped, jittered backoff (default 5)")
    .option(
      "--statement-timeout <ms>",
      "statement_timeout per migration (default: setting statementTimeoutMs, 0 = none)",
    );
}

function renderRun(result: MigrateResult): string {
  const verb = result.direction === "up" ? "apply" : "revert";
  if (result.migrations.length === 0)
    return `nothing to ${verb}; database ${result.database} is at ${result.versionAfter ?? "no version"}`;
  const rows = result.migrations.map((m) => [
    m.version,
    m.name,
    m.status + (m.outOfOrder ? " (out of order)" : "") + (m.transaction ? "" : " (no transaction)"),
    m.status === "planned" ? "" : `${Math.round(m.durationMs)} ms`,
    m.attempts || "",
  ]);
  const lines = [renderTable(["version", "name", "status", "time", "attempts"], rows)];
  if (result.dryRun) {
    const hazards = result.migrations.flatMap((m) => m.hazards ?? []);
    lines.push("", `dry run: would ${verb} ${result.migrations.length} migration(s); nothing was changed`);
    if (hazards.length) lines.push("", "hazards:", ...hazards.map(renderFinding));
  } else {
    for (const entry of result.driftAccepted)
      lines.push(`drift accepted and recorded: ${entry.file ?? `${entry.version}_${entry.name} (missing)`}`);
    const failed = result.migrations.find((m) => m.status === "failed");
    if (failed)
      lines.push(
        "",
        `FAILED ${failed.error?.message.startsWith(`${failed.file}:`) ? "" : `${failed.file}: `}${failed.error?.message}`,
        failed.transaction
          ? "  it was rolled back: nothing of it remains; earlier migrations stay applied"
          : `  no transaction: ${failed.statementsDone} of ${failed.statements} statements had completed (write them to be re-runnable)`,
      );
    lines.push(
      "",
      `${result.direction === "up" ? `applied ${result.applied}` : `reverted ${result.reverted}`}, failed ${result.failed}, skipped ${result.skipped}; database ${result.database} now at ${result.versionAfter ?? "no version"} (${result.durationMs} ms)`,
    );
  }
  return lines.join("\n");
}

function renderFinding(finding: LintFinding): string {
  return `  ${finding.file}:${finding.line}: ${finding.ignored ? "ignored " : ""}[${finding.rule}] ${finding.message}${finding.ignored ? ` (reason: ${finding.ignored.reason})` : ""}`;
}

function renderLint(result: LintResult): string {
  const lines = result.findings.map(renderFinding);
  lines.push(
    `${result.files} file(s), ${result.statements} statement(s): ${result.errors} hazard(s)${result.ignored ? `, ${result.ignored} ignored with a reason` : ""}`,
  );
  return lines.join("\n");
}

export function registerMigrateCommands(program: Command): void {
  const group = program
    .command("migrate")
    .description("versioned schema migrations: history with checksums, locks, lint, safe for production")
    .addHelpText(
      "after",
      "\nThe database is the global --to URL; a version to migrate to is --target VERSION.\nExit codes: 0 ok; 1 failure (a migration failed, drift, out-of-order files, lock busy); 2 usage;\n3 status: not up to date / verify: drift or out-of-order files / lint: hazards found.",
    );

  group
    .command("new")
    .description("create migrations/<UTC timestamp>_<name>.sql with up and down sections")
    .argument("<name>", "what the migration does, e.g. add_users_email_index")
    .option("--dir <dir>", DIR_HELP, "migrations")
    .option(
      "--no-transaction",
      "start the file with -- migrate:no-transaction (for CREATE INDEX CONCURRENTLY)",
    )
    .action(
      action(async (ctx, name: string, opts: { dir: string; transaction: boolean }) => {
        const { newMigration } = await library();
        const created = newMigration({
          dir: opts.dir,
          name,
          noTransaction: opts.transaction === false,
        });
        ctx.out.result(created, () => created.file);
        return ExitCode.ok;
      }),
    );

  withRunFlags(
    group
      .command("up")
      .description("apply pending migrations in order, each in its own transaction")
      .option("--target <version>", "apply up to and including this version"),
  )
    .option(
      "--allow-out-of-order",
      "apply pending files older than the newest applied one (refused by default)",
    )
    .action(
      action(async (ctx, flags: RunFlags) =>
        withMigratePool(ctx, async (pool) => {
          const { migrate } = await library();
          const result = await migrate(runOptions(ctx, pool, flags));
          ctx.out.result(result, () => renderRun(result));
          await auditMigration(ctx, pool, result);
          return result.ok ? ExitCode.ok : ExitCode.failure;
        }),
      ),
    );

  withRunFlags(
    group
      .command("down")
      .description("revert applied migrations, newest first (default: the last one)")
      .option("--steps <n>", "how many migrations to revert")
      .option("--target <version>", "revert every migration newer than this version (0 = all)"),
  ).action(
    action(async (ctx, flags: RunFlags) =>
      withMigratePool(ctx, async (pool) => {
        const { migrateDown } = await library();
        const result = await migrateDown(runOptions(ctx, pool, flags));
        ctx.out.result(result, () => renderRun(result));
        await auditMigration(ctx, pool, result);
        return result.ok ? ExitCode.ok : ExitCode.failure;
      }),
    ),
  );

  group
    .command("status")
    .description("list migrations and their state; exit 3 unless up to date")
    .option("--dir <dir>", DIR_HELP, "migrations")
    .action(
      action(async (ctx, flags: { dir: string }) =>
        withMigratePool(ctx, async (pool) => {
          const { migrationStatus } = await library();
          const status = await migrationStatus({ pool, dir: flags.dir });
          ctx.out.result(status, () =>
            [
              status.entries.length
                ? renderTable(
                    ["version", "name", "state", "applied at", "by"],
                    status.entries.map((e) => [
                      e.version,
                      e.name,
                      e.state +
                        (e.outcome === "baseline" ? " (baseline)" : "") +
                        (e.hasDown || !e.file ? "" : " (no down)"),
                      e.appliedAt ? e.appliedAt.toISOString() : "",
                      e.appliedBy ?? "",
                    ]),
                  )
                : `no migrations in ${flags.dir}`,
              "",
              `database ${status.database} at ${status.current ?? "no version"}; ${status.applied} applied, ${status.pending} pending, ${status.outOfOrder} out of order, ${status.drift.length} drifted or missing: ${status.upToDate ? "up to date" : "NOT up to date"}`,
            ].join("\n"),
          );
          return status.upToDate ? ExitCode.ok : ExitCode.mismatch;
        }),
      ),
    );

  group
    .command("verify")
    .description(
      "check applied migrations against their files (sha256); exit 3 on drift, missing or out-of-order files",
    )
    .option("--dir <dir>", DIR_HELP, "migrations")
    .action(
      action(async (ctx, flags: { dir: string }) =>
        withMigratePool(ctx, async (pool) => {
          const { verifyMigrations } = await library();
          const result = await verifyMigrations({ pool, dir: flags.dir });
          ctx.out.result(result, () =>
            [
              ...result.drift.map((d) =>
                d.file === null
                  ? `MISSING  ${d.version}_${d.name}.sql (applied, file gone)`
                  : `CHANGED  ${d.file} (recorded sha256 ${d.recordedSha256.slice(0, 12)}…, file ${d.currentSha256?.slice(0, 12)}…)`,
              ),
              ...result.outOfOrder.map((f) => `OUT OF ORDER  ${f} (older than the newest applied migration)`),
              `${result.verified} applied migration(s) verified, ${result.drift.length} drifted or missing, ${result.outOfOrder.length} out of order, ${result.pending} pending: ${result.ok ? "ok" : "MISMATCH"}`,
            ].join("\n"),
          );
          return result.ok ? ExitCode.ok : ExitCode.mismatch;
        }),
      ),
    );

  group
    .command("lint")
    .description("flag statements that take dangerous locks or rewrite tables; exit 3 on hazards")
    .argument("[files...]", "migration files (default: every file in --dir)")
    .option("--dir <dir>", DIR_HELP, "migrations")
    .option(
      "--pending",
      "lint the database's pending migrations as one set (tables they create count as new)",
    )
    .action(
      action(async (ctx, files: string[], flags: { dir: string; pending?: boolean }) => {
        const { comparePlan, lintMigrations, loadMigrations, readHistory, readMigrationFile } =
          await library();
        let result: LintResult;
        if (flags.pending) {
          if (files.length) throw new UsageError("give either files or --pending, not both");
          const migrations = await loadMigrations(flags.dir);
          const history = await withMigratePool(ctx, (pool) => readHistory(pool));
          const plan = comparePlan(migrations, history);
          result = lintMigrations(
            [...plan.outOfOrder, ...plan.pending].sort((a, b) => a.version.localeCompare(b.version)),
          );
        } else {
          const migrations = files.length
            ? await Promise.all(
                files.map((file) => {
                  const slash = Math.max(file.lastIndexOf("/"), file.lastIndexOf("\\"));
                  return readMigrationFile(slash >= 0 ? file.slice(0, slash) : ".", file.slice(slash + 1));
                }),
              )
            : await loadMigrations(flags.dir);
          // Each file alone: as if every earlier migration were already in production.
          const parts = migrations.map((m) => lintMigrations([m]));
          result = {
            files: migrations.length,
            statements: parts.reduce((n, p) => n + p.statements, 0),
            findings: parts.flatMap((p) => p.findings),
            errors: parts.reduce((n, p) => n + p.errors, 0),
            ignored: parts.reduce((n, p) => n + p.ignored, 0),
          };
        }
        ctx.out.result(result, () => renderLint(result));
        return result.errors ? ExitCode.mismatch : ExitCode.ok;
      }),
    );

  group
    .command("baseline")
    .description(
      "record every migration up to VERSION as applied without running it (adopting an existing database)",
    )
    .argument("<version>", "newest version already reflected in the database")
    .option("--dir <dir>", DIR_HELP, "migrations")
    .option("--dry-run", "show what would be recorded")
    .option("--lock-wait <seconds>", "wait this long for another runner's lock")
    .option("--lock-mode <mode>", "advisory or row", "advisory")
    .action(
      action(async (ctx, version: string, flags: RunFlags) =>
        withMigratePool(ctx, async (pool) => {
          const options = runOptions(ctx, pool, flags);
          const { baselineMigrations } = await library();
          const result = await baselineMigrations({
            pool,
            dir: flags.dir,
            version,
            dryRun: Boolean(flags.dryRun),
            ...(options.lockMode ? { lockMode: options.lockMode } : {}),
            ...(options.lockWaitMs ? { lockWaitMs: options.lockWaitMs } : {}),
          });
          ctx.out.result(result, () =>
            [
              ...result.recorded.map(
                (r) => `${result.dryRun ? "would record" : "recorded"} ${r.file} as applied (baseline)`,
              ),
              `${result.recorded.length} recorded, ${result.alreadyApplied.length} already applied${result.dryRun ? " (dry run: nothing changed)" : ""}`,
            ].join("\n"),
          );
          return ExitCode.ok;
        }),
      ),
    );
}

/** A run that changed the schema goes into the audit trail (when the database has one) with its result. */
async function auditMigration(ctx: CommandContext, pool: pg.Pool, result: MigrateResult): Promise<void> {
  if (result.dryRun || result.applied + result.reverted === 0) return;
  await auditOperation(ctx.out, pool, {
    action: "migrate",
    detail: {
      direction: result.direction,
      versionBefore: result.versionBefore,
      versionAfter: result.versionAfter,
      applied: result.applied,
      reverted: result.reverted,
      failed: result.failed,
      ok: result.ok,
    },
    report: JSON.stringify(result),
  });
}

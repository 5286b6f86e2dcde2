import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import pg from "pg";
import { runPhysicalBackup, setupArchiving, setupPgBackRest } from "../../src/backup/index.ts";
import { pgTool, toolTarget } from "../../src/backup/pg-tool.ts";
import { findPgBinaries } from "../../src/local/binaries.ts";
import {
  destroyLocalInstance,
  type LocalInstanceOptions,
  localInstanceStatus,
  localInstanceUrl,
  startLocalInstance,
} from "../../src/local/instance.ts";
import { quoteIdent } from "../../src/pg/quote.ts";
import { type BackupDataset, generateBackupDataset, restoredComplete } from "../lib/backup-data.ts";
import type { BenchContext, Scenario } from "../lib/context.ts";
import { databaseUrl, dropDatabase, settle } from "../lib/instance.ts";
import { type MeasuredRun, median, round, runMeasured } from "../lib/measure.ts";
import { type BarePgBackRest, bareFullBackup, bareRestore } from "../lib/pgbackrest-bare.ts";
import {
  addSecret,
  failureText,
  parseJsonResult,
  pgshiftHelp,
  redactSecrets,
  runPgshift,
} from "../lib/pgshift.ts";
import { emptyScenario, ratio, type ScenarioResult } from "../lib/result.ts";

const TIMEOUT_MS = 3 * 60 * 60_000;
const DATABASE = "app";

/** One contender's runs: each run's wall time, and whether every run succeeded. */
export interface Runs {
  wallMs: number[];
  ok: boolean;
  error?: string;
  /** Each successful run's own figures (sizes, parts, pgshift's own durations), beside wallMs. */
  details: Record<string, unknown>[];
}

function newRuns(): Runs {
  return { wallMs: [], ok: true, details: [] };
}

function record(runs: Runs, wallMs: number, error: string | undefined, extra: Record<string, unknown> = {}) {
  if (error !== undefined) {
    runs.ok = false;
    runs.error ??= redactSecrets(error).slice(0, 800);
    return;
  }
  runs.wallMs.push(wallMs);
  runs.details.push(extra);
}

/** The median of a contender's runs in seconds, or null when any run failed or none ran. */
function medianS(runs: Runs): number | null {
  return runs.ok && runs.wallMs.length > 0 ? median(runs.wallMs) / 1000 : null;
}

function describe(runs: Runs | undefined, notAvailable?: string): Record<string, unknown> {
  if (!runs) return { ok: false, status: "not available", error: notAvailable ?? "not run" };
  const value = medianS(runs);
  // the figures shown beside the median are the median run's own
  const medianRun = value === null ? -1 : runs.wallMs.indexOf(median(runs.wallMs));
  return {
    ok: value !== null,
    median_s: value === null ? null : round(value, 2),
    wall_s_runs: runs.wallMs.map((ms) => round(ms / 1000, 2)),
    ...(runs.details[medianRun] ?? {}),
    ...(runs.details.some((d) => Object.keys(d).length > 0) ? { runs: runs.details } : {}),
    ...(runs.error ? { error: runs.error } : {}),
  };
}

/**
 * The median of the per-round ratios a[i] / b[i]: each pair ran back to back, so a change in the shared
 * machine's load between rounds moves both sides of a pair together. Null unless both sides succeeded in
 * every round.
 */
export function pairedRatio(a: Runs | undefined, b: Runs | undefined): number | null {
  if (!a || !b || !a.ok || !b.ok || a.wallMs.length === 0 || a.wallMs.length !== b.wallMs.length) return null;
  return median(a.wallMs.map((ms, i) => ms / b.wallMs[i]!));
}

function quotient(a: number | null, b: number | null): number | null {
  return a === null || b === null || b === 0 ? null : a / b;
}

function mb(bytes: number): number {
  return round(bytes / 1024 ** 2, 1);
}

async function sql(url: string, text: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

function runError(run: MeasuredRun): string | undefined {
  return run.exitCode === 0 ? undefined : failureText(run);
}

/**
 * Backups and restores of a database of `mb` MB (1 GB in full mode) on its own managed instance, each
 * pgshift command as users run it (the CLI) beside the bare tool on the same data, alternated round by
 * round, medians compared: `pgshift backup run --type full` (pgBackRest) vs `pgbackrest backup`,
 * `pgshift backup run --type logical` with a passphrase (pg_dump | gpg) vs `pg_dump -Fc`, and the time
 * to a ready server or database (RTO): pgshift's physical restore vs `pgbackrest restore` + start +
 * recovery vs `pg_restore` of a dump (indexes built) vs pgshift's encrypted logical restore.
 */
export function backupScenario(options: {
  mb: number;
  backupRounds: number;
  restoreRounds: number;
}): Scenario {
  return async (ctx: BenchContext): Promise<ScenarioResult> => {
    const result = emptyScenario(
      "backup",
      `A ${options.mb} MB database (one large table of readings with 3 indexes, 3 small tables) on its own managed instance: pgshift backup run --type full (pgBackRest, encrypted repository) vs bare pgbackrest backup, pgshift backup run --type logical with a passphrase vs bare pg_dump -Fc (${options.backupRounds} alternated rounds after a warm-up; the median of the rounds' ratios), then restore to ready: pgshift backup restore (physical, new instance) vs bare pgbackrest restore + start + recovery vs pg_restore of the dump vs pgshift's encrypted logical restore (${options.restoreRounds} round${options.restoreRounds > 1 ? "s" : ""}).`,
    );
    const pid = process.pid;
    const baseDir = ctx.instance.options.baseDir!;
    const source: LocalInstanceOptions = { name: `bench-${pid}-bksrc`, baseDir, binaries: findPgBinaries() };
    const restored: LocalInstanceOptions = { name: `bench-${pid}-bkrs`, baseDir };
    const work = join(ctx.workDir, "backup");
    rmSync(work, { recursive: true, force: true });
    mkdirSync(work, { recursive: true });
    // the managed servers run as an unprivileged user when we are root: they must reach the repositories
    chmodSync(work, 0o755);
    const pbrRepo = join(work, "pgbackrest");
    const repo = join(work, "repo");
    const dumps = join(work, "dumps");
    mkdirSync(dumps);
    const cipherFile = join(work, "repo-cipher.pass");
    const passFile = join(work, "dump.pass");
    const cipher = randomBytes(24).toString("base64url");
    const passphrase = randomBytes(24).toString("base64url");
    for (const secret of [cipher, passphrase]) addSecret(secret);
    writeFileSync(cipherFile, `${cipher}\n`, { mode: 0o600 });
    writeFileSync(passFile, `${passphrase}\n`, { mode: 0o600 });
    const localEnv = { PGSHIFT_LOCAL_DIR: baseDir };
    const pgRestoreDb = "bench_backup_pg_restore";
    const pgshiftRestoreDb = "bench_backup_pgshift_restore";
    let bareCleanup: (() => Promise<void>) | undefined;

    try {
      ctx.log(`backup: starting the source instance ${source.name}`);
      await startLocalInstance(source);
      const adminUrl = localInstanceUrl(source);
      const password = decodeURIComponent(new URL(adminUrl).password);
      const superuser = decodeURIComponent(new URL(adminUrl).username);
      addSecret(password);
      await sql(adminUrl, `create database ${quoteIdent(DATABASE)}`);
      const url = databaseUrl(adminUrl, DATABASE);
      const dataset: BackupDataset = await generateBackupDataset(url, options.mb, {
        parallel: 2,
        log: ctx.log,
      });
      const sizeNote = `on a ${mb(dataset.bytes)} MB database (pg_database_size)${options.mb < 1024 ? `, smaller than the 1 GB the target is stated for (${ctx.mode} mode)` : ""}`;
      result.params = {
        target_mb: options.mb,
        database_mb: mb(dataset.bytes),
        rows: dataset.rows,
        bytes_per_row: dataset.bytesPerRow,
        generate_s: round(dataset.generateMs / 1000, 1),
        backup_rounds: options.backupRounds,
        restore_rounds: options.restoreRounds,
      };
      ctx.log(`backup: ${mb(dataset.bytes)} MB generated in ${round(dataset.generateMs / 1000, 1)} s`);

      // --- pgBackRest: pgshift backup run --type full vs bare pgbackrest backup --type=full ---
      ctx.log("backup: pgBackRest setup (encrypted repository, archive-push)");
      const setup = await setupPgBackRest({
        instance: source,
        repository: pbrRepo,
        cipherPassphrase: { file: cipherFile },
      });
      const status = await localInstanceStatus(source);
      const bare: BarePgBackRest = {
        config: setup.config,
        stanza: setup.stanza,
        // written by setupPgBackRest beside pgbackrest.conf
        pgpass: join(status.dir, "pgbackrest.pgpass"),
        binDir: status.binDir!,
      };
      const pgshiftFull = () =>
        runPgshift(
          ctx.repoRoot,
          ["backup", "run", "--type", "full", "--instance", source.name!, "--repo", pbrRepo, "--json"],
          { env: localEnv, timeoutMs: TIMEOUT_MS },
        );
      const fullRuns = { pgshift: newRuns(), bare: newRuns() };
      const measureFull = async (who: "pgshift" | "bare", measured: boolean) => {
        await settle(adminUrl);
        const run = who === "bare" ? await bareFullBackup(bare) : await pgshiftFull();
        if (!measured) return;
        const made = who === "pgshift" ? parseJsonResult(run.stdout) : undefined;
        record(
          fullRuns[who],
          run.wallMs,
          runError(run),
          made
            ? {
                size_mb: mb(Number(made.sizeBytes)),
                repository_mb: mb(Number(made.repositoryBytes)),
                label: made.label,
              }
            : {},
        );
      };
      ctx.log("backup: full backups, warm-up (bare, pgshift)");
      await measureFull("bare", false);
      await measureFull("pgshift", false);
      for (let i = 0; i < options.backupRounds; i++) {
        ctx.log(`backup: full backups, round ${i + 1}/${options.backupRounds}`);
        const order: ("pgshift" | "bare")[] = i % 2 === 0 ? ["bare", "pgshift"] : ["pgshift", "bare"];
        for (const who of order) await measureFull(who, true);
      }

      // --- logical: pgshift backup run --type logical --passphrase-file vs bare pg_dump -Fc ---
      const dumpRuns = { pgshift: newRuns(), bare: newRuns() };
      let lastBareDump: string | undefined;
      let lastPgshiftLabel: string | undefined;
      const measureDump = async (who: "pgshift" | "bare", n: number, measured: boolean) => {
        await settle(adminUrl);
        if (who === "bare") {
          const file = join(dumps, `bare-${n}.dump`);
          const target = toolTarget(url);
          const run = await runMeasured(
            pgTool("pg_dump"),
            ["-Fc", "--no-password", "-f", file, ...target.args],
            { env: target.env, timeoutMs: TIMEOUT_MS },
          );
          if (!measured) return;
          const error = runError(run);
          if (error === undefined) lastBareDump = file;
          record(dumpRuns.bare, run.wallMs, error, error ? {} : { size_mb: mb(statSync(file).size) });
          return;
        }
        const label = `bench-logical-${n}`;
        const run = await runPgshift(
          ctx.repoRoot,
          [
            "backup",
            "run",
            "--type",
            "logical",
            "--repo",
            repo,
            "--label",
            label,
            "--passphrase-file",
            passFile,
            "--json",
          ],
          { env: { DATABASE_URL: url }, timeoutMs: TIMEOUT_MS },
        );
        if (!measured) return;
        const made = parseJsonResult(run.stdout) as
          { entry?: { label: string; sizeBytes: number } } | undefined;
        const error = runError(run);
        if (error === undefined) lastPgshiftLabel = made?.entry?.label;
        record(
          dumpRuns.pgshift,
          run.wallMs,
          error,
          error ? {} : { size_mb: mb(made?.entry?.sizeBytes ?? 0) },
        );
      };
      ctx.log("backup: logical dumps, warm-up (bare, pgshift)");
      await measureDump("bare", 0, false);
      await measureDump("pgshift", 0, false);
      for (let i = 1; i <= options.backupRounds; i++) {
        ctx.log(`backup: logical dumps, round ${i}/${options.backupRounds}`);
        const order: ("pgshift" | "bare")[] = i % 2 === 1 ? ["bare", "pgshift"] : ["pgshift", "bare"];
        for (const who of order) await measureDump(who, i, true);
      }
      // not measured: what the other helper's run measures
      ctx.log("backup: physical backup for pgshift's restore (pg_basebackup + archived WAL)");
      await setupArchiving(source, { repository: repo });
      const physicalStarted = performance.now();
      await runPhysicalBackup({ url: adminUrl, repository: repo, label: "bench-physical" });
      const physicalMs = performance.now() - physicalStarted;
      await waitForArchivedSwitch(adminUrl, join(repo, "wal"));
      result.measurements.pgshift_physical_backup = { wall_s: round(physicalMs / 1000, 2) };

      // --- restores to ready ---
      const restoreHelp = (await pgshiftHelp(ctx.repoRoot, ["backup", "restore"])) ?? "";
      const pgshiftHasPgBackRestRestore = restoreHelp.includes("--engine");
      const restoreRuns: Record<string, Runs> = {
        pgshift_physical: newRuns(),
        bare_pgbackrest: newRuns(),
        bare_pg_restore: newRuns(),
        pgshift_logical: newRuns(),
        ...(pgshiftHasPgBackRestRestore ? { pgshift_pgbackrest: newRuns() } : {}),
      };
      const incomplete = (check: Awaited<ReturnType<typeof restoredComplete>>) =>
        check.complete
          ? undefined
          : `restored copy incomplete: rows ${JSON.stringify(check.rows)}, ${check.indexes} indexes`;

      const restoreInto = async (args: string[]): Promise<{ run: MeasuredRun; error?: string }> => {
        await destroyLocalInstance(restored).catch(() => undefined);
        const run = await runPgshift(ctx.repoRoot, args, { env: localEnv, timeoutMs: TIMEOUT_MS });
        let error = runError(run);
        if (error === undefined) {
          const check = await restoredComplete(
            databaseUrl(localInstanceUrl(restored), DATABASE),
            dataset.rows,
          );
          error = incomplete(check);
        }
        await destroyLocalInstance(restored);
        return { run, ...(error !== undefined ? { error } : {}) };
      };

      const contenders: Record<string, () => Promise<void>> = {
        pgshift_physical: async () => {
          const { run, error } = await restoreInto([
            "backup",
            "restore",
            "--repo",
            repo,
            "--label",
            "bench-physical",
            "--into-instance",
            restored.name!,
            "--instance",
            source.name!,
            "--json",
          ]);
          const reported = parseJsonResult(run.stdout) as { rtoMs?: number } | undefined;
          record(restoreRuns.pgshift_physical!, run.wallMs, error, {
            reported_rto_s: reported?.rtoMs !== undefined ? round(reported.rtoMs / 1000, 2) : null,
          });
        },
        pgshift_pgbackrest: async () => {
          const { run, error } = await restoreInto([
            "backup",
            "restore",
            "--engine",
            "pgbackrest",
            "--repo",
            pbrRepo,
            "--into-instance",
            restored.name!,
            "--instance",
            source.name!,
            "--json",
          ]);
          record(restoreRuns.pgshift_pgbackrest!, run.wallMs, error);
        },
        bare_pgbackrest: async () => {
          const restore = await bareRestore(bare, {
            dir: join(work, "bare-restore"),
            user: superuser,
            password,
            database: DATABASE,
          });
          bareCleanup = restore.destroy;
          let error = restore.error;
          if (restore.ok) error = incomplete(await restoredComplete(restore.url!, dataset.rows));
          await restore.destroy();
          bareCleanup = undefined;
          record(restoreRuns.bare_pgbackrest!, restore.totalMs, error, {
            restore_s: round(restore.restoreMs / 1000, 2),
            start_s: round(restore.startMs / 1000, 2),
            recovery_s: round(restore.recoveryMs / 1000, 2),
          });
        },
        bare_pg_restore: async () => {
          await dropDatabase(ctx.instance.adminUrl, pgRestoreDb);
          const target = toolTarget(databaseUrl(ctx.instance.adminUrl, pgRestoreDb));
          const t0 = performance.now();
          await sql(ctx.instance.adminUrl, `create database ${quoteIdent(pgRestoreDb)}`);
          const run = await runMeasured(
            pgTool("pg_restore"),
            ["--no-password", "--exit-on-error", "--no-owner", ...target.args, lastBareDump!],
            { env: target.env, timeoutMs: TIMEOUT_MS },
          );
          const wallMs = performance.now() - t0;
          let error = runError(run);
          if (error === undefined)
            error = incomplete(
              await restoredComplete(databaseUrl(ctx.instance.adminUrl, pgRestoreDb), dataset.rows),
            );
          await dropDatabase(ctx.instance.adminUrl, pgRestoreDb);
          record(restoreRuns.bare_pg_restore!, wallMs, error);
        },
        pgshift_logical: async () => {
          await dropDatabase(ctx.instance.adminUrl, pgshiftRestoreDb);
          const run = await runPgshift(
            ctx.repoRoot,
            [
              "backup",
              "restore",
              "--repo",
              repo,
              "--label",
              lastPgshiftLabel!,
              "--database",
              pgshiftRestoreDb,
              "--passphrase-file",
              passFile,
              "--json",
            ],
            { env: { DATABASE_URL: ctx.instance.adminUrl }, timeoutMs: TIMEOUT_MS },
          );
          let error = runError(run);
          if (error === undefined)
            error = incomplete(
              await restoredComplete(databaseUrl(ctx.instance.adminUrl, pgshiftRestoreDb), dataset.rows),
            );
          await dropDatabase(ctx.instance.adminUrl, pgshiftRestoreDb);
          record(restoreRuns.pgshift_logical!, run.wallMs, error);
        },
      };
      const names = Object.keys(restoreRuns);
      for (let i = 0; i < options.restoreRounds; i++) {
        // rotate the order round by round: nobody always runs first (or last) on the shared machine
        const order = names.map((_, k) => names[(k + i) % names.length]!);
        for (const name of order) {
          if (
            (name.endsWith("pg_restore") && !lastBareDump) ||
            (name === "pgshift_logical" && !lastPgshiftLabel)
          ) {
            record(restoreRuns[name]!, 0, "no dump to restore: the dump runs failed");
            continue;
          }
          ctx.log(`backup: restore ${name}, round ${i + 1}/${options.restoreRounds}`);
          await settle(adminUrl);
          await settle(ctx.instance.adminUrl);
          await contenders[name]!();
        }
      }

      // --- figures ---
      const rto = Object.fromEntries(names.map((n) => [n, medianS(restoreRuns[n]!)]));
      const pairs = (a: Runs | undefined, b: Runs | undefined) =>
        a && b && a.ok && b.ok ? a.wallMs.map((ms, i) => round(ms / b.wallMs[i]!, 3)) : [];
      result.measurements = {
        ...result.measurements,
        round_ratios: {
          full: pairs(fullRuns.pgshift, fullRuns.bare),
          logical: pairs(dumpRuns.pgshift, dumpRuns.bare),
          ratio_of_medians_full: quotient(medianS(fullRuns.pgshift), medianS(fullRuns.bare)),
          ratio_of_medians_logical: quotient(medianS(dumpRuns.pgshift), medianS(dumpRuns.bare)),
        },
        pgshift_full: describe(fullRuns.pgshift),
        pgbackrest_full: describe(fullRuns.bare),
        pgshift_logical_encrypted: describe(dumpRuns.pgshift),
        pg_dump: describe(dumpRuns.bare),
        restore_pgshift_physical: describe(restoreRuns.pgshift_physical),
        restore_pgshift_pgbackrest: describe(
          restoreRuns.pgshift_pgbackrest,
          "this build's `pgshift backup restore` has no --engine (pgBackRest restores)",
        ),
        restore_bare_pgbackrest: describe(restoreRuns.bare_pgbackrest),
        restore_bare_pg_restore: describe(restoreRuns.bare_pg_restore),
        restore_pgshift_logical: describe(restoreRuns.pgshift_logical),
      };
      result.ratios.backup_full_vs_pgbackrest_wall = ratio(
        "pgshift backup run --type full wall / bare pgbackrest backup --type=full wall (median of the rounds' ratios)",
        pairedRatio(fullRuns.pgshift, fullRuns.bare),
        { op: "<=", value: 1.1 },
        sizeNote,
      );
      result.ratios.backup_logical_encrypted_vs_pg_dump_wall = ratio(
        "pgshift backup run --type logical with a passphrase (OpenPGP) wall / bare pg_dump -Fc wall (median of the rounds' ratios)",
        pairedRatio(dumpRuns.pgshift, dumpRuns.bare),
        { op: "<=", value: 1.2 },
        sizeNote,
      );
      result.ratios.restore_rto_s = ratio(
        "pgshift backup restore (physical, new instance) to ready, seconds",
        rto.pgshift_physical ?? null,
        { op: "<=", value: 120 },
        sizeNote,
      );
      result.ratios.restore_vs_pgbackrest_restore = ratio(
        "pgshift physical restore / bare pgbackrest restore + start + recovery (to ready)",
        pairedRatio(restoreRuns.pgshift_physical, restoreRuns.bare_pgbackrest),
        null,
      );
      result.ratios.restore_vs_pg_restore = ratio(
        "pgshift physical restore / pg_restore of a pg_dump -Fc into an empty database (indexes built)",
        pairedRatio(restoreRuns.pgshift_physical, restoreRuns.bare_pg_restore),
        null,
      );
      result.ratios.logical_restore_vs_pg_restore = ratio(
        "pgshift backup restore --database (encrypted dump, single transaction) / bare pg_restore",
        pairedRatio(restoreRuns.pgshift_logical, restoreRuns.bare_pg_restore),
        null,
      );
      result.ratios.restore_pgbackrest_vs_bare_pgbackrest = ratio(
        "pgshift pgBackRest restore / bare pgbackrest restore + start + recovery (to ready)",
        pairedRatio(restoreRuns.pgshift_pgbackrest, restoreRuns.bare_pgbackrest),
        null,
        pgshiftHasPgBackRestRestore
          ? undefined
          : "not in this build: `pgshift backup restore` has no --engine",
      );

      const row = (name: string, m: Record<string, unknown>, extra: string) => [
        name,
        typeof m.median_s === "number" ? m.median_s : "n/a",
        Array.isArray(m.wall_s_runs) && m.wall_s_runs.length ? m.wall_s_runs.join(", ") : "-",
        extra,
        m.ok ? "ok" : String(m.error ?? "failed").slice(0, 120),
      ];
      const ms = result.measurements as Record<string, Record<string, unknown>>;
      result.tables.push({
        title: `Backups of a ${mb(dataset.bytes)} MB database (${options.backupRounds} alternated rounds after a warm-up; per-round pgshift / bare: full ${pairs(fullRuns.pgshift, fullRuns.bare).join(", ") || "-"}, logical ${pairs(dumpRuns.pgshift, dumpRuns.bare).join(", ") || "-"})`,
        headers: ["contender", "median s", "runs s", "output", "status"],
        rows: [
          row(
            "pgshift backup run --type full (pgBackRest)",
            ms.pgshift_full!,
            `${ms.pgshift_full!.repository_mb ?? "?"} MB in the repository`,
          ),
          row("pgbackrest backup --type=full (bare)", ms.pgbackrest_full!, "same stanza and repository"),
          row(
            "pgshift backup run --type logical --passphrase-file",
            ms.pgshift_logical_encrypted!,
            `${ms.pgshift_logical_encrypted!.size_mb ?? "?"} MB (OpenPGP)`,
          ),
          row("pg_dump -Fc (bare)", ms.pg_dump!, `${ms.pg_dump!.size_mb ?? "?"} MB`),
        ],
      });
      result.tables.push({
        title: `Restores of the ${mb(dataset.bytes)} MB database to ready (RTO; median of ${options.restoreRounds}; the figures in brackets are the median run's)`,
        headers: ["contender", "median s", "runs s", "what ready means", "status"],
        rows: [
          row(
            "pgshift backup restore --into-instance (pg_basebackup tar + WAL)",
            ms.restore_pgshift_physical!,
            `command returned: new instance up, archiving off (pgshift's own rtoMs: ${ms.restore_pgshift_physical!.reported_rto_s ?? "?"} s)`,
          ),
          row(
            "pgshift backup restore --engine pgbackrest",
            ms.restore_pgshift_pgbackrest!,
            "command returned",
          ),
          row(
            "pgbackrest restore + pg_ctl start + recovery (bare)",
            ms.restore_bare_pgbackrest!,
            `pg_is_in_recovery() false (restore ${ms.restore_bare_pgbackrest!.restore_s ?? "?"} s, start ${ms.restore_bare_pgbackrest!.start_s ?? "?"} s, recovery ${ms.restore_bare_pgbackrest!.recovery_s ?? "?"} s)`,
          ),
          row(
            "createdb + pg_restore of pg_dump -Fc (bare)",
            ms.restore_bare_pg_restore!,
            "pg_restore returned: rows loaded, indexes and keys built",
          ),
          row(
            "pgshift backup restore --database (encrypted dump)",
            ms.restore_pgshift_logical!,
            "command returned: gpg | pg_restore --single-transaction done",
          ),
        ],
      });
      result.notes.push(
        `Database: readings (${dataset.rows.readings!.toLocaleString("en-US")} rows: bigint key, integer foreign key, timestamptz, numeric(12,4), text; 2 secondary indexes) plus sites, devices and status_codes, generated with generate_series before archiving was turned on; ${mb(dataset.bytes)} MB by pg_database_size after VACUUM ANALYZE.`,
        "The source runs on its own managed instance (durable defaults). pgBackRest: repository encrypted (aes-256-cbc) and zst-compressed as `pgshift backup setup` configures it; the bare backup runs `pgbackrest --config=<pgshift's pgbackrest.conf> --stanza=main backup --type=full` as the server's user. Logical: pgshift streams pg_dump -Fc | gpg --symmetric (AES-256, no gpg compression) with a sha256 on the way; bare is `pg_dump -Fc -f FILE`. Every copy is a CHECKPOINT after the last, and each restore is checked (row counts of the four tables, 6 indexes) before its time counts.",
        "Restores: pgshift's physical restore creates a new managed instance, checks the backup's sha256, extracts the tar, replays the archived WAL and restarts once with archiving off; its own `rtoMs` (restore start to accepting writes, before that restart) is in the measurements. The bare pgBackRest restore is `pgbackrest restore --pg1-path=NEW --archive-mode=off`, `pg_ctl start -w` on a free port, then polling until pg_is_in_recovery() is false. pg_restore restores the bare dump into an empty database of the bench instance (no --jobs), pgshift's logical restore the encrypted dump into another. The repositories and dumps were just written and the machine has far more memory than the database, so every restore reads from a warm page cache: a repository on another disk or host adds its read time to each side.",
      );
      const all = [
        fullRuns.pgshift,
        fullRuns.bare,
        dumpRuns.pgshift,
        dumpRuns.bare,
        ...Object.values(restoreRuns),
      ];
      result.status = all.every((r) => r.ok) ? "ok" : all.some((r) => r.ok) ? "partial" : "failed";
      for (const [name, runs] of Object.entries({ ...fullRuns, ...restoreRuns }))
        if (!runs.ok) result.notes.push(`${name} failed: ${runs.error ?? "?"}`);
      for (const [name, runs] of Object.entries(dumpRuns))
        if (!runs.ok) result.notes.push(`logical ${name} failed: ${runs.error ?? "?"}`);
    } finally {
      await bareCleanup?.().catch(() => undefined);
      await destroyLocalInstance(restored).catch(() => undefined);
      await destroyLocalInstance(source).catch(() => undefined);
      for (const db of [pgRestoreDb, pgshiftRestoreDb])
        await dropDatabase(ctx.instance.adminUrl, db).catch(() => undefined);
      rmSync(work, { recursive: true, force: true });
    }
    return result;
  };
}

/** Switches WAL and waits until the segment is in the archive: the backup's WAL is all there then. */
async function waitForArchivedSwitch(url: string, walDir: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const r = await client.query<{ seg: string }>("select pg_walfile_name(pg_switch_wal()) as seg");
    const segment = r.rows[0]!.seg;
    for (let i = 0; i < 600 && !existsSync(join(walDir, segment)); i++)
      await new Promise((resolve) => setTimeout(resolve, 100));
    if (!existsSync(join(walDir, segment)))
      throw new Error(`WAL segment ${segment} was not archived into ${walDir} within 60 s`);
  } finally {
    await client.end();
  }
}

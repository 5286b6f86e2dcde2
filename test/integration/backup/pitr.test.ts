import assert from "node:assert/strict";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  statSync,
  truncateSync,
} from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, test } from "node:test";
import pg from "pg";
import {
  addToManifest,
  BackupError,
  lsnPosition,
  RecoveryWindowError,
  recoveryWindow,
  restorePointInTime,
  runPhysicalBackup,
  setupArchiving,
  sha256File,
} from "../../../src/backup/index.ts";
import { UsageError } from "../../../src/errors.ts";
import {
  destroyLocalInstance,
  localInstanceStatus,
  localInstanceUrl,
  startLocalInstance,
  stopLocalInstance,
} from "../../../src/local/instance.ts";
import { findPgBinaries } from "../../../src/local/binaries.ts";
import { installAudit, verifyAudit } from "../../../src/audit/index.ts";
import { runCli } from "../../helpers/cli.ts";
import { withDatabase } from "../../helpers/database.ts";

// The instances backed up here run the server major of the installed backup tools (Debian's), whatever
// major the rest of the test run covers: pg_basebackup and pgBackRest 2.45 cannot back up a newer one.
const BACKUP_BINARIES = findPgBinaries();
const baseDir = mkdtempSync(join(tmpdir(), "pgshift-pitr-"));
chmodSync(baseDir, 0o755);
const repository = join(baseDir, "repo");
const prod = { name: "prod", baseDir, binaries: BACKUP_BINARIES };
const restored = { name: "restored", baseDir, binaries: BACKUP_BINARIES };
const byLsn = { name: "bylsn", baseDir, binaries: BACKUP_BINARIES };
const audited = { name: "audited", baseDir, binaries: BACKUP_BINARIES };
const cliRestored = { name: "clirestored", baseDir, binaries: BACKUP_BINARIES };

after(async () => {
  for (const o of [restored, byLsn, prod, cliRestored, audited])
    await destroyLocalInstance(o).catch(() => undefined);
});

async function sql<T extends pg.QueryResultRow>(url: string, text: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text)).rows;
  } finally {
    await client.end();
  }
}

const NOW_TEXT = `to_char(clock_timestamp() at time zone 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

test("PITR with stock tools: restore to a time between two inserts, both sides checked", async () => {
  const setup = await setupArchiving(prod, { repository, archiveTimeoutSeconds: 60 });
  assert.deepEqual(setup.changed.sort(), ["archive_command", "archive_mode", "archive_timeout"]);
  assert.equal(setup.restarted, true);
  const again = await setupArchiving(prod, { repository, archiveTimeoutSeconds: 60 });
  assert.deepEqual(again.changed, []);
  assert.equal(again.restarted, false);

  const url = localInstanceUrl(prod);
  await sql(
    url,
    "create table events (id int primary key, note text); insert into events values (0, 'before backup')",
  );
  const backup = await runPhysicalBackup({ url, repository, label: "base1" });
  assert.equal(backup.entry.kind, "physical");
  assert.match(backup.entry.startLsn!, /^[0-9A-F]+\/[0-9A-F]+$/);
  assert.ok(existsSync(backup.path));

  await sql(url, "insert into events values (1, 'first')");
  await sleep(300);
  const [{ t: between }] = await sql<{ t: string }>(url, `select ${NOW_TEXT} as t`);
  await sleep(300);
  await sql(url, "insert into events values (2, 'second')");
  const [{ seg }] = await sql<{ seg: string }>(url, "select pg_walfile_name(pg_switch_wal()) as seg");
  for (let i = 0; i < 200 && !existsSync(join(repository, "wal", seg)); i++) await sleep(100);
  assert.ok(readdirSync(join(repository, "wal")).includes(seg), `segment ${seg} archived`);

  const window = await recoveryWindow(repository, backup.entry);
  assert.ok(window.latest !== undefined && Date.parse(window.latest) > Date.parse(between));
  assert.ok(Date.parse(window.earliest) < Date.parse(between));

  // Targets outside the window are refused, and the window is shown.
  await assert.rejects(
    restorePointInTime({
      repository,
      targetTime: "2020-01-01T00:00:00Z",
      into: restored,
      superuserPassword: "x",
    }),
    (error: unknown) =>
      error instanceof RecoveryWindowError &&
      /before backup base1 ended; recoverable window: /.test(error.message),
  );
  await assert.rejects(
    restorePointInTime({
      repository,
      targetTime: "2099-01-01T00:00:00Z",
      into: restored,
      superuserPassword: "x",
    }),
    (error: unknown) => error instanceof RecoveryWindowError && error.window.latest === window.latest,
  );

  const password = new URL(url).password;
  const result = await restorePointInTime({
    repository,
    targetTime: between,
    into: restored,
    superuserPassword: decodeURIComponent(password),
  });
  assert.equal(result.backup.label, "base1");
  assert.ok(
    result.lastReplayedCommit !== undefined && Date.parse(result.lastReplayedCommit) <= Date.parse(between),
  );
  const restoredUrl = localInstanceUrl(restored);
  const rows = await sql<{ id: number; note: string }>(
    restoredUrl,
    "select id, note from events order by id",
  );
  assert.deepEqual(rows, [
    { id: 0, note: "before backup" },
    { id: 1, note: "first" },
  ]);
  // The restored instance never archives into the production repository.
  const settings = await sql<{ name: string; setting: string }>(
    restoredUrl,
    "select name, setting from pg_settings where name in ('archive_mode', 'restore_command', 'recovery_target_time') order by name",
  );
  assert.deepEqual(settings, [
    { name: "archive_mode", setting: "off" },
    { name: "recovery_target_time", setting: "" },
    { name: "restore_command", setting: "" },
  ]);
  const walBefore = readdirSync(join(repository, "wal")).sort();
  await sql(restoredUrl, "insert into events values (3, 'on the restored side'); select pg_switch_wal()");
  await sleep(500);
  assert.deepEqual(readdirSync(join(repository, "wal")).sort(), walBefore);
  // Production still has both rows.
  const prodRows = await sql<{ n: number }>(url, "select count(*)::int as n from events");
  assert.deepEqual(prodRows, [{ n: 3 }]);
});

test("PITR to an LSN between two inserts; LSNs outside the window refused; in place over the stopped server", async () => {
  await setupArchiving(prod, { repository, archiveTimeoutSeconds: 60 });
  const url = localInstanceUrl(prod);
  const password = decodeURIComponent(new URL(url).password);
  await sql(url, "create table marks (id int primary key); insert into marks values (0)");
  const backup = await runPhysicalBackup({ url, repository, label: "base2" });
  await sql(url, "insert into marks values (1)");
  const [{ lsn: between }] = await sql<{ lsn: string }>(url, "select pg_current_wal_lsn()::text as lsn");
  await sql(url, "insert into marks values (2)");
  const [{ seg }] = await sql<{ seg: string }>(url, "select pg_walfile_name(pg_switch_wal()) as seg");
  for (let i = 0; i < 200 && !existsSync(join(repository, "wal", seg)); i++) await sleep(100);

  const window = await recoveryWindow(repository, backup.entry);
  assert.equal(window.earliestLsn, backup.entry.endLsn);
  assert.ok(lsnPosition(window.earliestLsn!) <= lsnPosition(between));
  assert.ok(lsnPosition(window.latestLsn!) > lsnPosition(between), `${window.latestLsn} after ${between}`);

  // Outside the window, malformed, or both kinds of target: refused before anything is touched.
  await assert.rejects(
    restorePointInTime({ repository, targetLsn: "0/1", into: byLsn, superuserPassword: password }),
    (error: unknown) =>
      error instanceof RecoveryWindowError &&
      error.exitCode === 2 &&
      new RegExp(
        `target LSN 0/1 is before backup base2 ended; recoverable window: \\S+ \\(LSN ${window.earliestLsn}\\) \\.\\. \\S+ \\(LSN ${window.latestLsn}\\)`,
      ).test(error.message),
  );
  await assert.rejects(
    restorePointInTime({ repository, targetLsn: "FF/0", into: byLsn, superuserPassword: password }),
    (error: unknown) =>
      error instanceof RecoveryWindowError &&
      /target LSN FF\/0 is after the last archived WAL record/.test(error.message) &&
      (error.window as { latestLsn?: string }).latestLsn === window.latestLsn,
  );
  await assert.rejects(
    restorePointInTime({ repository, targetLsn: "nope", into: byLsn, superuserPassword: password }),
    (error: unknown) => error instanceof UsageError && /"nope" is not an LSN/.test(error.message),
  );
  await assert.rejects(
    restorePointInTime({
      repository,
      targetLsn: between,
      targetTime: "2026-01-01T00:00:00Z",
      into: byLsn,
      superuserPassword: password,
    }),
    UsageError,
  );
  assert.equal((await localInstanceStatus(byLsn)).state, "absent");

  const result = await restorePointInTime({
    repository,
    targetLsn: between,
    into: byLsn,
    superuserPassword: password,
  });
  assert.equal(result.backup.label, "base2");
  assert.equal(result.targetLsn, between.toUpperCase());
  assert.ok(lsnPosition(result.lastReplayedLsn!) >= lsnPosition(between));
  assert.deepEqual(await sql(localInstanceUrl(byLsn), "select id from marks order by id"), [
    { id: 0 },
    { id: 1 },
  ]);

  // In place: refused while the server runs; a new-instance restore refuses an existing one.
  await assert.rejects(
    restorePointInTime({
      repository,
      targetLsn: between,
      into: prod,
      inPlace: true,
      superuserPassword: password,
    }),
    (error: unknown) =>
      error instanceof BackupError &&
      error.code === "backup_target_running" &&
      /instance prod is running \(pid \d+\): stop it first/.test(error.message),
  );
  await assert.rejects(
    restorePointInTime({ repository, targetLsn: between, into: prod, superuserPassword: password }),
    (error: unknown) => error instanceof BackupError && error.code === "backup_target_exists",
  );
  await stopLocalInstance(prod);
  const dataDir = (await localInstanceStatus(prod)).dataDir;

  // A restore that fails half-way (a truncated tar its manifest entry vouches for) loses nothing.
  mkdirSync(join(repository, "base", "broken"), { recursive: true });
  const brokenFile = join(repository, "base", "broken", "base.tar");
  copyFileSync(join(repository, backup.entry.file), brokenFile);
  truncateSync(brokenFile, Math.floor(statSync(brokenFile).size / 2));
  addToManifest(repository, {
    ...backup.entry,
    label: "broken",
    file: "base/broken/base.tar",
    sizeBytes: statSync(brokenFile).size,
    sha256: await sha256File(brokenFile),
  });
  await assert.rejects(
    restorePointInTime({
      repository,
      label: "broken",
      targetLsn: between,
      into: prod,
      inPlace: true,
      superuserPassword: password,
    }),
    (error: unknown) =>
      error instanceof BackupError &&
      error.code === "backup_restore" &&
      /Cause: tar failed/.test(error.message) &&
      new RegExp(
        `in-place restore failed, nothing lost: the previous data directory is back in ${dataDir}`,
      ).test(error.message),
  );
  assert.deepEqual(
    readdirSync(baseDir).filter((f) => f.includes(".pre-restore-")),
    [],
  );
  assert.equal((await localInstanceStatus(prod)).state, "stopped");
  await startLocalInstance(prod);
  assert.deepEqual(await sql(url, "select id from marks order by id"), [{ id: 0 }, { id: 1 }, { id: 2 }]);
  await stopLocalInstance(prod);

  // The real thing: prod's data directory replaced by base2 replayed to the LSN; the old one kept aside.
  const inPlace = await restorePointInTime({
    repository,
    label: "base2",
    targetLsn: between,
    into: prod,
    inPlace: true,
    keepPreviousData: true,
    superuserPassword: password,
  });
  assert.equal(inPlace.inPlace, true);
  assert.equal(inPlace.instance, "prod");
  assert.equal(inPlace.previousDataDir!.kept, true);
  assert.match(inPlace.previousDataDir!.path, /prod\.pre-restore-\d{8}T\d{6}Z$/);
  assert.ok(existsSync(join(inPlace.previousDataDir!.path, "PG_VERSION")));
  assert.equal((await localInstanceStatus(prod)).state, "running");
  assert.deepEqual(await sql(url, "select id from marks order by id"), [{ id: 0 }, { id: 1 }]);
  assert.deepEqual(await sql(url, "select setting from pg_settings where name = 'archive_mode'"), [
    { setting: "off" },
  ]);
});

test("backup restore (CLI) records the restore in each restored database that has the audit trail", async () => {
  // Its own instance and repository: the instances above moved to other timelines.
  const auditRepo = join(baseDir, "audit-repo");
  await setupArchiving(audited, { repository: auditRepo, archiveTimeoutSeconds: 60 });
  const url = localInstanceUrl(audited);
  await sql(url, "create database app");
  const appUrl = withDatabase(url, "app");
  const app = new pg.Pool({ connectionString: appUrl, max: 2 });
  try {
    await installAudit(app);
    await app.query("create table items (id int primary key, name text)");
    await app.query("insert into items values (1, 'before the backup')");
  } finally {
    await app.end();
  }
  await runPhysicalBackup({ url, repository: auditRepo, label: "audited1" });
  const [{ seg }] = await sql<{ seg: string }>(url, "select pg_walfile_name(pg_switch_wal()) as seg");
  for (let i = 0; i < 200 && !existsSync(join(auditRepo, "wal", seg)); i++) await sleep(100);

  const cli = await runCli(
    [
      "backup",
      "restore",
      "--repo",
      auditRepo,
      "--instance",
      "audited",
      "--into-instance",
      "clirestored",
      "--json",
    ],
    { env: { PGSHIFT_LOCAL_DIR: baseDir } },
  );
  assert.equal(cli.code, 0, cli.stderr);
  assert.doesNotMatch(cli.stderr, /not recorded/);
  const restoredApp = withDatabase(localInstanceUrl(cliRestored), "app");
  const [event] = await sql<{ detail: Record<string, unknown> }>(
    restoredApp,
    "select detail from pgshift.audit_log where op = 'restore'",
  );
  assert.equal(event?.detail.kind, "physical");
  assert.equal(event?.detail.label, "audited1");
  assert.equal(event?.detail.instance, "clirestored");
  assert.equal(
    event?.detail.reportSha256,
    createHash("sha256")
      .update(JSON.stringify(JSON.parse(cli.stdout)))
      .digest("hex"),
  );
  // The database without the trail got nothing; the source knows nothing of the copy's restore.
  assert.deepEqual(await sql(localInstanceUrl(cliRestored), "select to_regclass('pgshift.audit_log') as t"), [
    { t: null },
  ]);
  assert.deepEqual(await sql(appUrl, "select id from pgshift.audit_log where op = 'restore'"), []);
  const restoredPool = new pg.Pool({ connectionString: restoredApp, max: 2 });
  try {
    assert.deepEqual((await verifyAudit({ pool: restoredPool })).problems, []);
  } finally {
    await restoredPool.end();
  }
});

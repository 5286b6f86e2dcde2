import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, test } from "node:test";
import pg from "pg";
import {
  RecoveryWindowError,
  recoveryWindow,
  restorePointInTime,
  runPhysicalBackup,
  setupArchiving,
} from "../../../src/backup/index.ts";
import { destroyLocalInstance, localInstanceUrl } from "../../../src/local/instance.ts";
import { findPgBinaries } from "../../../src/local/binaries.ts";

// The instances backed up here run the server major of the installed backup tools (Debian's), whatever
// major the rest of the test run covers: pg_basebackup and pgBackRest 2.45 cannot back up a newer one.
const BACKUP_BINARIES = findPgBinaries();
const baseDir = mkdtempSync(join(tmpdir(), "pgshift-pitr-"));
chmodSync(baseDir, 0o755);
const repository = join(baseDir, "repo");
const prod = { name: "prod", baseDir, binaries: BACKUP_BINARIES };
const restored = { name: "restored", baseDir, binaries: BACKUP_BINARIES };

after(async () => {
  for (const o of [restored, prod]) await destroyLocalInstance(o).catch(() => undefined);
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

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, test } from "node:test";
import pg from "pg";
import {
  lsnPosition,
  pgBackRestBackup,
  pgBackRestInfo,
  pgBackRestSource,
  RecoveryWindowError,
  restorePointInTime,
} from "../../../src/backup/index.ts";
import {
  destroyLocalInstance,
  localInstanceStatus,
  localInstanceUrl,
  stopLocalInstance,
} from "../../../src/local/instance.ts";
import { checkReportSignature } from "../../../src/verify/report.ts";
import { runCli } from "../../helpers/cli.ts";
import { BACKUP_BINARIES, backupTestDir, pgbackrestAvailable } from "../../helpers/pgbackrest.ts";

const baseDir = backupTestDir("pgshift-pbr-restore-");
const prod = { name: "pbrprod", baseDir, binaries: BACKUP_BINARIES };
const byTime = { name: "pbrtime", baseDir, binaries: BACKUP_BINARIES };
const byLsn = { name: "pbrlsn", baseDir, binaries: BACKUP_BINARIES };
const repository = join(baseDir, "repo");
const passFile = join(baseDir, "cipher.pass");
writeFileSync(passFile, "repo cipher passphrase for restores 42\n", { mode: 0o600 });
const options = { instance: prod, repository, cipherPassphrase: { file: passFile } };
const engine = { engine: "pgbackrest" as const, pgbackrestInstance: prod, repository };
const reportKey = "drill report key for pgbackrest 0123456789";

after(async () => {
  for (const o of [byTime, byLsn, { name: "pbrdrill", baseDir }, prod])
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

function drillCli(extra: string[] = []) {
  return runCli(
    [
      "backup",
      "drill",
      "--engine",
      "pgbackrest",
      "--instance",
      "pbrprod",
      "--repo",
      repository,
      "--scratch",
      "pbrdrill",
      "--hmac-key-env",
      "DRILL_KEY",
      "--json",
      ...extra,
    ],
    { env: { PGSHIFT_LOCAL_DIR: baseDir, DRILL_KEY: reportKey } },
  );
}

test(
  "pgBackRest: PITR to a time and to an LSN, window from info, drills with verify, a corrupted file caught, in place",
  { skip: !pgbackrestAvailable && "pgbackrest not installed" },
  async () => {
    const env = { PGSHIFT_LOCAL_DIR: baseDir };
    const setup = await runCli(
      [
        "backup",
        "setup",
        "--engine",
        "pgbackrest",
        "--instance",
        "pbrprod",
        "--repo",
        repository,
        "--cipher-passphrase-file",
        passFile,
      ],
      { env },
    );
    assert.equal(setup.code, 0, setup.stderr);
    assert.match(setup.stdout, /pgBackRest stanza main: archive-push into .*; check passed/);
    assert.ok(!setup.stdout.includes("repo cipher passphrase"));
    const url = localInstanceUrl(prod);
    const password = decodeURIComponent(new URL(url).password);
    await sql(
      url,
      "create table events (id int primary key, note text); insert into events values (0, 'before')",
    );
    const full = await pgBackRestBackup(options, "full");
    await sleep(1200); // info keeps whole seconds: the window starts a second after the recorded stop
    await sql(url, "insert into events values (1, 'first')");
    await sleep(300);
    const [{ t: between, lsn: betweenLsn }] = await sql<{ t: string; lsn: string }>(
      url,
      `select ${NOW_TEXT} as t, pg_current_wal_lsn()::text as lsn`,
    );
    await sleep(300);
    await sql(url, "insert into events values (2, 'second')");
    const [{ seg }] = await sql<{ seg: string }>(url, "select pg_walfile_name(pg_switch_wal()) as seg");
    for (let i = 0; i < 200; i++) {
      const [{ last }] = await sql<{ last: string | null }>(
        url,
        "select last_archived_wal as last from pg_stat_archiver",
      );
      if (last !== null && last >= seg) break;
      await sleep(100);
    }

    // The window: from info (backup stop, archive max) and the archived WAL's last commit and record.
    const source = pgBackRestSource(options);
    const [backup] = await source.backups();
    assert.equal(backup!.label, full.label);
    const window = await source.window(backup!);
    assert.equal(window.engine, "pgbackrest");
    assert.equal(window.earliest, new Date(Date.parse(full.finishedAt) + 1000).toISOString());
    assert.equal(window.earliestLsn, full.stopLsn);
    assert.equal(window.lastSegment, seg);
    assert.ok(Date.parse(window.earliest) < Date.parse(between), `${window.earliest} before ${between}`);
    assert.ok(Date.parse(window.latest!) > Date.parse(between));
    assert.ok(lsnPosition(window.latestLsn!) > lsnPosition(betweenLsn));

    // The CLI shows the same window, and refuses (exit 2) an LSN outside it; a drill to one fails (exit 1).
    const list = await runCli(
      ["backup", "list", "--engine", "pgbackrest", "--instance", "pbrprod", "--repo", repository, "--json"],
      { env },
    );
    assert.equal(list.code, 0, list.stderr);
    const listed = JSON.parse(list.stdout);
    assert.deepEqual(listed.window, window);
    assert.deepEqual(
      listed.backups.map((b: { label: string; retention: { keep: boolean } }) => [b.label, b.retention.keep]),
      [[full.label, true]],
    );
    const outside = await runCli(
      [
        "backup",
        "restore",
        "--engine",
        "pgbackrest",
        "--instance",
        "pbrprod",
        "--repo",
        repository,
        "--into-instance",
        "pbrlsn",
        "--target-lsn",
        "FF/0",
      ],
      { env },
    );
    assert.equal(outside.code, 2);
    assert.match(
      outside.stderr,
      /target LSN FF\/0 is after the last archived WAL record; recoverable window of backup/,
    );
    const drillOutside = await drillCli(["--target-lsn", "0/1"]);
    assert.equal(drillOutside.code, 1);
    assert.equal(JSON.parse(drillOutside.stdout).failure.code, "backup_target_outside_window");
    assert.equal((await localInstanceStatus({ name: "pbrdrill", baseDir })).state, "absent");

    await assert.rejects(
      restorePointInTime({ ...engine, targetLsn: "0/1", into: byLsn, superuserPassword: password }),
      (error: unknown) =>
        error instanceof RecoveryWindowError &&
        error.message.includes(
          `target LSN 0/1 is before backup ${full.label} ended; recoverable window: ${window.earliest} (LSN ${full.stopLsn})`,
        ),
    );
    await assert.rejects(
      restorePointInTime({
        ...engine,
        targetTime: "2099-01-01T00:00:00Z",
        into: byTime,
        superuserPassword: password,
      }),
      (error: unknown) =>
        error instanceof RecoveryWindowError && /after the last archived commit/.test(error.message),
    );

    const timed = await restorePointInTime({
      ...engine,
      targetTime: between,
      into: byTime,
      superuserPassword: password,
    });
    assert.equal(timed.engine, "pgbackrest");
    assert.match(timed.integrity!, /^pgbackrest verify: archiveId: \d+-\d+, total WAL checked: \d+/);
    assert.ok(Date.parse(timed.lastReplayedCommit!) <= Date.parse(between));
    const timedUrl = localInstanceUrl(byTime);
    assert.deepEqual(await sql(timedUrl, "select id from events order by id"), [{ id: 0 }, { id: 1 }]);
    assert.deepEqual(
      await sql(
        timedUrl,
        "select name, setting from pg_settings where name in ('archive_mode', 'archive_command', 'restore_command', 'unix_socket_directories') order by name",
      ),
      [
        { name: "archive_command", setting: "(disabled)" },
        { name: "archive_mode", setting: "off" },
        { name: "restore_command", setting: "" },
        { name: "unix_socket_directories", setting: "" },
      ],
    );
    // A write and a segment switch on the restored copy reach nothing in the production repository.
    const archiveBefore = (await pgBackRestInfo(options)).archives;
    await sql(timedUrl, "insert into events values (3, 'on the copy'); select pg_switch_wal()");
    await sleep(500);
    assert.deepEqual((await pgBackRestInfo(options)).archives, archiveBefore);
    assert.deepEqual(source.timelineHistories(), []);

    const byPosition = await restorePointInTime({
      ...engine,
      targetLsn: betweenLsn,
      into: byLsn,
      superuserPassword: password,
    });
    assert.ok(lsnPosition(byPosition.lastReplayedLsn!) >= lsnPosition(betweenLsn));
    assert.deepEqual(await sql(localInstanceUrl(byLsn), "select id from events order by id"), [
      { id: 0 },
      { id: 1 },
    ]);

    // The drill through the CLI: latest, every check, pgbackrest verify as the integrity check.
    const drill = await drillCli();
    assert.equal(drill.code, 0, drill.stderr);
    const report = JSON.parse(drill.stdout);
    assert.equal(report.ok, true, JSON.stringify(report.checks));
    assert.equal(report.engine, "pgbackrest");
    assert.equal(report.target, "latest");
    assert.deepEqual(
      report.checks.map((c: { name: string; ok: boolean }) => [c.name, c.ok]),
      [
        ["integrity", true],
        ["restore", true],
        ["amcheck", true],
        ["table_sums", true],
        ["no_archiving_into_repository", true],
      ],
    );
    assert.match(report.checks[0].detail, new RegExp(`backup: ${full.label}, status: valid`));
    const events = report.tables.find((t: { table: string }) => t.table === "public.events");
    assert.equal(events.rows, 3);
    assert.equal(report.backup.label, full.label);
    assert.equal(report.backup.type, "full");
    assert.equal(report.scratchDestroyed, true);
    assert.equal(
      checkReportSignature(report, { algorithm: "hmac-sha256", secret: Buffer.from(reportKey) }).valid,
      true,
    );
    const lastDrill = JSON.parse(readFileSync(join(repository, "last-drill.json"), "utf8"));
    assert.equal(lastDrill.ok, true);
    assert.equal(lastDrill.label, full.label);

    // One flipped byte in one file of the backup: verify names it, the drill fails before restoring.
    const dataDir = join(repository, "backup", "main", full.label, "pg_data", "base");
    const files = readdirSync(dataDir, { recursive: true, withFileTypes: true })
      .filter((d) => d.isFile())
      .map((d) => join(d.parentPath ?? d.path, d.name))
      .sort((a, b) => statSync(b).size - statSync(a).size);
    const victim = files[0]!;
    copyFileSync(victim, `${victim}.orig`);
    const bytes = readFileSync(victim);
    bytes[Math.floor(bytes.length / 2)] ^= 0x01;
    writeFileSync(victim, bytes);
    const bad = await drillCli();
    assert.equal(bad.code, 1, bad.stderr);
    const badReport = JSON.parse(bad.stdout);
    assert.equal(badReport.ok, false);
    assert.deepEqual([badReport.checks[0].name, badReport.checks[0].ok], ["integrity", false]);
    assert.match(badReport.checks[0].detail, /checksum invalid: 1/);
    assert.ok(
      badReport.checks[0].detail.includes(victim.slice(victim.indexOf(full.label))),
      badReport.checks[0].detail,
    );
    assert.equal(badReport.rtoMs, undefined);
    assert.equal(JSON.parse(readFileSync(join(repository, "last-drill.json"), "utf8")).ok, false);
    copyFileSync(`${victim}.orig`, victim);
    execFileSync("rm", [`${victim}.orig`]);

    // In place over production: refused while it runs, then done once it is stopped.
    const restoreArgs = [
      "backup",
      "restore",
      "--engine",
      "pgbackrest",
      "--instance",
      "pbrprod",
      "--repo",
      repository,
      "--in-place",
    ];
    const running = await runCli(restoreArgs, { env });
    assert.equal(running.code, 1);
    assert.match(running.stderr, /instance pbrprod is running \(pid \d+\): stop it first/);
    await stopLocalInstance(prod);
    const inPlace = await runCli(restoreArgs, { env });
    assert.equal(inPlace.code, 0, inPlace.stderr);
    assert.match(
      inPlace.stdout,
      new RegExp(`restored ${full.label} \\(pgbackrest\\) to latest in place over instance pbrprod`),
    );
    assert.match(
      inPlace.stdout,
      /the old data directory \(kept at .*pbrprod\.pre-restore-\S+ during the restore\) is removed/,
    );
    assert.deepEqual(
      readdirSync(baseDir).filter((f) => f.includes(".pre-restore-")),
      [],
    );
    assert.equal((await localInstanceStatus(prod)).state, "running");
    assert.deepEqual(await sql(url, "select id from events order by id"), [{ id: 0 }, { id: 1 }, { id: 2 }]);
    assert.ok(existsSync(join(repository, "last-drill.json")));
  },
);

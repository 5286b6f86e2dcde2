import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, test } from "node:test";
import pg from "pg";
import {
  BACKUP_METRICS,
  backupMetricFamilies,
  runDrill,
  runPhysicalBackup,
  setupArchiving,
} from "../../../src/backup/index.ts";
import { destroyLocalInstance, localInstanceStatus, localInstanceUrl } from "../../../src/local/instance.ts";
import { checkReportSignature } from "../../../src/verify/report.ts";
import { findPgBinaries } from "../../../src/local/binaries.ts";

// The instances backed up here run the server major of the installed backup tools (Debian's), whatever
// major the rest of the test run covers: pg_basebackup and pgBackRest 2.45 cannot back up a newer one.
const BACKUP_BINARIES = findPgBinaries();
const baseDir = mkdtempSync(join(tmpdir(), "pgshift-drill-"));
chmodSync(baseDir, 0o755);
const repository = join(baseDir, "repo");
const prod = { name: "prod", baseDir, binaries: BACKUP_BINARIES };
const scratch = { name: "drill", baseDir, binaries: BACKUP_BINARIES };
const key = { algorithm: "hmac-sha256" as const, secret: Buffer.from("drill-evidence-key-0123456789") };

after(async () => {
  for (const o of [scratch, prod]) await destroyLocalInstance(o).catch(() => undefined);
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

test("drill: restores into a scratch instance, checks, measures, destroys it; detects a corrupted backup", async () => {
  await setupArchiving(prod, { repository });
  const url = localInstanceUrl(prod);
  await sql(
    url,
    "create table items (id int primary key, v text); insert into items select g, md5(g::text) from generate_series(1, 2000) g",
  );
  const backup = await runPhysicalBackup({ url, repository, label: "b1" });
  await sql(url, "insert into items select g, 'late' from generate_series(2001, 2500) g");
  const [{ seg }] = await sql<{ seg: string }>(url, "select pg_walfile_name(pg_switch_wal()) as seg");
  for (let i = 0; i < 200 && !existsSync(join(repository, "wal", seg)); i++) await sleep(100);
  const [expected] = await sql<{ n: string; sum: string }>(
    url,
    "select count(*) as n, md5(string_agg(h, '' order by h)) as sum from (select md5(x::text) as h from items x) s",
  );
  const password = decodeURIComponent(new URL(url).password);

  const reportPath = join(baseDir, "drill.json");
  const { report } = await runDrill({
    repository,
    scratch,
    superuserPassword: password,
    reportPath,
    signingKey: key,
  });
  assert.equal(report.ok, true, JSON.stringify(report.checks));
  assert.deepEqual(
    report.checks.map((c) => [c.name, c.ok]),
    [
      ["integrity", true],
      ["restore", true],
      ["amcheck", true],
      ["table_sums", true],
      ["no_archiving_into_repository", true],
    ],
  );
  const items = report.tables.find((t) => t.database === "postgres" && t.table === "public.items");
  assert.deepEqual(items, {
    database: "postgres",
    table: "public.items",
    rows: 2500,
    checksum: expected!.sum,
  });
  assert.equal(Number(expected!.n), 2500);
  assert.equal(report.backup!.label, "b1");
  assert.equal(report.backup!.sha256, backup.entry.sha256);
  assert.ok(report.rtoMs! > 0);
  assert.ok(report.rpoMs! >= 0);
  assert.equal(report.scratchDestroyed, true);
  assert.equal((await localInstanceStatus(scratch)).state, "absent");
  const onDisk = JSON.parse(readFileSync(reportPath, "utf8"));
  assert.deepEqual(checkReportSignature(onDisk, key).valid, true);
  onDisk.rtoMs = 1;
  assert.deepEqual(checkReportSignature(onDisk, key).valid, false);

  // serve's metrics (--backup-repo): the backup and the drill's outcome, RTO and RPO
  const metric = (families: Awaited<ReturnType<typeof backupMetricFamilies>>, name: string) =>
    families.find((f) => f.name === name)?.samples.map((s) => [s.labels ?? {}, s.value]);
  const families = await backupMetricFamilies({ repository });
  assert.deepEqual(metric(families, BACKUP_METRICS.lastSuccess), [
    [{ kind: backup.entry.kind }, Date.parse(backup.entry.finishedAt) / 1000],
  ]);
  assert.deepEqual(metric(families, BACKUP_METRICS.count), [[{ kind: backup.entry.kind }, 1]]);
  assert.deepEqual(metric(families, BACKUP_METRICS.drillOk), [[{}, 1]]);
  assert.deepEqual(metric(families, BACKUP_METRICS.drillRto), [[{}, report.rtoMs! / 1000]]);
  assert.deepEqual(metric(families, BACKUP_METRICS.drillRpo), [[{}, report.rpoMs! / 1000]]);

  // Corrupt one byte of the base backup: the drill fails on integrity, restores nothing.
  const bytes = readFileSync(backup.path);
  bytes[Math.floor(bytes.length / 2)] ^= 0x01;
  writeFileSync(backup.path, bytes);
  const bad = await runDrill({ repository, scratch, superuserPassword: password, signingKey: key });
  assert.equal(bad.report.ok, false);
  assert.deepEqual(bad.report.checks[0]!.name, "integrity");
  assert.deepEqual(bad.report.checks[0]!.ok, false);
  assert.match(bad.report.failure!.message, /backup b1 is corrupted/);
  assert.equal(bad.report.rtoMs, undefined);
  assert.equal(checkReportSignature(bad.report as unknown as Record<string, unknown>, key).valid, true);
  const afterBad = await backupMetricFamilies({ repository });
  assert.deepEqual(metric(afterBad, BACKUP_METRICS.drillOk), [[{}, 0]]);
  assert.deepEqual(metric(afterBad, BACKUP_METRICS.drillRto), []);
});

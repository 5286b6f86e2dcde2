import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, test } from "node:test";
import pg from "pg";
import {
  BackupError,
  backupMetricFamilies,
  expireBackups,
  listOffsite,
  loadOffsiteTarget,
  pullOffsite,
  pushOffsite,
  readLastOffsite,
  readManifest,
  restoreLogicalBackup,
  restorePointInTime,
  runLogicalBackup,
  runPhysicalBackup,
  setupArchiving,
  sha256File,
  tableSums,
} from "../../../src/backup/index.ts";
import { destroyLocalInstance, localInstanceUrl } from "../../../src/local/instance.ts";
import { findPgBinaries } from "../../../src/local/binaries.ts";
import { runCli, stderrText } from "../../helpers/cli.ts";
import { startS3Server, type TestS3Server } from "../../helpers/s3-server.ts";

// The instances backed up here run the server major of the installed backup tools (Debian's), whatever
// major the rest of the test run covers: pg_basebackup cannot back up a newer one.
const BACKUP_BINARIES = findPgBinaries();
const baseDir = mkdtempSync(join(tmpdir(), "pgshift-offsite-"));
chmodSync(baseDir, 0o755);
const repository = join(baseDir, "repo");
const prod = { name: "prod", baseDir, binaries: BACKUP_BINARIES };
const restored = { name: "restored", baseDir, binaries: BACKUP_BINARIES };
const SECRET_ENV = "PGSHIFT_TEST_S3_SECRET";
const PART = 5 * 1024 * 1024;

let s3: TestS3Server;
let env: NodeJS.ProcessEnv;

before(async () => {
  s3 = await startS3Server();
  env = { ...process.env, [SECRET_ENV]: s3.secret };
});

after(async () => {
  for (const o of [restored, prod]) await destroyLocalInstance(o).catch(() => undefined);
  await s3?.stop();
});

function target(prefix: string, endpoint = s3.endpoint) {
  return loadOffsiteTarget(
    { url: `s3://${s3.bucket}/${prefix}`, endpoint, accessKeyId: s3.accessKeyId, secretEnv: SECRET_ENV },
    env,
  );
}

function s3Flags(prefix: string, endpoint = s3.endpoint): string[] {
  return [
    "--s3",
    `s3://${s3.bucket}/${prefix}`,
    "--s3-endpoint",
    endpoint,
    "--s3-access-key-id",
    s3.accessKeyId,
    "--s3-secret-env",
    SECRET_ENV,
  ];
}

async function sql<T extends pg.QueryResultRow>(url: string, text: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text)).rows;
  } finally {
    await client.end();
  }
}

/** Flips one byte in the middle of a file, keeping its size (bit rot, not truncation). */
function corrupt(path: string): Buffer {
  const original = readFileSync(path);
  const damaged = Buffer.from(original);
  const at = Math.floor(damaged.length / 2);
  damaged[at] = damaged[at]! ^ 0xff;
  writeFileSync(path, damaged);
  return original;
}

test("off-site copy: push, incremental push, corruption found both sides, pull + restore, prune, CLI", async () => {
  await setupArchiving(prod, { repository, archiveTimeoutSeconds: 60 });
  const url = localInstanceUrl(prod);
  await sql(
    url,
    "create table items (id int primary key, note text); insert into items select g, md5(g::text) from generate_series(1, 20000) g",
  );
  const physical = await runPhysicalBackup({ url, repository, label: "base1" });
  const logical = await runLogicalBackup({ url, repository, label: "dump1" });
  await sql(url, "insert into items select g, 'after the base backup' from generate_series(20001, 20100) g");
  const [{ seg }] = await sql<{ seg: string }>(url, "select pg_walfile_name(pg_switch_wal()) as seg");
  for (let i = 0; i < 200 && !existsSync(join(repository, "wal", seg)); i++) await sleep(100);
  assert.ok(existsSync(join(repository, "wal", seg)), `segment ${seg} archived`);
  const prodSums = (await tableSums(url)).filter((t) => t.table.endsWith("items"));
  assert.equal(prodSums.length, 1);
  assert.equal(prodSums[0]!.rows, 20100);

  // 1. First push: everything, the base backup as a multipart upload, each object read back.
  const first = await pushOffsite({ repository, target: target("prod"), partBytes: PART, env });
  assert.deepEqual(first.failures, []);
  assert.equal(first.ok, true);
  const uploaded = new Map(first.uploaded.map((u) => [u.path, u]));
  const tar = uploaded.get("base/base1/base.tar")!;
  assert.equal(tar.sha256, physical.entry.sha256);
  assert.ok(tar.parts > 1, `base.tar (${tar.sizeBytes} bytes) went up in ${tar.parts} parts`);
  assert.equal(uploaded.get("logical/dump1.dump")!.sha256, logical.entry.sha256);
  assert.ok(uploaded.has(`wal/${seg}`));
  assert.equal(first.uploaded[first.uploaded.length - 1]!.path, "manifest.json", "the index goes last");
  assert.equal(first.bytesVerified, first.bytesUploaded);
  assert.equal(readLastOffsite(repository)!.uploaded, first.uploaded.length);
  const metrics = await backupMetricFamilies({ repository });
  const offsiteTime = metrics.find((f) => f.name === "pgshift_backup_last_offsite_timestamp_seconds")!;
  assert.deepEqual(offsiteTime.samples, [
    { labels: { target: first.target }, value: Date.parse(first.finishedAt) / 1000 },
  ]);
  // What s3rver holds on disk is byte for byte the local file.
  assert.equal(await sha256File(s3.objectFile("prod/base/base1/base.tar")), physical.entry.sha256);

  // 2. A second push uploads nothing.
  const second = await pushOffsite({ repository, target: target("prod"), partBytes: PART, env });
  assert.deepEqual(second.uploaded, []);
  assert.equal(second.skipped.length, first.uploaded.length);
  assert.equal(second.bytesUploaded, 0);

  // 3. A changed local file is uploaded again (a new backup changes manifest.json).
  await runLogicalBackup({ url, repository, label: "dump2" });
  const third = await pushOffsite({ repository, target: target("prod"), partBytes: PART, env });
  assert.deepEqual(
    third.uploaded.map((u) => [u.path, u.reason]),
    [
      ["logical/dump2.dump", "missing"],
      ["manifest.json", "differs"],
    ],
  );

  // 3b. A manifest that lists a file the push did not copy (a backup finishing mid-push) is held back.
  const manifestFile = join(repository, "manifest.json");
  const manifestText = readFileSync(manifestFile, "utf8");
  const ghost = JSON.parse(manifestText);
  ghost.backups.push({
    ...ghost.backups[ghost.backups.length - 1],
    label: "ghost",
    file: "logical/ghost.dump",
  });
  writeFileSync(manifestFile, JSON.stringify(ghost));
  const held = await pushOffsite({ repository, target: target("prod"), partBytes: PART, env });
  assert.deepEqual(
    held.failures.map((f) => [f.path, f.code]),
    [["manifest.json", "changed"]],
  );
  assert.match(held.failures[0]!.message, /lists logical\/ghost\.dump, which this push did not copy/);
  assert.equal(await sha256File(s3.objectFile("prod/manifest.json")), third.uploaded[1]!.sha256);
  writeFileSync(manifestFile, manifestText);

  // 4. A damaged local backup is never pushed over the good off-site copy, and the index is held back.
  const dumpPath = join(repository, "logical", "dump1.dump");
  const goodDump = corrupt(dumpPath);
  writeFileSync(join(repository, "last-drill.json"), '{"finishedAt":"2026-01-01T00:00:00Z","ok":true}\n');
  const damaged = await pushOffsite({ repository, target: target("prod"), partBytes: PART, env });
  assert.equal(damaged.ok, false);
  assert.deepEqual(
    damaged.failures.map((f) => [f.path, f.code]),
    [["logical/dump1.dump", "local_corrupted"]],
  );
  assert.deepEqual(damaged.notRun, ["last-drill.json", "manifest.json"]);
  assert.equal(await sha256File(s3.objectFile("prod/logical/dump1.dump")), logical.entry.sha256);
  writeFileSync(dumpPath, goodDump);

  // 5. A corrupted object off-site: list --verify finds it, pull refuses it, push --verify repairs it.
  const remoteDump = s3.objectFile("prod/logical/dump1.dump");
  const goodRemote = corrupt(remoteDump);
  const listed = await listOffsite({ target: target("prod"), verify: true, env });
  assert.equal(listed.ok, false);
  assert.deepEqual(
    listed.failures.map((f) => [f.path, f.code]),
    [["logical/dump1.dump", "mismatch"]],
  );
  assert.deepEqual(
    listed.backups.map((b) => [b.label, b.intact]),
    [
      ["base1", true],
      ["dump1", false],
      ["dump2", true],
    ],
  );
  const badPull = join(baseDir, "pulled-bad");
  const refused = await pullOffsite({ target: target("prod"), repository: badPull, env });
  assert.equal(refused.ok, false);
  assert.deepEqual(
    refused.failures.map((f) => [f.path, f.code]),
    [["logical/dump1.dump", "mismatch"]],
  );
  assert.ok(!existsSync(join(badPull, "logical", "dump1.dump")), "a corrupted object never takes the name");
  assert.ok(!existsSync(join(badPull, "manifest.json")), "nor is the index pulled over an incomplete copy");
  const trusting = await pushOffsite({ repository, target: target("prod"), partBytes: PART, env });
  assert.ok(
    trusting.skipped.includes("logical/dump1.dump"),
    "without --verify the recorded sha256 is trusted",
  );
  const repaired = await pushOffsite({
    repository,
    target: target("prod"),
    partBytes: PART,
    env,
    verifyExisting: true,
  });
  assert.deepEqual(
    repaired.uploaded.map((u) => [u.path, u.reason]),
    [["logical/dump1.dump", "corrupted"]],
  );
  assert.equal(await sha256File(remoteDump), logical.entry.sha256);
  assert.equal(goodRemote.length, readFileSync(remoteDump).length);
  assert.equal((await listOffsite({ target: target("prod"), verify: true, env })).ok, true);

  // 6. Pull into a new directory, then restore from it: same table sums as the source.
  const pulled = join(baseDir, "pulled");
  const pull = await pullOffsite({ target: target("prod"), repository: pulled, env });
  assert.deepEqual(pull.failures, []);
  assert.deepEqual(pull.backupsChecked.sort(), ["base1", "dump1", "dump2"]);
  assert.deepEqual(
    readManifest(pulled).backups.map((b) => b.sha256),
    readManifest(repository).backups.map((b) => b.sha256),
  );
  const again = await pullOffsite({ target: target("prod"), repository: pulled, env });
  assert.equal(again.downloaded.length, 0);
  await assert.rejects(pullOffsite({ target: target("prod"), repository, env }), /refusing to pull into/);

  const password = decodeURIComponent(new URL(url).password);
  const restore = await restorePointInTime({
    repository: pulled,
    into: restored,
    superuserPassword: password,
  });
  assert.ok(restore.url);
  const restoredSums = (await tableSums(localInstanceUrl(restored))).filter((t) => t.table.endsWith("items"));
  assert.deepEqual(restoredSums, prodSums);
  const logicalRestore = await restoreLogicalBackup({
    repository: pulled,
    serverUrl: url,
    database: "from_offsite",
    label: "dump1",
  });
  assert.equal(logicalRestore.database, "from_offsite");
  const restoredDb = new URL(url);
  restoredDb.pathname = "/from_offsite";
  const [{ n }] = await sql<{ n: string }>(restoredDb.toString(), "select count(*) as n from items");
  assert.equal(Number(n), 20000);

  // 7. What expire deletes locally goes off-site only with --prune (dry run first).
  const expired = expireBackups({
    repository,
    policy: { daily: 0, weekly: 0, monthly: 0, yearly: 0 },
    walWindowMs: 0,
  });
  assert.deepEqual(expired.deletedFiles.sort(), ["base/base1/base.tar", "logical/dump1.dump"]);
  const kept = await pushOffsite({ repository, target: target("prod"), partBytes: PART, env });
  assert.ok(kept.extraOffsite.includes("logical/dump1.dump"));
  assert.deepEqual(kept.pruned, []);
  const dry = await pushOffsite({ repository, target: target("prod"), env, prune: true, dryRun: true });
  assert.ok(dry.pruned.includes("base/base1/base.tar"));
  assert.ok(
    (await listOffsite({ target: target("prod"), env })).objects.some(
      (o) => o.path === "base/base1/base.tar",
    ),
  );
  const pruned = await pushOffsite({ repository, target: target("prod"), env, prune: true });
  assert.deepEqual(pruned.pruned, dry.pruned);
  const remaining = await listOffsite({ target: target("prod"), verify: true, env });
  assert.ok(remaining.ok);
  assert.deepEqual(
    remaining.backups.map((b) => b.label),
    ["dump2"],
  );
  assert.ok(
    !remaining.objects.some(
      (o) => o.path === "base/base1/base.tar" || o.path === "base/base1/backup_manifest",
    ),
  );
  await assert.rejects(
    pushOffsite({
      repository: join(baseDir, "pulled-bad", "logical"),
      target: target("prod"),
      env,
      prune: true,
    }),
    /refusing --prune/,
  );

  // 8. Unreachable endpoint: a clear error, nothing recorded.
  const lastBefore = readFileSync(join(repository, "last-offsite.json"), "utf8");
  await assert.rejects(
    pushOffsite({ repository, target: target("prod", "http://127.0.0.1:9"), env }),
    (error: unknown) =>
      error instanceof BackupError &&
      /off-site storage s3:\/\/.* at http:\/\/127\.0\.0\.1:9: listing the objects failed \(.*ECONNREFUSED/.test(
        error.message,
      ) &&
      !error.message.includes(s3.secret),
  );
  assert.equal(readFileSync(join(repository, "last-offsite.json"), "utf8"), lastBefore);

  // 9. The CLI, as a user runs it: the secret never appears, exit codes as documented.
  const cliEnv = { [SECRET_ENV]: s3.secret };
  const push = await runCli(
    ["backup", "offsite", "push", "--repo", repository, ...s3Flags("cli"), "--json"],
    {
      env: cliEnv,
    },
  );
  assert.equal(push.code, 0, push.stderr);
  const pushJson = JSON.parse(push.stdout);
  assert.equal(pushJson.ok, true);
  assert.ok(pushJson.uploaded.length > 0);
  const human = await runCli(["backup", "offsite", "push", "--repo", repository, ...s3Flags("cli")], {
    env: cliEnv,
  });
  assert.equal(human.code, 0, human.stderr);
  assert.match(
    human.stdout,
    new RegExp(`0 file\\(s\\) uploaded .*, ${pushJson.uploaded.length} already there`),
  );
  corrupt(s3.objectFile("cli/manifest.json"));
  const verify = await runCli(["backup", "offsite", "list", ...s3Flags("cli"), "--verify"], { env: cliEnv });
  assert.equal(verify.code, 3, verify.stderr);
  assert.match(verify.stdout, /FAIL manifest\.json: manifest\.json is corrupted off-site/);
  const down = await runCli(
    ["backup", "offsite", "push", "--repo", repository, ...s3Flags("cli", "http://127.0.0.1:9"), "--json"],
    { env: cliEnv },
  );
  assert.equal(down.code, 1);
  assert.match(stderrText(down.stderr), /listing the objects failed .*check --s3-endpoint/);
  const noSecret = await runCli(["backup", "offsite", "list", ...s3Flags("cli")], { env: {} });
  assert.equal(noSecret.code, 2);
  assert.match(
    noSecret.stderr,
    /environment variable PGSHIFT_TEST_S3_SECRET holding the S3 secret access key is not set/,
  );
  // s3rver does not check SigV4 signatures (a wrong secret passes there); it does check the key id.
  const badKey = await runCli(
    ["backup", "offsite", "list", ...s3Flags("cli").map((f) => (f === s3.accessKeyId ? "AKWRONG" : f))],
    { env: cliEnv },
  );
  assert.equal(badKey.code, 1);
  assert.match(badKey.stderr, /InvalidAccessKeyId.*HTTP 403\); check --s3-access-key-id and the secret/);
  for (const r of [push, human, verify, down, noSecret, badKey])
    assert.ok(!`${r.stdout}${r.stderr}`.includes(s3.secret), "the secret never appears in output");
  assert.ok(!push.stderr.includes("NodeVersionSupportWarning"));
});

test("off-site push: the server goes away mid-push -> it stops, holds the index back, records nothing", async () => {
  const gone = await startS3Server();
  const repo = mkdtempSync(join(tmpdir(), "pgshift-offsite-gone-"));
  mkdirSync(join(repo, "wal"));
  const segments = Array.from({ length: 8 }, (_, i) => `wal/00000001000000000000000${i}`);
  for (const s of segments) writeFileSync(join(repo, s), Buffer.alloc(1024 * 1024, s));
  writeFileSync(join(repo, "manifest.json"), '{"format":1,"backups":[]}\n');
  const goneEnv = { [SECRET_ENV]: gone.secret };
  const goneTarget = loadOffsiteTarget(
    {
      url: `s3://${gone.bucket}/x`,
      endpoint: gone.endpoint,
      accessKeyId: gone.accessKeyId,
      secretEnv: SECRET_ENV,
    },
    goneEnv,
  );
  let stopping: Promise<void> | undefined;
  const result = await pushOffsite({
    repository: repo,
    target: goneTarget,
    env: goneEnv,
    jobs: 1,
    onProgress: (event) => {
      if (event.done > 0) stopping ??= gone.stop();
    },
  });
  await stopping;
  assert.equal(result.ok, false);
  assert.equal(result.failures.length, 1, JSON.stringify(result.failures));
  assert.equal(result.failures[0]!.unreachable, true);
  assert.match(result.failures[0]!.message, /check --s3-endpoint and that the server is reachable/);
  assert.ok(result.notRun.includes("manifest.json"));
  assert.ok(result.notRun.length >= segments.length - 1, `not run: ${result.notRun.join(", ")}`);
  assert.deepEqual(
    [...result.uploaded.map((u) => u.path), ...result.failures.map((f) => f.path), ...result.notRun].sort(),
    [...segments, "manifest.json"].sort(),
  );
  assert.ok(!existsSync(join(repo, "last-offsite.json")));
});

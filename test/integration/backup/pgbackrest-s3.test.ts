import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import pg from "pg";
import {
  loadOffsiteTarget,
  pgBackRestBackup,
  pgBackRestExpire,
  pgBackRestInfo,
  setupPgBackRest,
} from "../../../src/backup/index.ts";
import { destroyLocalInstance, localInstanceUrl } from "../../../src/local/instance.ts";
import { runCli } from "../../helpers/cli.ts";
import { BACKUP_BINARIES, backupTestDir, pgbackrestAvailable } from "../../helpers/pgbackrest.ts";
import { startS3Server, type TestS3Server } from "../../helpers/s3-server.ts";

const baseDir = backupTestDir("pgshift-pbr-s3-");
const instance = { name: "pbrs3", baseDir, binaries: BACKUP_BINARIES };
const passFile = join(baseDir, "cipher.pass");
writeFileSync(passFile, "repo cipher passphrase for both repositories\n", { mode: 0o600 });
const SECRET_ENV = "PGSHIFT_TEST_S3_SECRET";
let s3: TestS3Server | undefined;

after(async () => {
  await destroyLocalInstance(instance).catch(() => undefined);
  await s3?.stop();
});

test(
  "pgBackRest repo2 on S3 (s3rver over HTTPS, its certificate as CA): archive-push to both, backup --offsite, expire per repository",
  { skip: !pgbackrestAvailable && "pgbackrest not installed" },
  async () => {
    s3 = await startS3Server({ tls: true });
    const env = { ...process.env, [SECRET_ENV]: s3.secret };
    process.env[SECRET_ENV] = s3.secret;
    const target = loadOffsiteTarget(
      {
        url: `s3://${s3.bucket}/pgbackrest`,
        // pgBackRest 2.45 checks the certificate's DNS names only, never its IP addresses.
        endpoint: s3.endpoint.replace("127.0.0.1", "localhost"),
        accessKeyId: s3.accessKeyId,
        secretEnv: SECRET_ENV,
        caFile: s3.certFile!,
      },
      env,
    );
    const options = {
      instance,
      repository: join(baseDir, "repo"),
      cipherPassphrase: { file: passFile },
      s3: target,
    };
    const setup = await setupPgBackRest(options);
    const conf = readFileSync(setup.config, "utf8");
    assert.match(conf, /^repo2-type=s3$/m);
    assert.match(conf, /^repo2-s3-uri-style=path$/m);
    assert.match(conf, /^repo2-cipher-type=aes-256-cbc$/m);
    assert.match(conf, new RegExp(`^repo2-storage-ca-file=${s3.certFile!.replace(/[.]/g, "\\.")}$`, "m"));
    assert.doesNotMatch(conf, /verify-tls=n/, "TLS is verified against the given CA, not switched off");
    assert.equal(statSync(setup.config).mode & 0o777, 0o600);

    const client = new pg.Client({ connectionString: localInstanceUrl(instance) });
    await client.connect();
    await client.query("create table t (id int); insert into t select generate_series(1, 10000)");
    await client.end();

    const local = await pgBackRestBackup(options, "full");
    assert.equal(local.repo, 1);
    // The CLI, as in cron: a full backup into the S3 repository.
    const cli = await runCli(
      [
        "backup",
        "run",
        "--type",
        "full",
        "--offsite",
        "--instance",
        "pbrs3",
        "--repo",
        options.repository,
        "--json",
      ],
      { env: { PGSHIFT_LOCAL_DIR: baseDir } },
    );
    assert.equal(cli.code, 0, cli.stderr);
    const offsite = JSON.parse(cli.stdout);
    assert.equal(offsite.repo, 2);
    assert.equal(offsite.type, "full");
    const incr = await pgBackRestBackup(options, "incr", { repo: 2 });
    assert.equal(incr.prior, offsite.label);

    const info = await pgBackRestInfo(options);
    assert.equal(info.cipher, "aes-256-cbc");
    assert.deepEqual(
      info.backups.map((b) => [b.repo, b.label]).sort(),
      [
        [1, local.label],
        [2, offsite.label],
        [2, incr.label],
      ].sort(),
    );
    // The objects are in the bucket, encrypted (no PostgreSQL file header in the clear).
    const stored = readFileSync(s3.objectFile("pgbackrest/backup/main/backup.info"));
    assert.ok(stored.length > 0);
    assert.ok(!stored.includes("backup-current"), "backup.info is encrypted in the bucket");
    const walListing = execFileSync("find", [join(s3.objectFile("pgbackrest/archive/main"), "..", "main")], {
      encoding: "utf8",
    });
    assert.match(
      walListing,
      /archive\/main\/15-1\/0000000100000000\/[0-9A-F]{24}-[0-9a-f]{40}\.zst\._S3rver_object/,
    );

    // Expiry is per repository: keeping only the newest in each keeps repo2's chain whole.
    const dry = await pgBackRestExpire(
      options,
      { daily: 0, weekly: 0, monthly: 0, yearly: 0 },
      { dryRun: true },
    );
    assert.deepEqual(dry.expiredSets, []);
    assert.deepEqual(dry.keep.map((d) => d.label).sort(), [local.label, offsite.label, incr.label].sort());

    // pgBackRest's S3 driver is HTTPS only: a plain http endpoint is refused before anything is written.
    const http = await runCli(
      [
        "backup",
        "setup",
        "--engine",
        "pgbackrest",
        "--instance",
        "pbrs3",
        "--repo",
        options.repository,
        "--s3",
        `s3://${s3.bucket}/x`,
        "--s3-endpoint",
        s3.endpoint.replace("https:", "http:"),
        "--s3-access-key-id",
        s3.accessKeyId,
        "--s3-secret-env",
        SECRET_ENV,
      ],
      { env: { PGSHIFT_LOCAL_DIR: baseDir, [SECRET_ENV]: s3.secret } },
    );
    assert.equal(http.code, 2, http.stderr);
    assert.match(http.stderr, /pgBackRest talks to S3 over HTTPS only/);
    assert.equal(readFileSync(setup.config, "utf8"), conf);
    for (const r of [cli, http]) assert.ok(!`${r.stdout}${r.stderr}`.includes(s3.secret));
  },
);

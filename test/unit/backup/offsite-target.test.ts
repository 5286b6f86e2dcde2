import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { SettingsError } from "../../../src/errors.ts";
import {
  describeOffsiteTarget,
  listRepositoryFiles,
  loadOffsiteTarget,
  looksLikeRepository,
  objectKey,
  s3RepositoryLines,
} from "../../../src/backup/index.ts";

test("loadOffsiteTarget: flags over environment, the secret only named, defaults", () => {
  const target = loadOffsiteTarget(
    { url: "s3://backups/app/prod/", endpoint: "https://minio.internal:9000/", secretEnv: "S3_SECRET" },
    { PGSHIFT_S3_ACCESS_KEY_ID: "AKFROMENV", AWS_ACCESS_KEY_ID: "AKAWS", AWS_REGION: "eu-west-1" },
  );
  assert.deepEqual(target, {
    bucket: "backups",
    prefix: "app/prod",
    endpoint: "https://minio.internal:9000",
    region: "eu-west-1",
    accessKeyId: "AKFROMENV",
    secret: { env: "S3_SECRET" },
  });
  assert.equal(describeOffsiteTarget(target), "s3://backups/app/prod at https://minio.internal:9000");
  assert.equal(objectKey(target, "wal/000000010000000000000003"), "app/prod/wal/000000010000000000000003");
  const fromEnv = loadOffsiteTarget({}, { PGSHIFT_S3_URL: "s3://bucket-1", AWS_ACCESS_KEY_ID: "AK" });
  assert.deepEqual(fromEnv, {
    bucket: "bucket-1",
    prefix: "",
    region: "us-east-1",
    accessKeyId: "AK",
    secret: { env: "AWS_SECRET_ACCESS_KEY" },
  });
  assert.equal(objectKey(fromEnv, "manifest.json"), "manifest.json");
  assert.equal(describeOffsiteTarget(fromEnv), "s3://bucket-1");
});

test("loadOffsiteTarget: every problem at once", () => {
  assert.throws(
    () =>
      loadOffsiteTarget(
        {
          url: "s3://Bad_Bucket/a//b",
          endpoint: "ftp://user:pw@host/path",
          secretEnv: "A",
          secretFile: "/b",
        },
        {},
      ),
    (error: unknown) =>
      error instanceof SettingsError &&
      JSON.stringify(error.problems) ===
        JSON.stringify([
          "bucket name Bad_Bucket is not a valid S3 bucket name (3-63 of a-z, 0-9, '.', '-')",
          "prefix a//b must not contain empty, '.' or '..' parts",
          "--s3-endpoint must be http(s)://host[:port] without a path, got ftp://user:pw@host/path",
          "--s3-endpoint must not carry credentials: pass --s3-access-key-id and --s3-secret-env",
          "no S3 access key id: pass --s3-access-key-id or set PGSHIFT_S3_ACCESS_KEY_ID",
          "pass either --s3-secret-env or --s3-secret-file, not both",
        ]),
  );
  assert.throws(() => loadOffsiteTarget({}, { AWS_ACCESS_KEY_ID: "AK" }), /no off-site target: pass --s3/);
  assert.throws(
    () => loadOffsiteTarget({ url: "https://b/x" }, { AWS_ACCESS_KEY_ID: "AK" }),
    /must look like s3:/,
  );
});

test("s3RepositoryLines: pgBackRest repo2 for an S3-compatible endpoint, exact lines", () => {
  const dir = mkdtempSync(join(tmpdir(), "pgshift-s3lines-"));
  const secretFile = join(dir, "secret");
  writeFileSync(secretFile, "the-secret\n");
  const target = loadOffsiteTarget(
    { url: "s3://pg-backups/cluster", endpoint: "https://localhost:9443", accessKeyId: "AK", secretFile },
    {},
  );
  assert.deepEqual(s3RepositoryLines(target, "cipher pass"), [
    "repo2-type=s3",
    "repo2-path=/cluster",
    "repo2-s3-bucket=pg-backups",
    "repo2-s3-region=us-east-1",
    "repo2-s3-endpoint=localhost",
    "repo2-s3-uri-style=path",
    "repo2-storage-port=9443",
    "repo2-s3-key=AK",
    "repo2-s3-key-secret=the-secret",
    "repo2-cipher-type=aes-256-cbc",
    "repo2-cipher-pass=cipher pass",
    "repo2-retention-full-type=count",
    "repo2-retention-full=9999999",
  ]);
  const aws = loadOffsiteTarget(
    { url: "s3://pg-backups", region: "eu-central-1", accessKeyId: "AK", secretFile },
    {},
  );
  assert.deepEqual(s3RepositoryLines(aws, undefined).slice(0, 5), [
    "repo2-type=s3",
    "repo2-path=/",
    "repo2-s3-bucket=pg-backups",
    "repo2-s3-region=eu-central-1",
    "repo2-s3-endpoint=s3.eu-central-1.amazonaws.com",
  ]);
  const http = loadOffsiteTarget(
    { url: "s3://pg-backups", endpoint: "http://127.0.0.1:4568", accessKeyId: "AK", secretFile },
    {},
  );
  assert.throws(() => s3RepositoryLines(http, undefined), /pgBackRest talks to S3 over HTTPS only/);
});

test("listRepositoryFiles: content only, data first and index files last", () => {
  const repo = mkdtempSync(join(tmpdir(), "pgshift-repofiles-"));
  for (const dir of ["logical", "base/b1", "wal", "lock", "log", "backup/main/20261201-000000F"])
    mkdirSync(join(repo, dir), { recursive: true });
  for (const file of [
    "manifest.json",
    "manifest.json.tmp",
    "last-drill.json",
    "last-offsite.json",
    "offsite-pull.json",
    "logical/a.dump",
    "logical/b.dump.partial",
    "base/b1/base.tar",
    "base/b1/backup_manifest",
    "wal/000000010000000000000001",
    "lock/main.lock",
    "log/main-backup.log",
    "backup/main/backup.info",
    "backup/main/20261201-000000F/backup.manifest",
  ])
    writeFileSync(join(repo, file), "x");
  symlinkSync("20261201-000000F", join(repo, "backup/main/latest"));
  const files = listRepositoryFiles(repo);
  assert.deepEqual(
    files.map((f) => f.path),
    [
      "backup/main/20261201-000000F/backup.manifest",
      "base/b1/backup_manifest",
      "base/b1/base.tar",
      "logical/a.dump",
      "wal/000000010000000000000001",
      "backup/main/backup.info",
      "last-drill.json",
      "manifest.json",
    ],
  );
  assert.equal(looksLikeRepository(files), true);
  assert.equal(looksLikeRepository(files.filter((f) => f.path.startsWith("logical/"))), false);
});

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import pg from "pg";
import {
  readManifest,
  restoreLogicalBackup,
  runLogicalBackup,
  sha256File,
} from "../../../src/backup/index.ts";
import { newerServerThanDumpTools } from "../../helpers/binaries.ts";
import { serverUrl, useTestDatabase, withDatabase } from "../../helpers/database.ts";

const dumpSkip = await newerServerThanDumpTools(process.env.TEST_DATABASE_URL!);
const db = useTestDatabase("bk");
const PASSPHRASE = "correct horse battery staple 42";

test(
  "encrypted logical backup: streamed, gpg decrypts it, pg_restore reads it, restore into a new database",
  { skip: dumpSkip },
  async () => {
    await db().pool.query(
      "create table items (id int primary key, name text); insert into items select g, 'item ' || g from generate_series(1, 5000) g",
    );
    const repository = mkdtempSync(join(tmpdir(), "pgshift-bk-"));
    const keyDir = mkdtempSync(join(tmpdir(), "pgshift-key-"));
    const passFile = join(keyDir, "passphrase");
    writeFileSync(passFile, `${PASSPHRASE}\n`, { mode: 0o600 });

    const result = await runLogicalBackup({
      url: db().url,
      repository,
      passphrase: { file: passFile },
      label: "one",
    });
    assert.equal(result.entry.label, "one");
    assert.equal(result.entry.encrypted, true);
    assert.equal(result.entry.file, "logical/one.dump.gpg");
    assert.equal(result.entry.sha256, await sha256File(result.path));
    assert.ok(result.entry.sizeBytes > 1000);
    assert.ok(!readFileSync(result.path).subarray(0, 5).equals(Buffer.from("PGDMP")));
    const manifestText = readFileSync(join(repository, "manifest.json"), "utf8");
    assert.ok(!manifestText.includes(PASSPHRASE));
    assert.ok(!manifestText.includes(new URL(db().url).password));
    assert.deepEqual(
      readManifest(repository).backups.map((b) => [b.label, b.kind, b.passphraseSource]),
      [["one", "logical", `file ${passFile}`]],
    );

    // The standard gpg CLI decrypts it, and pg_restore --list reads the result.
    const home = mkdtempSync(join(tmpdir(), "pgshift-gpghome-"));
    const plain = join(keyDir, "plain.dump");
    execFileSync(
      "gpg",
      [
        "--homedir",
        home,
        "--batch",
        "--pinentry-mode",
        "loopback",
        "--passphrase-file",
        passFile,
        "--output",
        plain,
        "--decrypt",
        result.path,
      ],
      { stdio: "ignore" },
    );
    execFileSync("gpgconf", ["--homedir", home, "--kill", "gpg-agent"]);
    assert.ok(readFileSync(plain).subarray(0, 5).equals(Buffer.from("PGDMP")));
    const list = execFileSync("pg_restore", ["--list", plain], { encoding: "utf8" });
    assert.match(list, /TABLE DATA public items/);

    // A wrong passphrase fails the restore and creates no half-restored data.
    process.env.PGSHIFT_TEST_WRONG = "not it";
    const restoredName = `${db().name}_r`;
    await assert.rejects(
      restoreLogicalBackup({
        repository,
        serverUrl: serverUrl(),
        database: `${restoredName}_bad`,
        passphrase: { env: "PGSHIFT_TEST_WRONG" },
      }),
      /gpg decrypt failed|pg_restore/,
    );

    const leftover = await db().pool.query("select count(*)::int as n from pg_database where datname = $1", [
      `${restoredName}_bad`,
    ]);
    assert.equal(leftover.rows[0].n, 0);

    process.env.PGSHIFT_TEST_PASS = PASSPHRASE;
    const restored = await restoreLogicalBackup({
      repository,
      serverUrl: serverUrl(),
      database: restoredName,
      passphrase: { env: "PGSHIFT_TEST_PASS" },
    });
    assert.equal(restored.entry.label, "one");
    const client = new pg.Client({ connectionString: withDatabase(serverUrl(), restoredName) });
    await client.connect();
    try {
      const r = await client.query("select count(*)::int as n, sum(id)::int as s from items");
      assert.deepEqual(r.rows[0], { n: 5000, s: 12502500 });
    } finally {
      await client.end();
    }
    await assert.rejects(
      restoreLogicalBackup({
        repository,
        serverUrl: serverUrl(),
        database: restoredName,
        passphrase: { env: "PGSHIFT_TEST_PASS" },
      }),
      /exists already/,
    );

    // A corrupted file is refused before anything is restored.
    const bytes = readFileSync(result.path);
    bytes[bytes.length - 10] ^= 0xff;
    writeFileSync(result.path, bytes);
    await assert.rejects(
      restoreLogicalBackup({
        repository,
        serverUrl: serverUrl(),
        database: `${restoredName}_c`,
        passphrase: { env: "PGSHIFT_TEST_PASS" },
      }),
      /corrupted/,
    );
    const admin = new pg.Client({ connectionString: serverUrl() });
    await admin.connect();
    for (const name of [restoredName, `${restoredName}_bad`])
      await admin.query(`drop database if exists "${name}" with (force)`);
    await admin.end();
  },
);

test("unencrypted backup of one table", { skip: dumpSkip }, async () => {
  await db().pool.query("create table other (x int); insert into other values (1)");
  const repository = mkdtempSync(join(tmpdir(), "pgshift-bk-"));
  const result = await runLogicalBackup({ url: db().url, repository, tables: ["public.other"] });
  assert.equal(result.entry.encrypted, false);
  assert.match(result.entry.label, /^\d{8}T\d{6}Z-logical$/);
  const list = execFileSync("pg_restore", ["--list", result.path], { encoding: "utf8" });
  assert.match(list, /TABLE DATA public other/);
  assert.doesNotMatch(list, /TABLE DATA public items/);
});

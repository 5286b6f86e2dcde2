import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import pg from "pg";
import {
  pgBackRestBackup,
  pgBackRestExpire,
  pgBackRestInfo,
  setupPgBackRest,
} from "../../../src/backup/index.ts";
import { destroyLocalInstance, localInstanceUrl } from "../../../src/local/instance.ts";
import { runCli } from "../../helpers/cli.ts";
import { BACKUP_BINARIES, backupTestDir, pgbackrestAvailable } from "../../helpers/pgbackrest.ts";

const baseDir = backupTestDir("pgshift-pbr-");
const instance = { name: "pbr", baseDir, binaries: BACKUP_BINARIES };
const passFile = join(baseDir, "cipher.pass");
writeFileSync(passFile, "repo cipher passphrase 0123456789\n", { mode: 0o600 });
const options = { instance, repository: join(baseDir, "repo"), cipherPassphrase: { file: passFile } };

after(async () => {
  await destroyLocalInstance(instance).catch(() => undefined);
});

async function sql(text: string): Promise<void> {
  const client = new pg.Client({ connectionString: localInstanceUrl(instance) });
  await client.connect();
  await client.query(text).finally(() => client.end());
}

test(
  "pgBackRest: stanza, encrypted full/incr/diff, info with priors, GFS expire keeps the chain",
  { skip: !pgbackrestAvailable && "pgbackrest not installed" },
  async () => {
    const setup = await setupPgBackRest(options);
    assert.equal(setup.stanza, "main");
    assert.ok(readFileSync(setup.config, "utf8").includes("repo1-cipher-type=aes-256-cbc"));
    await sql("create table t (id int); insert into t select generate_series(1, 10000)");
    const full = await pgBackRestBackup(options, "full");
    assert.equal(full.type, "full");
    assert.equal(full.prior, undefined);
    await sql("insert into t select generate_series(1, 100)");
    const incr = await pgBackRestBackup(options, "incr");
    assert.equal(incr.prior, full.label);
    await sql("insert into t select generate_series(1, 100)");
    const diff = await pgBackRestBackup(options, "diff");
    assert.equal(diff.prior, full.label);
    const info = await pgBackRestInfo(options);
    assert.equal(info.cipher, "aes-256-cbc");
    assert.deepEqual(
      info.backups.map((b) => [b.label, b.type]),
      [
        [full.label, "full"],
        [incr.label, "incr"],
        [diff.label, "diff"],
      ],
    );
    // Keep only the newest: the diff, and the full it needs; the incr goes.
    const policy = { daily: 0, weekly: 0, monthly: 0, yearly: 0 };
    const dry = await pgBackRestExpire(options, policy, { dryRun: true });
    assert.deepEqual(dry.expiredSets, [incr.label]);
    assert.equal((await pgBackRestInfo(options)).backups.length, 3);
    const result = await pgBackRestExpire(options, policy);
    assert.deepEqual(
      result.keep.map((d) => [d.label, d.classes]),
      [
        [diff.label, ["latest"]],
        [full.label, ["dependency"]],
      ],
    );
    assert.deepEqual(
      (await pgBackRestInfo(options)).backups.map((b) => b.label),
      [full.label, diff.label],
    );

    // The CLI: an incremental on the diff, then a dry-run expiry that keeps the whole chain.
    const env = { PGSHIFT_LOCAL_DIR: baseDir };
    const cli = await runCli(
      ["backup", "run", "--type", "incr", "--instance", "pbr", "--repo", options.repository, "--json"],
      { env },
    );
    assert.equal(cli.code, 0, cli.stderr);
    const made = JSON.parse(cli.stdout);
    assert.equal(made.type, "incr");
    assert.equal(made.prior, diff.label);
    const dryCli = await runCli(
      [
        "backup",
        "expire",
        "--engine",
        "pgbackrest",
        "--instance",
        "pbr",
        "--repo",
        options.repository,
        "--daily",
        "0",
        "--weekly",
        "0",
        "--monthly",
        "0",
        "--yearly",
        "0",
        "--dry-run",
        "--json",
      ],
      { env },
    );
    assert.equal(dryCli.code, 0, dryCli.stderr);
    const dryJson = JSON.parse(dryCli.stdout);
    assert.deepEqual(dryJson.expiredSets, []);
    assert.deepEqual(
      dryJson.keep.map((d: { label: string }) => d.label),
      [made.label, diff.label, full.label],
    );
  },
);

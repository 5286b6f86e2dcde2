import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { runCli } from "../../helpers/cli.ts";
import { newerServerThanDumpTools } from "../../helpers/binaries.ts";
import { useTestDatabase } from "../../helpers/database.ts";

const dumpSkip = await newerServerThanDumpTools(process.env.TEST_DATABASE_URL!);
const db = useTestDatabase("bkcli");

test(
  "pgshift backup run/list/expire/restore (logical, encrypted) through the CLI",
  { skip: dumpSkip },
  async () => {
    await db().pool.query("create table t (id int); insert into t select generate_series(1, 100)");
    const repo = mkdtempSync(join(tmpdir(), "pgshift-bkcli-"));
    const env = { BK_PASS: "cli passphrase 123" };
    const run = await runCli(
      [
        "backup",
        "run",
        "--to",
        db().url,
        "--repo",
        repo,
        "--label",
        "c1",
        "--passphrase-env",
        "BK_PASS",
        "--json",
      ],
      { env },
    );
    assert.equal(run.code, 0, run.stderr);
    const runJson = JSON.parse(run.stdout);
    assert.equal(runJson.entry.label, "c1");
    assert.equal(runJson.entry.encrypted, true);
    assert.ok(!run.stdout.includes("cli passphrase 123"));
    assert.ok(!run.stdout.includes(new URL(db().url).password));

    const list = await runCli(["backup", "list", "--repo", repo, "--json"]);
    assert.equal(list.code, 0, list.stderr);
    const listJson = JSON.parse(list.stdout);
    assert.deepEqual(
      listJson.backups.map((b: { label: string; retention: { classes: string[] } }) => [
        b.label,
        b.retention.classes,
      ]),
      [["c1", ["daily", "weekly", "monthly", "yearly"]]],
    );

    const dry = await runCli([
      "backup",
      "expire",
      "--repo",
      repo,
      "--daily",
      "0",
      "--weekly",
      "0",
      "--monthly",
      "0",
      "--yearly",
      "0",
      "--dry-run",
    ]);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /1 kept, 0 would be deleted/);

    const restore = await runCli(
      [
        "backup",
        "restore",
        "--to",
        db().url,
        "--repo",
        repo,
        "--database",
        `${db().name}_cli`,
        "--passphrase-env",
        "BK_PASS",
      ],
      { env },
    );
    assert.equal(restore.code, 0, restore.stderr);
    assert.match(restore.stdout, new RegExp(`restored c1 into database ${db().name}_cli`));
    await db().pool.query(`drop database "${db().name}_cli" with (force)`);

    const bad = await runCli(["backup", "run", "--to", db().url, "--repo", repo, "--type", "nope"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--type must be logical, physical, full, diff or incr/);
  },
);

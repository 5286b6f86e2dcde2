import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, test } from "node:test";
import pg from "pg";
import { installAudit, verifyAudit } from "../../../src/audit/index.ts";
import { newerServerThanDumpTools } from "../../helpers/binaries.ts";
import { runCli } from "../../helpers/cli.ts";
import { createTestDatabase, useTestDatabase, withDatabase } from "../../helpers/database.ts";
import { migration } from "../migrate/migration-dir.ts";

/**
 * pgshift's own operations go into the audit trail of a database that has one, each event carrying the
 * sha256 of the report the command wrote, so the evidence is in one place (issue 18). A database without the
 * trail gets nothing and no warning.
 */
const db = useTestDatabase("audops");
const cwd = mkdtempSync(join(tmpdir(), "pgshift-audit-ops-"));
after(() => rmSync(cwd, { recursive: true, force: true }));
const dumpSkip = await newerServerThanDumpTools(process.env.TEST_DATABASE_URL!);
const sample = fileURLToPath(new URL("../../../examples/sample.db", import.meta.url));

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

async function events(pool: pg.Pool, op: string) {
  const { rows } = await pool.query<{ detail: Record<string, unknown> }>(
    "select detail from pgshift.audit_log where op = $1 order by id",
    [op],
  );
  return rows.map((r) => r.detail);
}

test("import, document import and migrate record an event with their report's sha256", async () => {
  const { pool, url } = db();
  await installAudit(pool);

  const imported = await runCli(["--json", "--to", url, "import", sample], { cwd });
  assert.equal(imported.code, 0, imported.stderr);
  const importReport = JSON.parse(imported.stdout).report as string;
  const [sqliteEvent] = await events(pool, "import");
  assert.equal(sqliteEvent?.kind, "import-sqlite");
  assert.equal(sqliteEvent?.ok, true);
  assert.equal(sqliteEvent?.reportSha256, sha256(readFileSync(importReport, "utf8")));

  const ndjson = join(cwd, "notes.ndjson");
  writeFileSync(ndjson, '{"id":1,"text":"a"}\n{"id":2,"text":"b"}\n');
  const docs = await runCli(["--json", "--to", url, "import", `ndjson:${ndjson}`, "--key", "/id"], { cwd });
  assert.equal(docs.code, 0, docs.stderr);
  const docsEvent = (await events(pool, "import")).at(-1);
  assert.equal(docsEvent?.kind, "import-documents");
  assert.equal(docsEvent?.reportSha256, sha256(readFileSync(JSON.parse(docs.stdout).report, "utf8")));

  mkdirSync(join(cwd, "migrations"));
  writeFileSync(
    join(cwd, "migrations", "20250101000000_add_flags.sql"),
    migration("create table flags (id int primary key);", "drop table flags;"),
  );
  const up = await runCli(["--json", "--to", url, "migrate", "up"], { cwd });
  assert.equal(up.code, 0, up.stderr);
  const [migrated] = await events(pool, "migrate");
  assert.equal(migrated?.direction, "up");
  assert.equal(migrated?.applied, 1);
  assert.equal(migrated?.reportSha256, sha256(JSON.stringify(JSON.parse(up.stdout))));
  assert.deepEqual((await verifyAudit({ pool })).problems, []);
});

test("a database without the audit trail: no event, no warning", async () => {
  const plain = await createTestDatabase("audnone");
  try {
    const imported = await runCli(["--to", plain.url, "import", sample], { cwd });
    assert.equal(imported.code, 0, imported.stderr);
    assert.doesNotMatch(imported.stderr, /audit/);
    const { rows } = await plain.pool.query("select to_regclass('pgshift.audit_log') as t");
    assert.equal(rows[0].t, null);
  } finally {
    await plain.drop();
  }
});

test(
  "a logical restore is recorded in the restored database's trail, which still verifies",
  { skip: dumpSkip },
  async () => {
    const { pool, url, name } = db();
    await installAudit(pool);
    const repo = mkdtempSync(join(tmpdir(), "pgshift-audit-restore-"));
    after(() => rmSync(repo, { recursive: true, force: true }));
    const backup = await runCli(["backup", "run", "--to", url, "--repo", repo, "--label", "r1", "--json"]);
    assert.equal(backup.code, 0, backup.stderr);
    const restoredName = `${name}_restored`;
    const restore = await runCli([
      "backup",
      "restore",
      "--to",
      url,
      "--repo",
      repo,
      "--database",
      restoredName,
      "--json",
    ]);
    assert.equal(restore.code, 0, restore.stderr);
    assert.doesNotMatch(restore.stderr, /not recorded/);
    const restored = new pg.Pool({ connectionString: withDatabase(url, restoredName), max: 1 });
    try {
      const [event] = await events(restored, "restore");
      assert.equal(event?.kind, "logical");
      assert.equal(event?.label, "r1");
      assert.equal(event?.database, restoredName);
      assert.equal(event?.reportSha256, sha256(JSON.stringify(JSON.parse(restore.stdout))));
      // The source database has no such event: the restore happened to the copy.
      assert.deepEqual(await events(pool, "restore"), []);
      assert.deepEqual((await verifyAudit({ pool: restored })).problems, []);
    } finally {
      await restored.end();
      await pool.query(`drop database if exists "${restoredName}" with (force)`);
    }
  },
);

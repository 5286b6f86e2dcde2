import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import Database from "better-sqlite3";
import { runCli } from "../../helpers/cli.ts";
import { useTestDatabase } from "../../helpers/database.ts";

const db = useTestDatabase("rowidcol");

test("columns named rowid and _rowid_ are kept: rows are read through oid, loaded, quarantined and verified", async () => {
  const dir = mkdtempSync(join(tmpdir(), "pgshift-rowid-"));
  const path = join(dir, "named.db");
  const sqlite = new Database(path);
  sqlite.exec(`create table t (id integer, rowid text, v text);
    create table u (rowid integer, _rowid_ text, note text);`);
  const t = sqlite.prepare("insert into t (oid, id, rowid, v) values (?, ?, ?, ?)");
  // More rows than one read batch, with row ids out of step with the column values.
  for (let i = 1; i <= 4500; i++) t.run(i * 3, i, i % 7 === 0 ? null : `r${i}`, `x\t${i}`);
  const u = sqlite.prepare("insert into u (oid, rowid, _rowid_, note) values (?, ?, ?, ?)");
  u.run(10, 999, "a", "fine");
  u.run(11, -5, null, "also fine");
  // Invalid UTF-8: quarantined under its row id (11 is the column "rowid"; the row id is 12).
  sqlite
    .prepare("insert into u (oid, rowid, _rowid_, note) values (12, 7, 'b', cast(x'6869ff' as text))")
    .run();
  sqlite.close();

  const result = await runCli(["import", path, "--on-bad-value", "quarantine", "--json"], {
    cwd: dir,
    env: { DATABASE_URL: db().url },
  });
  assert.equal(result.code, 0, result.stderr);
  const report = JSON.parse(result.stdout);
  assert.deepEqual(
    report.tables.map((x: { source: string; rowsLoaded: number; rowsQuarantined: number }) => [
      x.source,
      x.rowsLoaded,
      x.rowsQuarantined,
    ]),
    [
      ["t", 4500, 0],
      ["u", 2, 1],
    ],
  );
  const { rows } = await db().pool.query(
    `select count(*)::int as n, count("rowid")::int as named, min(id)::int as lo, max(id)::int as hi,
            bool_and(v = E'x\\t' || id) as values_ok, bool_and("rowid" is null or "rowid" = 'r' || id) as rowid_ok
       from t`,
  );
  assert.deepEqual(rows[0], { n: 4500, named: 4500 - 642, lo: 1, hi: 4500, values_ok: true, rowid_ok: true });
  const { rows: us } = await db().pool.query(
    `select "rowid"::int as r, "_rowid_" as a, note from u order by 1`,
  );
  assert.deepEqual(us, [
    { r: -5, a: null, note: "also fine" },
    { r: 999, a: "a", note: "fine" },
  ]);
  const { rows: q } = await db().pool.query("select location, reason from pgshift.quarantine");
  assert.deepEqual(q, [{ location: "rowid 12", reason: "invalid UTF-8 in text" }]);

  const verified = await runCli(["verify", path], { cwd: dir, env: { DATABASE_URL: db().url } });
  assert.equal(verified.code, 0, verified.stdout + verified.stderr);
});

test("a table whose columns take rowid, _rowid_ and oid is refused up front, naming the way out; nothing is created", async () => {
  const dir = mkdtempSync(join(tmpdir(), "pgshift-rowid-"));
  const path = join(dir, "hidden.db");
  const sqlite = new Database(path);
  sqlite.exec(`create table t (id integer, rowid text, _rowid_ text, oid text);
    insert into t values (1, 'a', 'b', 'c');
    create table ok (k integer primary key, v text);
    insert into ok values (5, 'five');`);
  sqlite.close();
  const url = `${db().url}`;
  await db().pool.query("drop schema if exists hidden cascade");

  const refused = await runCli(["import", path, "--schema", "hidden"], {
    cwd: dir,
    env: { DATABASE_URL: url },
  });
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /table "t" in .* has columns named rowid, _rowid_ and oid.*--exclude t/);
  const tables = await db().pool.query(
    "select count(*)::int as n from information_schema.tables where table_schema = 'hidden'",
  );
  assert.equal(tables.rows[0].n, 0);

  const rest = await runCli(["import", path, "--schema", "hidden", "--exclude", "t"], {
    cwd: dir,
    env: { DATABASE_URL: url },
  });
  assert.equal(rest.code, 0, rest.stderr);
  const { rows } = await db().pool.query("select k::int as k, v from hidden.ok");
  assert.deepEqual(rows, [{ k: 5, v: "five" }]);
});

import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import Database from "better-sqlite3";
import { runCli } from "../../helpers/cli.ts";
import { useTestDatabase } from "../../helpers/database.ts";

const db = useTestDatabase("rowidcol");

test("a table whose column is named rowid is refused up front, naming the way out; nothing is created", async () => {
  const dir = mkdtempSync(join(tmpdir(), "pgshift-rowid-"));
  const path = join(dir, "hidden.db");
  const sqlite = new Database(path);
  sqlite.exec(`create table t (id integer, rowid text, v text);
    insert into t values (1, 'a', 'x'), (2, null, 'y');
    create table ok (k integer primary key, v text);
    insert into ok values (5, 'five');`);
  sqlite.close();

  const refused = await runCli(["import", path], { cwd: dir, env: { DATABASE_URL: db().url } });
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /table "t" in .* has a column named "rowid".*--exclude t/);
  const tables = await db().pool.query(
    "select count(*)::int as n from information_schema.tables where table_schema = 'public'",
  );
  assert.equal(tables.rows[0].n, 0);

  const rest = await runCli(["import", path, "--exclude", "t"], {
    cwd: dir,
    env: { DATABASE_URL: db().url },
  });
  assert.equal(rest.code, 0, rest.stderr);
  const { rows } = await db().pool.query("select k::int as k, v from ok");
  assert.deepEqual(rows, [{ k: 5, v: "five" }]);
});

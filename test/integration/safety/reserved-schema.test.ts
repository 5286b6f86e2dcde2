import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { runCli, stderrText } from "../../helpers/cli.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import { fixtureDir, makeSqlite } from "../import/sqlite-fixtures.ts";

const db = useTestDatabase("reserved");
const dir = fixtureDir();

async function pgshiftTables(): Promise<string[]> {
  const { rows } = await db().pool.query(
    "select relname from pg_class c join pg_namespace n on n.oid = c.relnamespace where nspname = 'pgshift' and relkind = 'r' order by 1",
  );
  return rows.map((r) => r.relname as string);
}

describe("imports into pgshift's own schema or a system schema are refused", () => {
  let evil: string;
  let docs: string;

  before(async () => {
    evil = makeSqlite(
      join(dir, "evil.db"),
      `CREATE TABLE quarantine (id INTEGER PRIMARY KEY, v TEXT);
       CREATE TABLE import_runs (id INTEGER PRIMARY KEY, v TEXT);
       CREATE TABLE migrations (id INTEGER PRIMARY KEY, v TEXT);
       INSERT INTO quarantine VALUES (1, 'evil'); INSERT INTO migrations VALUES (1, 'evil');`,
    );
    docs = join(dir, "migrations.ndjson");
    writeFileSync(docs, '{"id": 1, "v": "evil"}\n');
    // pgshift's own schema with state in it: a first import creates it, a table stands in for the history
    const seed = makeSqlite(
      join(dir, "seed.db"),
      "CREATE TABLE t (id INTEGER PRIMARY KEY); INSERT INTO t VALUES (1);",
    );
    const first = await runCli(["import", seed, "--to", db().url, "--schema", "seeded"], { cwd: dir });
    assert.equal(first.code, 0, first.stderr);
    await db().pool.query(
      "create table pgshift.migrations (version text primary key); insert into pgshift.migrations values ('keep')",
    );
  });

  for (const schema of ["pgshift", "information_schema", "pg_catalog", "pg_toast", "pg_anything"]) {
    for (const kind of ["sqlite", "documents"] as const) {
      for (const destructive of [
        [],
        kind === "sqlite" ? ["--if-exists", "replace"] : ["--mode", "replace"],
      ]) {
        it(`${kind} --schema ${schema} ${destructive.join(" ")}`, async () => {
          const tablesBefore = await pgshiftTables();
          const source = kind === "sqlite" ? evil : `ndjson:${docs}`;
          const table = kind === "documents" ? ["--table", "migrations"] : [];
          const result = await runCli(
            ["--json", "import", source, "--to", db().url, "--schema", schema, ...table, ...destructive],
            { cwd: dir },
          );
          assert.equal(result.code, 2, result.stderr + result.stdout);
          const payload = JSON.parse(result.stdout);
          assert.equal(payload.error, "reserved_schema");
          assert.equal(payload.schema, schema);
          assert.match(stderrText(result.stderr), new RegExp(`refusing to import into schema "${schema}"`));
          assert.doesNotMatch(result.stderr + result.stdout, /--if-exists replace|--mode replace/);
          assert.deepEqual(await pgshiftTables(), tablesBefore);
          const { rows } = await db().pool.query("select version from pgshift.migrations");
          assert.deepEqual(rows, [{ version: "keep" }]);
        });
      }
    }
  }
});

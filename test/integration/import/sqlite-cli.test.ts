import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { runCli } from "../../helpers/cli.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import { fixtureDir, makeSqlite } from "./sqlite-fixtures.ts";

const db = useTestDatabase("sqlcli");
const SAMPLE = fileURLToPath(new URL("../../../examples/sample.db", import.meta.url));
const dir = fixtureDir();
let resumable: string;

before(() => {
  resumable = makeSqlite(
    join(dir, "resume.db"),
    `CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT NOT NULL);
     CREATE TABLE b (id INTEGER PRIMARY KEY, a_id INTEGER REFERENCES a(id) ON DELETE CASCADE, n REAL);
     CREATE INDEX b_a ON b (a_id);
     CREATE TABLE c (k TEXT PRIMARY KEY, flag BOOLEAN) WITHOUT ROWID;`,
    (d) => {
      for (let i = 1; i <= 600; i++) d.prepare("insert into a values (?, ?)").run(i, `value ${i}`);
      for (let i = 1; i <= 900; i++) d.prepare("insert into b values (?, ?, ?)").run(i, 1 + (i % 600), i / 7);
      for (let i = 1; i <= 50; i++) d.prepare("insert into c values (?, ?)").run(`k${i}`, i % 2);
    },
  );
});

async function count(sql: string): Promise<number> {
  const { rows } = await db().pool.query(sql);
  return Number(rows[0].n);
}

describe("pgshift import (CLI)", () => {
  it("imports the shipped sample with a clean summary and a JSON report", async () => {
    const result = await runCli(["import", SAMPLE, "--to", db().url, "--schema", "sample"], { cwd: dir });
    assert.equal(result.code, 0, result.stderr + result.stdout);
    for (const table of ["users", "projects", "tasks", "orders", "Order Items"])
      assert.match(result.stdout, new RegExp(table));
    assert.match(result.stdout, /rows read\s+loaded\s+quarantined\s+conversions\s+time/);
    const report = /report: (.+)$/m.exec(result.stdout)?.[1];
    assert.ok(report && existsSync(report), result.stdout);
    const parsed = JSON.parse(readFileSync(report, "utf8"));
    assert.equal(parsed.ok, true);
    assert.equal(parsed.totals.rowsLoaded, 4722);
    assert.equal(await count("select count(*) as n from sample.tasks"), 2880);
    assert.equal(await count(`select count(*) as n from sample."Order Items"`), 962);
    assert.equal(
      await count("select count(*) as n from sample.open_tasks"),
      await count("select count(*) as n from sample.tasks where not done"),
    );
  });

  it("--dry-run prints the DDL and changes nothing; --json gives the result object", async () => {
    const dry = await runCli(
      ["import", `sqlite:${SAMPLE}`, "--to", db().url, "--schema", "dry", "--dry-run"],
      { cwd: dir },
    );
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /create table "dry"\."Order Items" \(/);
    assert.match(dry.stdout, /read as unix milliseconds/);
    assert.equal(await count("select count(*) as n from pg_namespace where nspname = 'dry'"), 0);
    const json = await runCli(
      ["--json", "import", SAMPLE, "--to", db().url, "--schema", "dry", "--dry-run", "--naming", "snake"],
      { cwd: dir },
    );
    assert.equal(json.code, 0, json.stderr);
    const parsed = JSON.parse(json.stdout);
    assert.equal(parsed.dryRun, true);
    assert.ok(parsed.plan.tables.some((t: { targetName: string }) => t.targetName === "order_items"));
  });

  it("exits 2 on usage errors and when the tables exist", async () => {
    const bad = await runCli(["import", SAMPLE, "--to", db().url, "--naming", "camel"], { cwd: dir });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--naming must be one of keep, snake/);
    const exists = await runCli(["import", SAMPLE, "--to", db().url, "--schema", "sample", "--no-verify"], {
      cwd: dir,
    });
    assert.equal(exists.code, 2);
    assert.match(exists.stderr, /already in schema sample/);
  });

  for (const point of [
    "schema:before-commit",
    "data:after-commit#3",
    "data:before-commit#2",
    "index:before-commit",
    "constraint:before-validate",
    "run:before-complete",
  ]) {
    it(`resumes exactly once after a kill at ${point}`, async () => {
      const schema = `r_${point.replace(/[^a-z0-9]/g, "_")}`;
      const args = [
        "import",
        resumable,
        "--to",
        db().url,
        "--schema",
        schema,
        "--chunk-rows",
        "100",
        "--jobs",
        "2",
        "--no-verify",
      ];
      const killed = await runCli(args, {
        cwd: dir,
        env: { PGSHIFT_TEST_KILL_AT: point },
      });
      assert.notEqual(killed.code, 0, `expected a kill at ${point}: ${killed.stdout}`);
      const resumed = await runCli([...args, "--resume"], { cwd: dir });
      assert.equal(resumed.code, 0, resumed.stderr + resumed.stdout);
      assert.equal(await count(`select count(*) as n from ${schema}.a`), 600);
      assert.equal(await count(`select count(*) as n from ${schema}.b`), 900);
      assert.equal(await count(`select count(*) as n from ${schema}.c`), 50);
      assert.equal(await count(`select count(distinct id) as n from ${schema}.b`), 900);
      assert.equal(
        await count(
          `select count(*) as n from pg_indexes where schemaname = '${schema}' and indexname = 'b_a'`,
        ),
        1,
      );
      assert.equal(
        await count(
          `select count(*) as n from pg_constraint k join pg_namespace s on s.oid = k.connamespace where s.nspname = '${schema}' and k.contype = 'f' and k.convalidated`,
        ),
        1,
      );
      const { rows } = await db().pool.query(
        `select r.status, count(*) filter (where c.status = 'done')::int as done, count(*)::int as chunks
           from pgshift.import_runs r join pgshift.import_chunks c using (run_id) where r.target_schema = $1 group by r.run_id, r.status`,
        [schema],
      );
      assert.deepEqual(rows, [{ status: "completed", done: 16, chunks: 16 }]);
    });
  }
});

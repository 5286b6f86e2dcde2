import assert from "node:assert/strict";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { redactUrl } from "../../../src/config/redact.ts";
import { importSqlite } from "../../../src/load/import-sqlite.ts";
import { nextSteps, shellWord } from "../../../src/load/next-steps.ts";
import type { ImportPlan } from "../../../src/schema/plan.ts";
import { verifySqlite } from "../../../src/verify/verify-import.ts";
import { runCli } from "../../helpers/cli.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import { fixtureDir, makeSqlite } from "./sqlite-fixtures.ts";

const db = useTestDatabase("replace");
const dir = fixtureDir();
let shop: string;

const SHOP = `
  CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
  CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent(id), v TEXT);
  CREATE VIEW pv AS SELECT p.name, c.v FROM parent p JOIN child c ON c.parent_id = p.id;
`;

before(() => {
  shop = makeSqlite(join(dir, "shop.db"), SHOP, (d) => {
    for (let i = 1; i <= 4; i++) d.prepare("insert into parent values (?, ?)").run(i, `p${i}`);
    for (let i = 1; i <= 6; i++) d.prepare("insert into child values (?, ?, ?)").run(i, 1 + (i % 4), `c${i}`);
  });
});

async function rows(sql: string, params: unknown[] = []): Promise<Record<string, unknown>[]> {
  return (await db().pool.query(sql, params)).rows;
}

async function relations(schema: string): Promise<string[]> {
  return (
    await rows(
      "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 and c.relkind in ('r', 'v') order by 1",
      [schema],
    )
  ).map((r) => String(r.relname));
}

async function foreignKeys(schema: string): Promise<string[]> {
  return (
    await rows(
      `select c.relname || '.' || k.conname || ' -> ' || f.relname || (case when k.convalidated then '' else ' (not valid)' end) as fk
         from pg_constraint k join pg_class c on c.oid = k.conrelid join pg_class f on f.oid = k.confrelid
         join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 and k.contype = 'f' order by 1`,
      [schema],
    )
  ).map((r) => String(r.fk));
}

describe("--if-exists replace never drops what pgshift did not create", () => {
  before(async () => {
    const first = await importSqlite({ path: shop, pool: db().pool, schema: "r" });
    assert.equal(first.ok, true, JSON.stringify(first.error));
    await db().pool.query(`
      create view r.user_view as select id, name from r.parent;
      create index user_index on r.parent (name);
      create table r.user_table (id int primary key, parent_id bigint references r.parent (id));
      insert into r.user_table values (1, 2);`);
  });

  it("refuses (exit 2) naming each dependent object, and changes nothing", async () => {
    const runsBefore = await rows("select count(*)::int as n from pgshift.import_runs");
    await assert.rejects(
      importSqlite({ path: shop, pool: db().pool, schema: "r", tables: ["parent"], ifExists: "replace" }),
      (error: Error & { code?: string; exitCode?: number; details?: Record<string, unknown> }) => {
        assert.equal(error.code, "replace_dependents");
        assert.equal(error.exitCode, 2);
        assert.match(error.message, /view r\.user_view/);
        assert.match(error.message, /foreign-key r\.user_table constraint user_table_parent_id_fkey/);
        // pgshift's own view and foreign key are recreated, so they do not block.
        assert.doesNotMatch(error.message, /r\.pv|child_parent_id_fkey/);
        assert.deepEqual(error.details?.dependents, [
          { kind: "view", object: "r.user_view", dependsOn: "r.parent" },
          {
            kind: "foreign-key",
            object: "r.user_table constraint user_table_parent_id_fkey",
            dependsOn: "r.parent",
          },
          { kind: "other", object: "index user_index on r.parent", dependsOn: "r.parent" },
        ]);
        return true;
      },
    );
    assert.deepEqual(await rows("select count(*)::int as n from pgshift.import_runs"), runsBefore);
    assert.deepEqual(await relations("r"), ["child", "parent", "pv", "user_table", "user_view"]);

    const cli = await runCli(
      ["import", shop, "--to", db().url, "--schema", "r", "--tables", "parent", "--if-exists", "replace"],
      {
        cwd: dir,
      },
    );
    assert.equal(cli.code, 2, cli.stdout + cli.stderr);
    assert.match(cli.stderr + cli.stdout, /user_view/);
    assert.match(cli.stderr + cli.stdout, /user_table_parent_id_fkey/);
    assert.match(cli.stderr + cli.stdout, /--cascade/);
  });

  it("--cascade drops and lists the user's objects, recreates pgshift's view and foreign key", async () => {
    const result = await importSqlite({
      path: shop,
      pool: db().pool,
      schema: "r",
      tables: ["parent"],
      ifExists: "replace",
      cascade: true,
    });
    assert.equal(result.ok, true, JSON.stringify(result.error ?? result.warnings));
    assert.deepEqual(result.dropped, [
      "view r.user_view (depended on r.parent)",
      "foreign-key r.user_table constraint user_table_parent_id_fkey (depended on r.parent)",
      "index user_index on r.parent (depended on r.parent)",
    ]);
    assert.deepEqual(result.warnings, []);
    assert.deepEqual(await relations("r"), ["child", "parent", "pv", "user_table"]);
    assert.deepEqual(await foreignKeys("r"), ["child.child_parent_id_fkey -> parent"]);
    assert.deepEqual(await rows("select name, v from r.pv order by v"), [
      { name: "p2", v: "c1" },
      { name: "p3", v: "c2" },
      { name: "p4", v: "c3" },
      { name: "p1", v: "c4" },
      { name: "p2", v: "c5" },
      { name: "p3", v: "c6" },
    ]);
    // The user's table itself stays, with its rows; only the constraint went.
    assert.deepEqual(await rows("select * from r.user_table"), [{ id: 1, parent_id: "2" }]);
  });

  it("a foreign key to a table outside --tables that is already in the target is created", async () => {
    const result = await importSqlite({
      path: shop,
      pool: db().pool,
      schema: "r",
      tables: ["child"],
      ifExists: "replace",
    });
    assert.equal(result.ok, true, JSON.stringify(result.error ?? result.warnings));
    assert.deepEqual(await foreignKeys("r"), ["child.child_parent_id_fkey -> parent"]);
    assert.ok(
      result.notes.some((n) =>
        /parent is not imported by this run but is already in schema r/.test(n.message),
      ),
    );
    assert.ok(!result.notes.some((n) => /constraint not created/.test(n.message)));
  });

  it("verify covers every table imported from the source into the schema, not only the last run", async () => {
    const all = await verifySqlite({ sourcePath: shop, pool: db().pool, schema: "r" });
    assert.equal(all.status, "identical");
    assert.deepEqual(all.tables.map((t) => [t.table, t.status, t.sourceRows]).sort(), [
      ["child", "identical", 6],
      ["parent", "identical", 4],
    ]);
    const cli = await runCli(["verify", shop, "--to", db().url, "--schema", "r", "--tables", "parent"], {
      cwd: dir,
    });
    assert.equal(cli.code, 0, cli.stdout + cli.stderr);
    assert.match(cli.stdout, /parent/);
    assert.doesNotMatch(cli.stdout, /child/);
  });
});

describe("--if-exists append into tables that already had rows", () => {
  let first: string;
  let second: string;
  let bad: string;
  let appendRun: string;
  const KEYED = "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); CREATE TABLE n (at TEXT, msg TEXT);";

  before(async () => {
    first = makeSqlite(join(dir, "first.db"), KEYED, (d) => {
      for (let i = 1; i <= 3; i++) d.prepare("insert into t values (?, ?)").run(i, `first ${i}`);
      for (let i = 1; i <= 2; i++) d.prepare("insert into n values (?, ?)").run(`t${i}`, "same");
    });
    second = makeSqlite(join(dir, "second.db"), KEYED, (d) => {
      for (let i = 4; i <= 6; i++) d.prepare("insert into t values (?, ?)").run(i, `second ${i}`);
      for (let i = 1; i <= 2; i++) d.prepare("insert into n values (?, ?)").run(`t${i}`, "same");
    });
    bad = makeSqlite(join(dir, "bad.db"), KEYED, (d) => {
      d.prepare("insert into t values (?, ?)").run(7, "ok");
      d.prepare("insert into t values (?, ?)").run(8, "nul \u0000 inside");
    });
    const result = await importSqlite({ path: first, pool: db().pool, schema: "a" });
    assert.equal(result.ok, true, JSON.stringify(result.error));
  });

  it("verifies the rows the run appended (exit 0), leaving the rows there before out", async () => {
    const result = await importSqlite({ path: second, pool: db().pool, schema: "a", ifExists: "append" });
    assert.equal(result.ok, true, JSON.stringify(result.error ?? result.verification));
    appendRun = result.runId!;
    const verification = result.verification as unknown as {
      identical: boolean;
      tables: { table: string; sourceRows: number; targetRows: number }[];
    };
    assert.equal(verification.identical, true);
    assert.deepEqual(verification.tables.map((t) => [t.table, t.sourceRows, t.targetRows]).sort(), [
      ["n", 2, 2],
      ["t", 3, 3],
    ]);
    assert.deepEqual(await rows("select count(*)::int as n from a.t"), [{ n: 6 }]);
    assert.deepEqual(await rows("select count(*)::int as n from a.n"), [{ n: 4 }]);
    const cli = await runCli(["verify", second, "--to", db().url, "--schema", "a"], { cwd: dir });
    assert.equal(cli.code, 0, cli.stdout + cli.stderr);
    assert.match(cli.stdout, /identical: 2 table\(s\), 5 rows/);
    // The first source's rows are still its own: verifying it leaves the appended rows out too.
    const before = await runCli(["verify", first, "--to", db().url, "--schema", "a"], { cwd: dir });
    assert.equal(before.code, 0, before.stdout + before.stderr);
    assert.match(before.stdout, /identical: 2 table\(s\), 5 rows/);
  });

  it("a failed append's hints repeat --to, --schema and --tables and never drop the rows there before", async () => {
    const cli = await runCli(
      ["import", bad, "--to", db().url, "--schema", "a", "--tables", "t", "--if-exists", "append"],
      { cwd: dir },
    );
    assert.equal(cli.code, 1, cli.stdout + cli.stderr);
    const hints = cli.stdout.split("\n").filter((l) => /^\s+(resume|undo|start over|see the)/.test(l));
    assert.equal(hints.length, 2, cli.stdout);
    const runId = /--resume (\S+)/.exec(hints[0]!)?.[1];
    assert.ok(runId, hints[0]);
    assert.equal(
      hints[0]!.trim(),
      `resume: pgshift import ${bad} --to ${shellWord(redactUrl(db().url))} --schema a --tables t --resume ${runId}   (committed chunks are kept, the rest is redone)`,
    );
    assert.match(
      hints[1]!,
      /^\s+undo this run's rows \(the rows there before are kept\): pgshift import --undo \S+ --to \S+ {3}\(in SQL: delete from "a"\."t" where xmin/,
    );
    assert.doesNotMatch(cli.stdout, /--if-exists replace|drop table/);
    // The hint's delete removes exactly what the run added: nothing, since the failing chunk rolled back.
    await db().pool.query(hints[1]!.replace(/^.*?\(in SQL: /, "").replace(/\)$/, ""));
    assert.deepEqual(await rows("select count(*)::int as n from a.t"), [{ n: 6 }]);
    // The source changed since: resuming is refused, with the same undo (never a replace).
    makeSqlite(bad, "CREATE TABLE later (x INTEGER)");
    await assert.rejects(
      importSqlite({ path: bad, pool: db().pool, schema: "a", resume: true }),
      (error: Error & { code?: string }) => {
        assert.equal(error.code, "source_changed");
        assert.match(
          error.message,
          new RegExp(`Remove the rows run ${runId} appended \\(delete from "a"\\."t" where xmin`),
        );
        assert.doesNotMatch(error.message, /--if-exists replace/);
        return true;
      },
    );
  });

  it("after a verification mismatch the hints offer verify, not --resume, and keep the rows there before", async () => {
    const hints = await nextSteps(db().pool, {
      spec: "sqlite:second.db",
      schema: "a",
      to: "postgres://u@h/db",
      tables: ["t", "n"],
      runId: appendRun,
      plan: (await rows("select plan from pgshift.import_runs where run_id = $1", [appendRun]))[0]!
        .plan as ImportPlan,
      ifExists: "append",
      code: "verify_mismatch",
    });
    assert.equal(hints.length, 3);
    assert.match(hints[2]!, /undo this run, then load with pgshift import sqlite:second\.db .* --data-only /);
    assert.match(
      hints[0]!,
      /^see the differences: pgshift verify sqlite:second\.db --to postgres:\/\/u@h\/db --schema a --tables t,n /,
    );
    assert.doesNotMatch(hints.join("\n"), /--resume|--if-exists replace|drop /);
    assert.match(hints[1]!, /delete from "a"\."t" where .* delete from "a"\."n" where /);
  });
});

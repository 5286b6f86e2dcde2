import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { importSqlite } from "../../../src/load/import-sqlite.ts";
import { importSqliteDataOnly } from "../../../src/load/data-only/import-data-only.ts";
import { undoImport } from "../../../src/load/data-only/undo-run.ts";
import { verifyImport } from "../../../src/verify/verify-import.ts";
import { runCli } from "../../helpers/cli.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import {
  ALEMBIC_PG,
  ALEMBIC_SQLITE,
  DJANGO_PG,
  DJANGO_SQLITE,
  fillAlembic,
  fillDjango,
  fillPrisma,
  PRISMA_PG,
  PRISMA_SQLITE,
} from "./orm-fixtures.ts";
import { fixtureDir, makeSqlite } from "./sqlite-fixtures.ts";

const db = useTestDatabase("dataonly");
const dir = fixtureDir();

async function rows(sql: string, params: unknown[] = []): Promise<Record<string, unknown>[]> {
  return (await db().pool.query(sql, params)).rows;
}

async function createSchema(schema: string, ddl: string): Promise<void> {
  await db().pool.query(`create schema ${schema}; begin; set local search_path = ${schema}; ${ddl}; commit;`);
}

async function columnsOf(schema: string, table: string): Promise<string[]> {
  return (
    await rows(
      `select column_name || ' ' || data_type as c from information_schema.columns
        where table_schema = $1 and table_name = $2 order by ordinal_position`,
      [schema, table],
    )
  ).map((r) => String(r.c));
}

describe("data-only import into a Prisma schema", () => {
  let path: string;
  before(async () => {
    path = makeSqlite(join(dir, "prisma.db"), PRISMA_SQLITE, (d) => fillPrisma(d));
    await createSchema("prisma", PRISMA_PG);
  });

  it("checks, imports converting to the target's types, verifies identical, and undoes", async () => {
    const shapeBefore = await columnsOf("prisma", "Post");
    const checked = await importSqliteDataOnly({ path, pool: db().pool, schema: "prisma", dryRun: true });
    assert.equal(checked.ok, true, JSON.stringify(checked.problems));
    assert.deepEqual(
      checked.problems.filter((p) => p.severity === "error"),
      [],
    );
    assert.deepEqual(checked.order, ["User", "Post"]);
    assert.deepEqual(
      checked.mapping.tables.map((t) => [t.source, t.target, t.how]),
      [
        ["User", "User", "exact"],
        ["Post", "Post", "exact"],
      ],
    );
    // the bookkeeping table is neither loaded nor reported
    assert.ok(!JSON.stringify(checked.problems).includes("_prisma_migrations"));
    assert.equal((await rows('select count(*)::int as n from prisma."User"'))[0]!.n, 0);

    const result = await importSqliteDataOnly({ path, pool: db().pool, schema: "prisma" });
    assert.equal(result.error, undefined);
    assert.equal(result.ok, true);
    assert.deepEqual(
      result.tables.map((t) => [t.target, t.rowsLoaded]),
      [
        ["User", 30],
        ["Post", 80],
      ],
    );
    assert.equal((result.verification as { identical: boolean }).identical, true);
    const [user] = await rows(
      `select "isAdmin", to_char("createdAt", 'YYYY-MM-DD HH24:MI:SS.MS') as created, profile->'tags' as tags
         from prisma."User" where id = 7`,
    );
    assert.deepEqual(user, { isAdmin: true, created: "2024-01-01 07:00:00.123", tags: [7, "x"] });
    const [post] = await rows(
      `select price::text, cover, status::text, published from prisma."Post" where id = 9`,
    );
    assert.deepEqual(post, {
      price: "11.25",
      cover: Buffer.from([9, 0, 255]),
      status: "DRAFT",
      published: true,
    });
    // serial sequences past the maximum: the application's next insert does not collide
    const [next] = await rows(`select nextval(pg_get_serial_sequence('prisma."User"', 'id'))::int as v`);
    assert.equal(next!.v, 31);
    assert.equal((await rows("select count(*)::int as n from prisma._prisma_migrations"))[0]!.n, 1);

    const undone = await undoImport({ pool: db().pool, runId: result.runId! });
    // both were empty before: one TRUNCATE of the two (User alone would be refused, Post references it)
    assert.deepEqual(
      undone.tables.map((t) => [t.table, t.how, t.rowsRemoved]),
      [
        ["Post", "truncate", 80],
        ["User", "truncate", 30],
      ],
    );
    assert.equal(undone.sequencesRestored, 2);
    assert.equal((await rows('select count(*)::int as n from prisma."User"'))[0]!.n, 0);
    assert.equal((await rows('select count(*)::int as n from prisma."Post"'))[0]!.n, 0);
    assert.deepEqual(await columnsOf("prisma", "Post"), shapeBefore);
    assert.equal((await rows("select count(*)::int as n from prisma._prisma_migrations"))[0]!.n, 1);
    const [seq] = await rows(`select nextval(pg_get_serial_sequence('prisma."User"', 'id'))::int as v`);
    assert.equal(seq!.v, 1);
    await assert.rejects(undoImport({ pool: db().pool, runId: result.runId! }), /already undone/);
  });

  it("undo keeps the rows a table held before the run", async () => {
    await rows(`insert into prisma."User" (id, email) values (500, 'keep@example.com')`);
    const result = await importSqliteDataOnly({ path, pool: db().pool, schema: "prisma" });
    assert.equal(result.ok, true, JSON.stringify(result.error ?? result.verification));
    assert.equal((await rows('select count(*)::int as n from prisma."User"'))[0]!.n, 31);
    const undone = await undoImport({ pool: db().pool, runId: result.runId! });
    assert.deepEqual(
      undone.tables.map((t) => [t.table, t.how, t.rowsRemoved]),
      [
        ["Post", "truncate", 80],
        ["User", "delete", 30],
      ],
    );
    assert.deepEqual(await rows('select id, email from prisma."User"'), [
      { id: 500, email: "keep@example.com" },
    ]);
    await rows('delete from prisma."User"');
  });

  it("verification names a real difference by key and column, in the target's types", async () => {
    const result = await importSqliteDataOnly({ path, pool: db().pool, schema: "prisma" });
    assert.equal(result.ok, true);
    await rows(`update prisma."Post" set "updatedAt" = "updatedAt" + interval '1 millisecond' where id = 42`);
    const again = await verifyImport({
      plan: result.plan,
      sourcePath: path,
      pool: db().pool,
      runId: result.runId!,
    });
    assert.equal(again.identical, false);
    const post = again.tables.find((t) => t.table === "Post")!;
    assert.equal(post.status, "mismatch");
    assert.equal(post.changedRows, 1);
    assert.equal(post.changed.length, 1);
    assert.match(JSON.stringify(post.changed[0]!.key), /42/);
    assert.deepEqual(
      post.changed[0]!.columns.map((c) => c.column),
      ["updatedAt"],
    );
    await undoImport({ pool: db().pool, runId: result.runId! });
  });
});

describe("data-only import into a Django schema", () => {
  let path: string;
  before(async () => {
    path = makeSqlite(join(dir, "django.db"), DJANGO_SQLITE, fillDjango);
    await createSchema("django", DJANGO_PG);
  });

  it("loads a foreign-key cycle with deferred constraints, verifies, undoes", async () => {
    const result = await importSqliteDataOnly({ path, pool: db().pool, schema: "django" });
    assert.equal(result.error, undefined);
    assert.deepEqual(result.cycles, [["blog_author", "blog_entry"]]);
    assert.equal((result.verification as { identical: boolean }).identical, true);
    const [entry] = await rows(
      `select is_live, rating::text, to_char(pub_date at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') as d from django.blog_entry where id = 4`,
    );
    assert.deepEqual(entry, { is_live: false, rating: "4.5", d: "2024-02-05 10:04:05.123456" });
    const [next] = await rows(`select nextval(pg_get_serial_sequence('django.blog_entry', 'id'))::int as v`);
    assert.equal(next!.v, 21);
    assert.equal((await rows("select count(*)::int as n from django.django_migrations"))[0]!.n, 1);
    const undone = await undoImport({ pool: db().pool, runId: result.runId! });
    assert.equal(
      undone.tables.reduce((n, t) => n + t.rowsRemoved, 0),
      25,
    );
    assert.equal((await rows("select count(*)::int as n from django.blog_entry"))[0]!.n, 0);
    assert.equal((await rows("select count(*)::int as n from django.blog_author"))[0]!.n, 0);
    const [seq] = await rows(`select nextval(pg_get_serial_sequence('django.blog_entry', 'id'))::int as v`);
    assert.equal(seq!.v, 1);
  });
});

describe("data-only import into an Alembic schema", () => {
  let path: string;
  before(async () => {
    path = makeSqlite(join(dir, "alembic.db"), ALEMBIC_SQLITE, fillAlembic);
    await createSchema("alembic", ALEMBIC_PG);
  });

  it("reports the unmapped column, then maps by snake_case and the map file", async () => {
    const checked = await importSqliteDataOnly({ path, pool: db().pool, schema: "alembic", dryRun: true });
    assert.equal(checked.ok, false);
    assert.deepEqual(
      checked.problems.filter((p) => p.severity === "error").map((p) => [p.kind, p.table, p.column]),
      [
        ["missing-column", "address", "email"],
        ["not-null", "address", "email_address"],
      ],
    );
    await assert.rejects(
      importSqliteDataOnly({ path, pool: db().pool, schema: "alembic" }),
      (e: Error & { code?: string }) =>
        e.code === "data_only_incompatible" && /address\.email/.test(e.message),
    );
    assert.equal((await rows("select count(*)::int as n from alembic.user_account"))[0]!.n, 0);

    const map = { "address.email": "email_address" };
    const result = await importSqliteDataOnly({ path, pool: db().pool, schema: "alembic", map });
    assert.equal(result.error, undefined);
    assert.deepEqual(
      result.mapping.tables.map((t) => [t.source, t.target, t.how]),
      [
        ["UserAccount", "user_account", "snake_case"],
        ["address", "address", "exact"],
      ],
    );
    assert.equal((result.verification as { identical: boolean }).identical, true);
    assert.equal(
      (await rows("select user_name from alembic.user_account where id = 3"))[0]!.user_name,
      "user3",
    );
    assert.deepEqual(await rows("select version_num from alembic.alembic_version"), [
      { version_num: "4f2e0a1b9c3d" },
    ]);
    await undoImport({ pool: db().pool, runId: result.runId! });
    assert.equal((await rows("select count(*)::int as n from alembic.address"))[0]!.n, 0);
  });
});

describe("compatibility check", () => {
  it("lists values the target's types cannot hold, with example keys, before writing anything", async () => {
    const path = makeSqlite(
      join(dir, "bad.db"),
      `CREATE TABLE item (id INTEGER PRIMARY KEY, code TEXT, price REAL, kind TEXT, at TEXT, note TEXT, ref TEXT);`,
      (d) => {
        d.prepare(
          "insert into item values (1, 'ok', 1.5, 'a', '2024-01-01 00:00:00', 'x', '6f1c2a3b-0000-4000-8000-00000000000a')",
        ).run();
        d.prepare(
          "insert into item values (2, 'much too long', 1.255, 'zzz', '2024-01-01T00:00:00Z', null, 'not-a-uuid')",
        ).run();
        d.prepare(
          "insert into item values (3, 'fine', 123456.5, 'b', '2024-01-01 00:00:00.1234', 'y', null)",
        ).run();
      },
    );
    await createSchema(
      "bad",
      `CREATE TYPE kind AS ENUM ('a', 'b');
       CREATE TABLE item (id serial primary key, code varchar(5), price numeric(6,2), kind kind, at timestamp(3), note text not null, ref uuid);`,
    );
    const checked = await importSqliteDataOnly({ path, pool: db().pool, schema: "bad", dryRun: true });
    const shown = checked.problems
      .filter((p) => p.severity === "error")
      .map((p) => [p.kind, p.column, p.examples?.join(" ")])
      .sort((a, b) => String(a).localeCompare(String(b)));
    assert.deepEqual(shown, [
      ["bad-value", "ref", "(2)"],
      ["enum-label", "kind", "(2)"],
      ["not-null", "note", "(2)"],
      ["out-of-range", "price", "(3)"],
      ["too-long", "code", "(2)"],
      ["would-round", "at", "(3)"],
      ["would-round", "price", "(2)"],
      ["zoned-timestamp", "at", "(2)"],
    ]);
  });
});

describe("pgshift import --data-only (CLI)", () => {
  it("dry-run prints the mapping and the check, the import verifies, --undo empties the tables", async () => {
    const path = makeSqlite(join(dir, "cli-alembic.db"), ALEMBIC_SQLITE, fillAlembic);
    await createSchema("cli", ALEMBIC_PG);
    const base = ["--to", db().url, "--schema", "cli"];
    const refused = await runCli(["import", path, "--data-only", "--dry-run", ...base], { cwd: dir });
    assert.equal(refused.code, 2, refused.stdout + refused.stderr);
    assert.match(refused.stdout, /UserAccount\s+\S*\s*user_account\s+\S*\s*snake_case/);
    assert.match(refused.stdout, /error missing-column: source column address\.email has no column/);
    const mapFile = join(dir, "map.json");
    writeFileSync(mapFile, JSON.stringify({ "address.email": "email_address" }));
    const loaded = await runCli(["import", path, "--data-only", "--map", mapFile, ...base], { cwd: dir });
    assert.equal(loaded.code, 0, loaded.stdout + loaded.stderr);
    assert.match(loaded.stdout, /verification: identical/);
    const runId = /undo with: pgshift import --undo (\S+)/.exec(loaded.stdout)?.[1];
    assert.ok(runId, loaded.stdout);
    assert.equal((await rows("select count(*)::int as n from cli.address"))[0]!.n, 25);
    const undone = await runCli(["import", "--undo", runId, "--to", db().url], { cwd: dir });
    assert.equal(undone.code, 0, undone.stdout + undone.stderr);
    assert.match(undone.stdout, /37 rows removed, 2 sequence\(s\) restored; no table was dropped/);
    assert.equal((await rows("select count(*)::int as n from cli.address"))[0]!.n, 0);
    assert.equal((await rows("select count(*)::int as n from cli.alembic_version"))[0]!.n, 1);
  });
});

describe("a data-only load that fails half-way", () => {
  it("reports the failure with the --undo hint, and the undo removes the tables loaded before it", async () => {
    const path = makeSqlite(
      join(dir, "half.db"),
      `CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT);
       CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent(id), code TEXT);`,
      (d) => {
        for (let i = 1; i <= 5; i++) d.prepare("insert into parent values (?, ?)").run(i, `p${i}`);
        for (let i = 1; i <= 6; i++)
          d.prepare("insert into child values (?, ?, ?)").run(i, 1 + (i % 5), i === 6 ? "c1" : `c${i}`);
      },
    );
    await createSchema(
      "half",
      `CREATE TABLE parent (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text);
       CREATE TABLE child (id serial PRIMARY KEY, parent_id int REFERENCES parent(id), code text UNIQUE);`,
    );
    const result = await importSqliteDataOnly({ path, pool: db().pool, schema: "half" });
    assert.equal(result.ok, false);
    assert.match(result.error?.message ?? "", /unique|duplicate/i);
    assert.match(result.nextSteps.join("\n"), new RegExp(`pgshift import --undo ${result.runId}`));
    // the identity column took the source's ids (COPY writes GENERATED ALWAYS columns)
    assert.deepEqual(
      (await rows("select id from half.parent order by id")).map((r) => r.id),
      [1, 2, 3, 4, 5],
    );
    assert.equal((await rows("select count(*)::int as n from half.child"))[0]!.n, 0);
    const undone = await undoImport({ pool: db().pool, runId: result.runId! });
    assert.equal(undone.tables.find((t) => t.table === "parent")!.rowsRemoved, 5);
    assert.equal((await rows("select count(*)::int as n from half.parent"))[0]!.n, 0);
    const [next] = await rows("insert into half.parent (name) values ('new') returning id");
    assert.equal(next!.id, 1);
  });
});

describe("--undo of an --if-exists append run", () => {
  it("removes the appended rows by xid and keeps the rows there before", async () => {
    const path = makeSqlite(
      join(dir, "append.db"),
      `CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);`,
      (d) => {
        for (let i = 10; i < 14; i++) d.prepare("insert into t values (?, ?)").run(i, `new${i}`);
      },
    );
    await createSchema(
      "app",
      `CREATE TABLE t (id bigint PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'old');`,
    );
    const result = await importSqlite({ path, pool: db().pool, schema: "app", ifExists: "append" });
    assert.equal(result.ok, true, JSON.stringify(result.error));
    assert.equal((await rows("select count(*)::int as n from app.t"))[0]!.n, 5);
    const undone = await undoImport({ pool: db().pool, runId: result.runId! });
    assert.deepEqual(
      undone.tables.map((t) => [t.table, t.how, t.rowsRemoved]),
      [["t", "delete", 4]],
    );
    assert.deepEqual(await rows("select id::int, v from app.t"), [{ id: 1, v: "old" }]);
  });
});

describe("rows the target holds already", () => {
  it("a source key already in the target is a check error, before anything is written", async () => {
    const path = makeSqlite(
      join(dir, "conflict.db"),
      `CREATE TABLE django_content_type (id INTEGER PRIMARY KEY, app_label TEXT, model TEXT);`,
      (d) => {
        for (let i = 1; i <= 4; i++)
          d.prepare("insert into django_content_type values (?, 'blog', ?)").run(i, `m${i}`);
      },
    );
    await createSchema(
      "conflict",
      `CREATE TABLE django_content_type (id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, app_label varchar(100) NOT NULL, model varchar(100) NOT NULL);
       INSERT INTO django_content_type (app_label, model) VALUES ('auth', 'user'), ('auth', 'group');`,
    );
    const checked = await importSqliteDataOnly({ path, pool: db().pool, schema: "conflict", dryRun: true });
    const conflict = checked.problems.find((p) => p.kind === "key-conflict");
    assert.equal(conflict?.rows, 2);
    assert.deepEqual(conflict?.examples, ["(1)", "(2)"]);
    await assert.rejects(
      importSqliteDataOnly({ path, pool: db().pool, schema: "conflict" }),
      /already holds rows/,
    );
    assert.equal((await rows("select count(*)::int as n from conflict.django_content_type"))[0]!.n, 2);
  });
});

describe("foreign keys that are not deferrable", () => {
  it("a table referencing itself loads in one statement across chunks; a two-table cycle is reported", async () => {
    const path = makeSqlite(
      join(dir, "tree.db"),
      `CREATE TABLE "Comment" (id INTEGER PRIMARY KEY, "parentId" INTEGER REFERENCES "Comment"(id), body TEXT);
       CREATE TABLE a (id INTEGER PRIMARY KEY, b_id INTEGER);
       CREATE TABLE b (id INTEGER PRIMARY KEY, a_id INTEGER);`,
      (d) => {
        // each comment's parent comes later in rowid order, and in a later chunk
        for (let i = 1; i <= 7; i++)
          d.prepare('insert into "Comment" values (?, ?, ?)').run(i, i < 7 ? i + 1 : null, `c${i}`);
      },
    );
    await createSchema(
      "tree",
      `CREATE TABLE "Comment" ("id" SERIAL NOT NULL, "parentId" INTEGER, "body" TEXT, CONSTRAINT "Comment_pkey" PRIMARY KEY ("id"));
       ALTER TABLE "Comment" ADD CONSTRAINT "Comment_parentId_fkey" FOREIGN KEY ("parentId") REFERENCES "Comment"("id") ON DELETE SET NULL ON UPDATE CASCADE;
       CREATE TABLE a (id int PRIMARY KEY, b_id int);
       CREATE TABLE b (id int PRIMARY KEY, a_id int REFERENCES a);
       ALTER TABLE a ADD FOREIGN KEY (b_id) REFERENCES b;`,
    );
    const checked = await importSqliteDataOnly({ path, pool: db().pool, schema: "tree", dryRun: true });
    assert.deepEqual(
      checked.problems.filter((p) => p.severity === "error").map((p) => [p.kind, p.table]),
      [["fk-cycle", "a, b"]],
    );
    const result = await importSqliteDataOnly({
      path,
      pool: db().pool,
      schema: "tree",
      tables: ["Comment"],
      chunkRows: 2,
    });
    assert.equal(result.error, undefined);
    assert.equal(result.ok, true);
    assert.equal(result.plan.tables[0]!.chunks.length > 1, true);
    assert.equal((await rows('select count(*)::int as n from tree."Comment"'))[0]!.n, 7);
  });
});

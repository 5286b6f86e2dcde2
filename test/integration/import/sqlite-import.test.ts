import assert from "node:assert/strict";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { importSqlite } from "../../../src/load/import-sqlite.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import { fillKitchenSink, fixtureDir, KITCHEN_SINK, makeSqlite } from "./sqlite-fixtures.ts";

const db = useTestDatabase("sqlite");
const dir = fixtureDir();
let sink: string;

before(() => {
  sink = makeSqlite(join(dir, "sink.db"), KITCHEN_SINK, fillKitchenSink);
});

async function rows(sql: string, params: unknown[] = []): Promise<Record<string, unknown>[]> {
  return (await db().pool.query(sql, params)).rows;
}

describe("importSqlite: the kitchen sink", () => {
  it("loads every table completely, with counts checked", async () => {
    const result = await importSqlite({
      path: sink,
      pool: db().pool,
      schema: "sink",
      verify: false,
      jobs: 3,
      threads: true,
    });
    assert.equal(result.ok, true, JSON.stringify(result.error ?? result.warnings));
    assert.deepEqual(
      result.tables.map((t) => [t.source, t.status, t.rowsRead, t.rowsLoaded, t.rowsQuarantined]),
      [
        ["Mixed Case", "complete", 2, 2, 0],
        ["dyn", "complete", 3, 3, 0],
        ["parent", "complete", 2, 2, 0],
        ["child", "complete", 3, 3, 0],
        ["uq", "complete", 2, 2, 0],
      ],
    );
    // parent.name is COLLATE NOCASE: LIKE on it needs PostgreSQL 18 (issue 12).
    const version = Number(
      (await db().pool.query("select current_setting('server_version_num') as v")).rows[0].v,
    );
    assert.deepEqual(
      result.warnings.map((w) => w.split(":")[0]),
      version < 180000 ? ["parent.name"] : [],
    );
  });

  it("chooses types from declared types and stored values", async () => {
    const types = await rows(
      `select column_name, case when data_type = 'character varying' then 'varchar(' || character_maximum_length || ')' else data_type end as type
         from information_schema.columns where table_schema = 'sink' and table_name = 'dyn' order by ordinal_position`,
    );
    assert.deepEqual(Object.fromEntries(types.map((r) => [r.column_name, r.type])), {
      id: "bigint",
      big: "bigint",
      small: "integer",
      r: "double precision",
      mixed: "text",
      txt: "text",
      numtxt: "text",
      flag: "boolean",
      notflag: "integer",
      ms: "timestamp with time zone",
      secs: "timestamp with time zone",
      iso: "timestamp without time zone",
      isoz: "timestamp with time zone",
      d: "date",
      doc: "jsonb",
      notjson: "text",
      b: "bytea",
      vc: "varchar(10)",
      vcover: "text",
      price: "numeric",
    });
  });

  it("keeps every value, checked one by one", async () => {
    await db().pool.query("set timezone = 'UTC'");
    const got = await rows(
      `set timezone = 'UTC'; select id, big::text, small, r::text, mixed, txt, numtxt, flag, notflag, ms::text, secs::text, iso::text, isoz::text,
              d::text, doc::text, notjson, encode(b, 'hex') as b, vc, vcover, price::text
         from sink.dyn order by id`.replace("set timezone = 'UTC'; ", ""),
    );
    const client = await db().pool.connect();
    try {
      await client.query("set timezone = 'UTC'");
      const { rows: exact } = await client.query(
        "select id, ms::text, secs::text, isoz::text from sink.dyn order by id",
      );
      assert.deepEqual(
        exact.map((r) => [r.ms, r.secs, r.isoz]),
        [
          ["2023-11-14 22:13:20.123+00", "2023-11-14 22:13:20+00", "2024-01-02 03:04:05+00"],
          ["1970-01-01 00:00:00+00", "1970-01-01 00:00:00+00", "2024-06-01 08:00:00+00"],
          [null, null, "2024-06-01 10:00:00+00"],
        ],
      );
    } finally {
      client.release();
    }
    assert.deepEqual(
      got.map((r) => ({
        ...r,
        ms: undefined,
        secs: undefined,
        isoz: undefined,
      })),
      [
        {
          id: "1",
          big: "9007199254740993",
          small: 1,
          r: "0.1",
          mixed: "1",
          txt: "1.50",
          numtxt: "5",
          flag: true,
          notflag: 2,
          ms: undefined,
          secs: undefined,
          iso: "2024-01-02 03:04:05",
          isoz: undefined,
          d: "2024-02-29",
          doc: '{"a": [1, 2], "b": {"c": null}}',
          notjson: "{oops",
          b: "0001feff",
          vc: "abc",
          vcover: "abcdef",
          price: "12.34",
        },
        {
          id: "2",
          big: "-9223372036854775808",
          small: -7,
          r: "-2.5e+300",
          mixed: "text",
          txt: "line1\nline2\ttab\\back",
          numtxt: "abc",
          flag: false,
          notflag: 0,
          ms: undefined,
          secs: undefined,
          iso: "2024-12-31 23:59:59.999",
          isoz: undefined,
          d: "1999-01-01",
          doc: "[]",
          notjson: "plain",
          b: "",
          vc: "0123456789",
          vcover: "x",
          price: "5.00", // DECIMAL(10,2) kept: numeric(10,2)
        },
        {
          id: "3",
          big: "9223372036854775807",
          small: 0,
          r: null,
          mixed: "2.5",
          txt: "",
          numtxt: null,
          flag: true,
          notflag: 1,
          ms: undefined,
          secs: undefined,
          iso: null,
          isoz: undefined,
          d: null,
          doc: null,
          notjson: null,
          b: null,
          vc: null,
          vcover: null,
          price: null,
        },
      ],
    );
    const mixed = await rows(
      'select id, "select", "Weird Name", "camelCase" from sink."Mixed Case" order by id',
    );
    assert.deepEqual(mixed, [
      { id: "1", select: "from", "Weird Name": "x y", camelCase: 1 },
      { id: "3", select: "where", "Weird Name": "z", camelCase: 3 },
    ]);
  });

  it("creates keys, FKs with actions, CHECKs, partial and expression indexes, once each", async () => {
    const constraints = await rows(
      `select c.relname as table, k.conname as name, k.contype as type, k.convalidated as valid,
              k.confupdtype as on_update, k.confdeltype as on_delete, pg_get_constraintdef(k.oid) as def
         from pg_constraint k join pg_class c on c.oid = k.conrelid join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'sink' and k.contype <> 'n' order by 1, 2`,
    );
    assert.deepEqual(
      constraints.map((c) => [c.table, c.type, c.valid, c.def]),
      [
        ["Mixed Case", "p", true, "PRIMARY KEY (id)"],
        ["child", "c", true, "CHECK ((qty >= 0))"],
        [
          "child",
          "f",
          true,
          "FOREIGN KEY (pa, pb) REFERENCES sink.parent(a, b) ON UPDATE SET NULL ON DELETE CASCADE",
        ],
        ["child", "p", true, "PRIMARY KEY (id)"],
        ["dyn", "p", true, "PRIMARY KEY (id)"],
        ["parent", "p", true, "PRIMARY KEY (a, b)"],
        ["uq", "u", true, "UNIQUE (x)"],
      ],
    );
    const indexes = await rows(
      "select tablename, indexdef from pg_indexes where schemaname = 'sink' order by tablename, indexname",
    );
    const defs = indexes.map((i) => i.indexdef as string);
    assert.ok(
      defs.includes(
        "CREATE UNIQUE INDEX child_active ON sink.child USING btree (pa) WHERE (status = 'active'::text)",
      ),
      defs.join("\n"),
    );
    assert.ok(
      defs.includes("CREATE INDEX child_lower ON sink.child USING btree (lower(status))"),
      defs.join("\n"),
    );
    assert.equal(
      indexes.filter((i) => i.tablename === "uq").length,
      1,
      "the UNIQUE constraint and the equal index are one",
    );
    assert.ok(defs.some((d) => d.startsWith("CREATE UNIQUE INDEX parent_name ON sink.parent")));
  });

  it("keeps NOCASE semantics, identity sequences, defaults and views", async () => {
    assert.deepEqual(await rows("select a from sink.parent where name = 'ALPHA'"), [{ a: 1 }]);
    await assert.rejects(
      db().pool.query("insert into sink.parent (a, b, name) values (3, 'z', 'BETA')"),
      /parent_name/,
    );
    const [next] = await rows(`select nextval(pg_get_serial_sequence('sink."Mixed Case"', 'id')) as id`);
    assert.equal(next!.id, "4", "AUTOINCREMENT high-water mark kept (id 2 was deleted, 3 is the max)");
    const [inserted] = await rows(
      "insert into sink.child (pa, pb, qty) values (1, 'x', 1) returning id, status, created",
    );
    assert.equal(inserted!.id, "4");
    assert.equal(inserted!.status, "new");
    assert.match(String(inserted!.created), /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
    assert.deepEqual(await rows("select id, name from sink.child_names order by id"), [
      { id: "1", name: "Alpha" },
      { id: "2", name: "beta" },
      { id: "4", name: "Alpha" },
    ]);
    assert.deepEqual(
      await rows("select 1 from pg_views where schemaname = 'sink' and viewname = 'glob_view'"),
      [],
    );
  });

  it("fails when the tables exist, replaces them on request", async () => {
    await assert.rejects(
      importSqlite({
        path: sink,
        pool: db().pool,
        schema: "sink",
        verify: false,
      }),
      (error: Error & { code?: string }) =>
        error.code === "target_exists" && /--if-exists replace/.test(error.message),
    );
    const result = await importSqlite({
      path: sink,
      pool: db().pool,
      schema: "sink",
      verify: false,
      ifExists: "replace",
    });
    assert.equal(result.ok, true);
    assert.deepEqual(await rows("select count(*)::int as n from sink.child"), [{ n: 3 }]);
    const notes = result.notes.map((n) => `${n.object}: ${n.message}`);
    assert.ok(
      notes.some((n) => n.startsWith("glob_view: view not created: GLOB")),
      notes.join("\n"),
    );
    assert.ok(
      notes.some((n) => n.startsWith("uq_x_again: duplicate")),
      notes.join("\n"),
    );
  });
});

describe("importSqlite: options", () => {
  it("--dry-run plans and changes nothing", async () => {
    const result = await importSqlite({
      path: sink,
      pool: db().pool,
      schema: "dry",
      verify: false,
      dryRun: true,
    });
    assert.equal(result.dryRun, true);
    assert.ok(result.sql.some((s) => s.startsWith('create table "dry"."dyn" (')));
    assert.deepEqual(await rows("select 1 from pg_namespace where nspname = 'dry'"), []);
  });

  it("--naming snake renames tables and columns and reports the mapping", async () => {
    const result = await importSqlite({
      path: sink,
      pool: db().pool,
      schema: "snake",
      verify: false,
      naming: "snake",
      tables: ["Mixed Case"],
    });
    assert.equal(result.ok, true);
    assert.deepEqual(
      result.plan.names.filter((n) => n.kind !== "view").map((n) => `${n.source}->${n.target}`),
      [
        "Mixed Case->mixed_case",
        "id->id",
        "select->select",
        "Weird Name->weird_name",
        "camelCase->camel_case",
      ],
    );
    assert.deepEqual(
      await rows('select "select", weird_name, camel_case from snake.mixed_case order by id'),
      [
        { select: "from", weird_name: "x y", camel_case: 1 },
        { select: "where", weird_name: "z", camel_case: 3 },
      ],
    );
  });

  it("--tables and --exclude choose tables; foreign keys to excluded tables are reported", async () => {
    const result = await importSqlite({
      path: sink,
      pool: db().pool,
      schema: "some",
      verify: false,
      exclude: ["parent", "dyn", "uq"],
    });
    assert.equal(result.ok, true);
    assert.deepEqual(
      result.tables.map((t) => t.source),
      ["Mixed Case", "child"],
    );
    assert.ok(result.notes.some((n) => n.kind === "foreign-key" && /not imported/.test(n.message)));
    await assert.rejects(
      importSqlite({
        path: sink,
        pool: db().pool,
        schema: "x",
        verify: false,
        tables: ["nope"],
      }),
      /table nope is not in/,
    );
  });

  it("--if-exists append adds rows to existing tables", async () => {
    const log = makeSqlite(join(dir, "log.db"), "CREATE TABLE log (at TEXT, msg TEXT)", (d) => {
      for (let i = 0; i < 5; i++) d.prepare("insert into log values (?, ?)").run(`t${i}`, `m${i}`);
    });
    assert.equal(
      (
        await importSqlite({
          path: log,
          pool: db().pool,
          schema: "app",
          verify: false,
        })
      ).ok,
      true,
    );
    const again = await importSqlite({
      path: log,
      pool: db().pool,
      schema: "app",
      verify: false,
      ifExists: "append",
    });
    assert.equal(again.ok, true, JSON.stringify(again.error));
    assert.deepEqual(await rows("select count(*)::int as n from app.log"), [{ n: 10 }]);
  });

  it("splits large tables into rowid chunks, one checkpoint each", async () => {
    const big = makeSqlite(join(dir, "big.db"), "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)", (d) => {
      const insert = d.prepare("insert into t values (?, ?)");
      for (let i = 1; i <= 1000; i++) insert.run(i * 3, `v${i}`);
    });
    const result = await importSqlite({
      path: big,
      pool: db().pool,
      schema: "big",
      verify: false,
      chunkRows: 128,
      threads: true,
      jobs: 2,
    });
    assert.equal(result.ok, true);
    assert.deepEqual(result.tables[0]!.chunks, { done: 8, total: 8 });
    const chunks = await rows(
      "select count(*)::int as n, sum(rows_loaded)::int as loaded from pgshift.import_chunks where run_id = $1",
      [result.runId],
    );
    assert.deepEqual(chunks, [{ n: 8, loaded: 1000 }]);
    assert.deepEqual(await rows("select count(*)::int as n, sum(id)::int as s from big.t"), [
      { n: 1000, s: 3 * 500500 },
    ]);
  });
});

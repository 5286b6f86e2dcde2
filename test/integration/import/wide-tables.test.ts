import assert from "node:assert/strict";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { importSqlite } from "../../../src/load/import-sqlite.ts";
import { verifySqlite } from "../../../src/verify/verify-import.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import { fixtureDir, makeSqlite } from "./sqlite-fixtures.ts";

const db = useTestDatabase("wide");
const dir = fixtureDir();

/** A table `name` with an integer key and `columns` more columns, of kinds that take every encoder path. */
function wideTable(
  name: string,
  columns: number,
  rows: number,
  kinds = ["INTEGER", "TEXT", "REAL", "BOOLEAN"],
): { sql: string; fill: (d: import("better-sqlite3").Database) => void } {
  const cols = Array.from({ length: columns }, (_, i) => `c${i} ${kinds[i % kinds.length]}`);
  const sql = `CREATE TABLE ${name} (id INTEGER PRIMARY KEY, ${cols.join(", ")});`;
  const value = (i: number, row: number): unknown => {
    switch (kinds[i % kinds.length]) {
      case "INTEGER":
        return row * 1000 + i;
      case "TEXT":
        return row === 2 && i === 1 ? "tab\there" : `r${row}c${i}`;
      case "REAL":
        return (row + i) / 8;
      default:
        return (row + i) % 2;
    }
  };
  return {
    sql,
    fill: (d) => {
      const insert = d.prepare(
        `insert into ${name} values (${Array.from({ length: columns + 1 }, () => "?").join(", ")})`,
      );
      for (let row = 1; row <= rows; row++)
        insert.run(
          row,
          ...Array.from({ length: columns }, (_, i) => (row === 3 && i % 7 === 0 ? null : value(i, row))),
        );
    },
  };
}

let wide: string;
let tooWide: string;
let widest: string;

before(() => {
  const w = wideTable("wide", 999, 5);
  wide = makeSqlite(
    join(dir, "wide.db"),
    // "mixed": its NUMERIC column is encoded in JavaScript, the integers beside it by SQLite (sql-lines.ts).
    `${w.sql} CREATE TABLE mixed (id INTEGER PRIMARY KEY, n NUMERIC, ${Array.from({ length: 700 }, (_, i) => `i${i} INTEGER`).join(", ")});`,
    (d) => {
      w.fill(d);
      const insert = d.prepare(
        `insert into mixed values (?, ?, ${Array.from({ length: 700 }, () => "?").join(", ")})`,
      );
      for (let row = 1; row <= 3; row++)
        insert.run(row, row + 0.25, ...Array.from({ length: 700 }, (_, i) => row * i));
    },
  );
  // 1600 columns, PostgreSQL's limit; integers and booleans keep a row within a page (8160 bytes).
  const w1600 = wideTable("widest", 1599, 3, ["INTEGER", "BOOLEAN"]);
  widest = makeSqlite(join(dir, "widest.db"), w1600.sql, w1600.fill);
  const t = wideTable("huge", 1699, 2);
  tooWide = makeSqlite(
    join(dir, "too-wide.db"),
    `${t.sql} CREATE TABLE small (id INTEGER PRIMARY KEY, v TEXT);`,
    t.fill,
  );
});

describe("wide tables", () => {
  it("a 1000-column table loads, every value in place, and verifies", async () => {
    const result = await importSqlite({ path: wide, pool: db().pool, schema: "w" });
    assert.equal(result.ok, true, JSON.stringify(result.error ?? result.warnings));
    assert.deepEqual(
      result.tables.map((t) => [t.source, t.status, t.rowsRead, t.rowsLoaded]),
      [
        ["wide", "complete", 5, 5],
        ["mixed", "complete", 3, 3],
      ],
    );
    assert.equal((result.verification as { identical: boolean }).identical, true);
    const { rows: columns } = await db().pool.query(
      "select count(*)::int as n from information_schema.columns where table_schema = 'w' and table_name = 'wide'",
    );
    assert.equal(columns[0].n, 1000);
    const { rows } = await db().pool.query(
      "select id, c0, c1, c2::text, c3, c996, c998 from w.wide order by id",
    );
    assert.deepEqual(rows[1], {
      id: "2",
      c0: 2000,
      c1: "tab\there",
      c2: "0.5",
      c3: true,
      c996: 2996,
      c998: 125,
    });
    assert.equal(rows[2].c0, null);
    const { rows: mixed } = await db().pool.query("select n::text, i1, i699 from w.mixed order by id");
    assert.deepEqual(mixed, [
      { n: "1.25", i1: 1, i699: 699 },
      { n: "2.25", i1: 2, i699: 1398 },
      { n: "3.25", i1: 3, i699: 2097 },
    ]);
    const verified = await verifySqlite({ sourcePath: wide, pool: db().pool, schema: "w" });
    assert.equal(
      verified.status,
      "identical",
      JSON.stringify(verified.tables.map((t) => [t.table, t.status, t.error])),
    );
  });

  it("a table of exactly 1600 columns loads and verifies", async () => {
    const result = await importSqlite({ path: widest, pool: db().pool, schema: "w1600" });
    assert.equal(result.ok, true, JSON.stringify(result.error ?? result.warnings));
    assert.equal((result.verification as { identical: boolean }).identical, true);
    const { rows } = await db().pool.query("select c0, c1, c1598 from w1600.widest order by id");
    assert.deepEqual(rows, [
      { c0: 1000, c1: false, c1598: 2598 },
      { c0: 2000, c1: true, c1598: 3598 },
      { c0: null, c1: false, c1598: 4598 },
    ]);
  });

  it("a 1700-column table is refused before anything is written, naming the table", async () => {
    await assert.rejects(
      importSqlite({ path: tooWide, pool: db().pool, schema: "toowide" }),
      (error: Error & { code?: string }) => {
        assert.equal(error.code, "too_many_columns");
        assert.equal((error as Error & { exitCode?: number }).exitCode, 2);
        assert.match(error.message, /huge/);
        assert.match(error.message, /1700/);
        assert.match(error.message, /1600/);
        return true;
      },
    );
    const { rows } = await db().pool.query(
      "select count(*)::int as n from pg_namespace where nspname = 'toowide'",
    );
    assert.equal(rows[0].n, 0);
  });
});

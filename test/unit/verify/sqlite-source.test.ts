import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import Database from "better-sqlite3";
import type { CanonicalKind } from "../../../src/verify/canonical.ts";
import type { CanonicalRow } from "../../../src/verify/source-reader.ts";
import { SqliteTableReader } from "../../../src/verify/sqlite-source.ts";
import type { VerifyTable } from "../../../src/verify/types.ts";

// More rows than one page of the reader (2048), with rowid gaps, so that reads cross pages.
const ROWS = 5000;

function table(sourceTable: string, columns: [string, CanonicalKind][], key: string[]): VerifyTable {
  return {
    sourceTable,
    schema: "public",
    table: sourceTable,
    columns: columns.map(([name, kind]) => ({
      name,
      sourceName: name,
      kind,
      reading: "value",
      pgType: kind,
    })),
    key,
  };
}

function readAll(reader: SqliteTableReader, range?: [bigint, bigint], ordered = false): CanonicalRow[] {
  const rows: CanonicalRow[] = [];
  for (const batch of reader.rows(range, ordered) as Iterable<CanonicalRow[]>) {
    assert.ok(batch.length > 0 && batch.length <= 2048);
    rows.push(...batch);
  }
  return rows;
}

const byFirstField = (a: CanonicalRow, b: CanonicalRow) => Number(a[0]) - Number(b[0]);

describe("SqliteTableReader.rows", () => {
  let dir: string;
  let path: string;
  const ids = Array.from({ length: ROWS }, (_, i) => 3 * i + 1);
  const expected = ids.map((id) => [String(id), `v${id}`]);

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "pgshift-verify-source-"));
    path = join(dir, "source.db");
    const db = new Database(path);
    db.exec(`
      create table alias (id integer primary key, v text);
      create table plain_key (id int primary key, v text);
      create table desc_key (id integer primary key desc, v text);
      create table pairs (id integer not null, v text not null, primary key (id, v)) without rowid;
      create table hidden (rowid text, v text);
    `);
    db.transaction(() => {
      // plain_key and desc_key get their keys in descending order: rowid order is not key order.
      for (const id of ids) db.prepare("insert into alias values (?, ?)").run(id, `v${id}`);
      for (const id of [...ids].reverse()) {
        db.prepare("insert into plain_key values (?, ?)").run(id, `v${id}`);
        db.prepare("insert into desc_key values (?, ?)").run(id, `v${id}`);
        db.prepare("insert into pairs values (?, ?)").run(id, `v${id}`);
      }
      for (const id of ids) db.prepare("insert into hidden values (?, ?)").run(String(id), `v${id}`);
    })();
    db.close();
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  const columns: [string, CanonicalKind][] = [
    ["id", "integer"],
    ["v", "text"],
  ];

  for (const name of ["alias", "plain_key", "desc_key", "pairs"]) {
    it(`reads every row of ${name}, in key order when asked, and key ranges`, () => {
      const reader = new SqliteTableReader(path, table(name, columns, name === "pairs" ? [] : ["id"]));
      try {
        assert.deepEqual(readAll(reader).sort(byFirstField), expected);
        if (name !== "pairs") {
          assert.deepEqual(readAll(reader, undefined, true), expected);
          const inRange = expected.filter(([id]) => Number(id) >= 100 && Number(id) <= 7000);
          assert.deepEqual(readAll(reader, [100n, 7000n]).sort(byFirstField), inRange);
          assert.deepEqual(readAll(reader, [100n, 7000n], true), inRange);
        }
      } finally {
        reader.close();
      }
    });
  }

  it("pages by _rowid_ when a column is named rowid", () => {
    const reader = new SqliteTableReader(
      path,
      table(
        "hidden",
        [
          ["rowid", "text"],
          ["v", "text"],
        ],
        [],
      ),
    );
    try {
      assert.deepEqual(readAll(reader), expected);
    } finally {
      reader.close();
    }
  });

  it("leaves out the excluded rowids, also across pages", () => {
    // Rows 1 and 683, the last row of the first page (6142) and the first of the second (6145).
    const excluded = [1n, 2047n, 6142n, 6145n];
    const reader = new SqliteTableReader(path, table("alias", columns, ["id"]), excluded);
    try {
      const kept = expected.filter(([id]) => !excluded.includes(BigInt(id!)));
      assert.equal(reader.count(), kept.length);
      assert.deepEqual(readAll(reader, undefined, true), kept);
    } finally {
      reader.close();
    }
  });
});

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import Database from "better-sqlite3";
import { ChunkWorker } from "../../../src/load/chunk-workers.ts";
import { SCAN_SPLIT_MIN_ROWIDS, scanPieces, scanTables } from "../../../src/load/scan-tables.ts";
import { readSqliteCatalog } from "../../../src/sources/sqlite/sqlite-catalog.ts";
import { openSqlite } from "../../../src/sources/sqlite/sqlite-rows.ts";
import { scanTable } from "../../../src/sources/sqlite/sqlite-scan.ts";

const dir = mkdtempSync(join(tmpdir(), "pgshift-scan-tables-"));
after(() => rmSync(dir, { recursive: true, force: true }));

describe("scanTables", () => {
  const path = join(dir, "tables.db");
  const db = new Database(path);
  db.exec(`
    create table small (a, d DATE);
    create table big (a, j JSON, n NUMERIC(9,2), t TEXT);
    create table hidden ("rowid" INTEGER, "_rowid_" TEXT, "oid" REAL);
    create table keyed (k TEXT PRIMARY KEY, v) WITHOUT ROWID;
    create table empty (a);
    create table wide_span (a);
  `);
  const bigRows = 40_000;
  db.transaction(() => {
    const big = db.prepare("insert into big (_rowid_, a, j, n, t) values (?, ?, ?, ?, ?)");
    // Every third rowid: the span is what decides the split, not the count.
    for (let i = 1; i <= bigRows; i++)
      big.run(
        i * 3,
        i % 4 === 0 ? null : i % 4 === 1 ? i : i % 4 === 2 ? i / 7 : `text ${i}`,
        i % 5 === 0 ? "[1, 2" : `{"i": ${i}}`,
        i % 3 === 0 ? i * 1.25 : i,
        "x".repeat(i % 50),
      );
    const small = db.prepare("insert into small (a, d) values (?, ?)");
    for (let i = 0; i < 10; i++) small.run(i, `2024-01-${String(i + 10)}`);
    const hidden = db.prepare("insert into hidden values (?, ?, ?)");
    for (let i = 0; i < 5; i++) hidden.run(i, `h${i}`, i / 2);
    const keyed = db.prepare("insert into keyed values (?, ?)");
    for (let i = 0; i < 5; i++) keyed.run(`k${i}`, i);
    db.prepare("insert into wide_span (_rowid_, a) values (?, ?)").run(-(2n ** 63n), 1);
    db.prepare("insert into wide_span (_rowid_, a) values (?, ?)").run(2n ** 63n - 1n, 2);
  })();
  db.close();
  const source = openSqlite(path);
  after(() => source.close());
  const tables = readSqliteCatalog(source).tables;
  const names = tables.map((t) => t.name);
  const whole = new Map(tables.map((t) => [t.name, scanTable(source, t)]));

  it("cuts the tables spanning many rowids into one range per lane, largest first", () => {
    assert.ok(bigRows * 3 >= SCAN_SPLIT_MIN_ROWIDS);
    const index = (name: string) => names.indexOf(name);
    assert.deepEqual(scanPieces(source, tables, 2), [
      // Tables without a rowid range to cut start first: their size is not known.
      { table: index("hidden"), part: 0 },
      { table: index("keyed"), part: 0 },
      { table: index("wide_span"), part: 0, span: 2n ** 63n, range: { throughRowid: -1n } },
      { table: index("wide_span"), part: 1, span: 2n ** 63n, range: { afterRowid: -1n } },
      { table: index("big"), part: 0, span: 59_999n, range: { throughRowid: 60_001n } },
      { table: index("big"), part: 1, span: 59_999n, range: { afterRowid: 60_001n } },
      { table: index("small"), part: 0, span: 10n },
      { table: index("empty"), part: 0, span: 0n },
    ]);
    // One lane: nothing to balance, every table whole and in catalog order.
    assert.deepEqual(
      scanPieces(source, tables, 1),
      tables.map((_, table) => ({ table, part: 0 })),
    );
  });

  it("gives on worker threads, big tables split, the stats of whole-table scans, in table order", async () => {
    const workers = [new ChunkWorker(path), new ChunkWorker(path)];
    try {
      const stats = await scanTables(source, tables, workers);
      assert.deepEqual([...stats.keys()], names);
      assert.deepStrictEqual(stats, whole);
      assert.equal(stats.get("big")!.rows, bigRows);
    } finally {
      await Promise.all(workers.map((w) => w.close()));
    }
  });

  it("scans each table whole in the calling thread when there are no workers", async () => {
    const stats = await scanTables(source, tables, []);
    assert.deepEqual([...stats.keys()], names);
    assert.deepStrictEqual(stats, whole);
  });
});

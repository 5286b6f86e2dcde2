import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import Database from "better-sqlite3";
import { readSqliteCatalog } from "../../../src/sources/sqlite/sqlite-catalog.ts";
import { openSqlite } from "../../../src/sources/sqlite/sqlite-rows.ts";
import { scanTable } from "../../../src/sources/sqlite/sqlite-scan.ts";

const dir = mkdtempSync(join(tmpdir(), "pgshift-scan-"));
after(() => rmSync(dir, { recursive: true, force: true }));

describe("scanTable", () => {
  it("counts every row once across rowid batches, with negative and extreme rowids", () => {
    const path = join(dir, "scan.db");
    const db = new Database(path);
    db.defaultSafeIntegers(true);
    db.exec('create table t (a, d DATETIME, "rowid" TEXT); create table u (a, d DATETIME)');
    const rowids: bigint[] = [-(2n ** 63n), -7n, 0n];
    for (let i = 1n; i <= 4321n; i++) rowids.push(i * 2n);
    rowids.push(2n ** 63n - 2n, 2n ** 63n - 1n);
    const insert = db.prepare("insert into u (_rowid_, a, d) values (?, ?, ?)");
    const shadowed = db.prepare("insert into t (_rowid_, a, d, \"rowid\") values (?, ?, ?, 'x')");
    for (const rowid of rowids) {
      const a = rowid % 5n === 0n ? null : rowid % 3n === 0n ? `t${rowid}` : rowid % 3n === 1n ? rowid : 0.5;
      const d = rowid % 2n === 0n ? "2024-02-29" : "2024-02-30";
      insert.run(rowid, a, d);
      shadowed.run(rowid, a, d);
    }
    db.close();
    const source = openSqlite(path);
    try {
      const catalog = readSqliteCatalog(source);
      const u = catalog.tables.find((t) => t.name === "u")!;
      const batched = scanTable(source, u);
      const single = scanTable(source, { ...u, withoutRowid: true });
      assert.equal(batched.rows, rowids.length);
      assert.deepEqual(batched.columns, single.columns);
      assert.equal(batched.rowidMin, -(2n ** 63n));
      assert.equal(batched.rowidMax, 2n ** 63n - 1n);
      const expect = (predicate: (r: bigint) => boolean) => rowids.filter(predicate).length;
      const a = batched.columns.get("a")!;
      assert.equal(
        a.nulls,
        expect((r) => r % 5n === 0n),
      );
      assert.equal(
        a.texts,
        expect((r) => r % 5n !== 0n && r % 3n === 0n),
      );
      assert.equal(
        a.integers,
        expect((r) => r % 5n !== 0n && r % 3n === 1n),
      );
      assert.equal(a.reals, rowids.length - a.nulls - a.texts - a.integers);
      assert.equal(
        batched.columns.get("d")!.textDates,
        expect((r) => r % 2n === 0n),
      );
      // A column named rowid hides the rowid: that table is read in one pass and still counted whole.
      const t = scanTable(
        source,
        catalog.tables.find((x) => x.name === "t")!,
      );
      assert.equal(t.rows, rowids.length);
      assert.deepEqual(t.columns.get("a"), a);
    } finally {
      source.close();
    }
  });
});

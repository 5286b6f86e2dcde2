import assert from "node:assert/strict";
import { describe, it } from "node:test";
import Database from "better-sqlite3";
import {
  parseCreateIndex,
  parseCreateTable,
  readSqliteCatalog,
} from "../../../src/sources/sqlite/sqlite-catalog.ts";
import { scanTable } from "../../../src/sources/sqlite/sqlite-scan.ts";

function fixture(): Database.Database {
  const db = new Database(":memory:");
  db.exec(`
    CREATE TABLE parent (a INTEGER, b TEXT, name TEXT COLLATE NOCASE, PRIMARY KEY (a, b)) WITHOUT ROWID;
    CREATE TABLE child (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      pa INTEGER, pb TEXT,
      qty INTEGER CONSTRAINT qty_positive CHECK (qty >= 0),
      status TEXT DEFAULT 'new' UNIQUE,
      FOREIGN KEY (pa, pb) REFERENCES parent (a, b) ON DELETE CASCADE ON UPDATE SET NULL,
      CHECK (status <> '')
    );
    CREATE INDEX child_partial ON child (pa) WHERE status = 'active';
    CREATE INDEX child_expr ON child (lower(status) DESC, qty COLLATE NOCASE);
    CREATE VIEW v AS SELECT id FROM child;
    CREATE TRIGGER tr AFTER INSERT ON child BEGIN SELECT 1; END;
    INSERT INTO parent VALUES (1, 'x', 'A'), (2, 'y', 'b');
    INSERT INTO child (pa, pb, qty, status) VALUES (1, 'x', 5, 'active'), (2, 'y', 9007199254740993, 'done'), (NULL, NULL, NULL, 'z');
    DELETE FROM child WHERE id = 3;
  `);
  return db;
}

describe("readSqliteCatalog", () => {
  it("reads keys, WITHOUT ROWID, AUTOINCREMENT, CHECKs, collations, FKs, indexes, views", () => {
    const db = fixture();
    const catalog = readSqliteCatalog(db);
    const parent = catalog.tables.find((t) => t.name === "parent")!;
    const child = catalog.tables.find((t) => t.name === "child")!;
    assert.deepEqual(parent.primaryKey, ["a", "b"]);
    assert.equal(parent.withoutRowid, true);
    assert.equal(parent.rowidAlias, undefined);
    assert.equal(parent.columns.find((c) => c.name === "name")!.collation, "NOCASE");
    assert.equal(child.rowidAlias, "id");
    assert.equal(child.autoincrement, true);
    assert.equal(child.sequenceValue, 3n);
    assert.deepEqual(child.checks, [
      { name: "qty_positive", expression: "qty >= 0" },
      { expression: "status <> ''" },
    ]);
    assert.equal(child.columns.find((c) => c.name === "status")!.defaultSql, "'new'");
    assert.deepEqual(child.foreignKeys, [
      {
        columns: ["pa", "pb"],
        referencedTable: "parent",
        referencedColumns: ["a", "b"],
        onUpdate: "SET NULL",
        onDelete: "CASCADE",
        deferrable: false,
        deferred: false,
      },
    ]);
    const partial = child.indexes.find((i) => i.name === "child_partial")!;
    assert.equal(partial.where, "status = 'active'");
    const expr = child.indexes.find((i) => i.name === "child_expr")!;
    assert.deepEqual(expr.columns, [
      { column: null, expression: "lower(status)", descending: true },
      { column: "qty", descending: false, collation: "NOCASE" },
    ]);
    assert.ok(child.indexes.some((i) => i.origin === "u" && i.columns[0]!.column === "status"));
    assert.deepEqual(
      catalog.views.map((v) => [v.name, v.selectSql]),
      [["v", "SELECT id FROM child"]],
    );
    assert.deepEqual(catalog.skipped, []);
    assert.deepEqual(
      catalog.triggers.map((t) => [t.name, t.table, t.sql]),
      [["tr", "child", "CREATE TRIGGER tr AFTER INSERT ON child BEGIN SELECT 1; END"]],
    );
    db.close();
  });

  it("scans stored value types", () => {
    const db = fixture();
    const child = readSqliteCatalog(db).tables.find((t) => t.name === "child")!;
    const stats = scanTable(db, child);
    assert.equal(stats.rows, 2);
    assert.equal(stats.rowidMin, 1n);
    assert.equal(stats.rowidMax, 2n);
    const qty = stats.columns.get("qty")!;
    assert.equal(qty.integers, 2);
    assert.equal(qty.integerMax, 9007199254740993n);
    assert.equal(stats.columns.get("status")!.textMaxLength, 6);
    db.close();
  });
});

describe("SQLite DDL parsing", () => {
  it("finds CHECK bodies and COLLATE with nested parentheses and quoted names", () => {
    const parsed = parseCreateTable(
      'CREATE TABLE "t (x)" ("a b" TEXT COLLATE nocase CHECK (length("a b") IN (1, (2))), [c] INT, CONSTRAINT k CHECK (c > 0)) WITHOUT ROWID',
    );
    assert.deepEqual(parsed.checks, [
      { expression: 'length("a b") IN (1, (2))' },
      { name: "k", expression: "c > 0" },
    ]);
    assert.equal(parsed.collations.get("a b"), "NOCASE");
    assert.equal(parsed.withoutRowid, true);
  });
  it("splits index terms and the WHERE clause", () => {
    assert.deepEqual(
      parseCreateIndex("CREATE INDEX i ON t (lower(a) COLLATE NOCASE DESC, b) WHERE a IS NOT NULL"),
      {
        terms: ["lower(a)", "b"],
        where: "a IS NOT NULL",
      },
    );
  });
});

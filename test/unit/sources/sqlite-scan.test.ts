import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import Database from "better-sqlite3";
import { readSqliteCatalog } from "../../../src/sources/sqlite/sqlite-catalog.ts";
import { openSqlite } from "../../../src/sources/sqlite/sqlite-rows.ts";
import type { RowRange } from "../../../src/sources/sqlite/sqlite-rows.ts";
import {
  mergeTableStats,
  scanTable,
  splitRowidRange,
  type TableStats,
} from "../../../src/sources/sqlite/sqlite-scan.ts";

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

/** Cuts at the given rowids (each the inclusive end of a range): ranges that cover every rowid once. */
function cutAt(cuts: readonly bigint[]): RowRange[] {
  const ranges: RowRange[] = [];
  let previous: bigint | undefined;
  for (const cut of cuts) {
    ranges.push({ ...(previous !== undefined ? { afterRowid: previous } : {}), throughRowid: cut });
    previous = cut;
  }
  ranges.push(previous !== undefined ? { afterRowid: previous } : {});
  return ranges;
}

describe("mergeTableStats", () => {
  const path = join(dir, "split.db");
  const db = new Database(path);
  db.defaultSafeIntegers(true);
  db.exec(`
    create table mixed (a, j JSON, d DATE, dt TIMESTAMP, n NUMERIC(12,3), m DECIMAL(5), s TEXT, b BLOB);
    create table sparse (x INTEGER, j JSONB, d DATETIME, n NUMERIC(8,2));
    create table empty (x INTEGER, j JSON, d DATE, n NUMERIC(4,1));
    create table one (x, j JSON, d DATE, n NUMERIC(6,2));
    create table keyed (id INTEGER PRIMARY KEY, v);
  `);
  const insertMixed = db.prepare(
    "insert into mixed (_rowid_, a, j, d, dt, n, m, s, b) values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
  );
  const texts = ["", "x", "héllo wörld", "😀😀😀 emoji", "a much longer text value ".repeat(7)];
  const jsons = ['{"a":1}', "[1,2", "null", "1e400", '"s"', "{bad}", " [] "];
  const days = [
    "2024-02-29",
    "2023-02-29",
    "2024-13-01",
    "2024-01-31T12:00:00",
    "2024-01-31 12:00",
    "2024-01-31T12:00:00.5Z",
    "2024-01-31T12:00:00+02:00",
    "nope",
  ];
  const numbers: unknown[] = [
    0n,
    1n,
    -12345n,
    123.456,
    -0.001,
    1e-7,
    9.999e20,
    Infinity,
    -Infinity,
    "12.5",
    null,
    2n ** 62n,
  ];
  const mixedRows: bigint[] = [];
  // Rowids with gaps, negatives, both ends of the range and a dense run.
  for (const r of [-(2n ** 63n), -(2n ** 62n), -1000n, -1n, 0n]) mixedRows.push(r);
  for (let r = 1n; r <= 3000n; r += r % 7n === 0n ? 13n : 1n) mixedRows.push(r);
  for (const r of [10n ** 12n, 2n ** 62n, 2n ** 63n - 2n, 2n ** 63n - 1n]) mixedRows.push(r);
  db.transaction(() => {
    mixedRows.forEach((rowid, k) => {
      const i = BigInt(k);
      const a =
        i % 9n === 0n
          ? null
          : i % 9n === 1n
            ? 2n ** 63n - 1n - i
            : i % 9n === 2n
              ? -(2n ** 63n) + i
              : i % 9n === 3n
                ? i % 2n
                : i % 9n === 4n
                  ? Number(i) / 8
                  : i % 9n === 5n
                    ? texts[k % texts.length]!
                    : i % 9n === 6n
                      ? Buffer.from([k % 256, 1, 2])
                      : i % 9n === 7n
                        ? i
                        : "";
      const j = k % 11 === 0 ? null : k % 13 === 0 ? BigInt(k) : jsons[k % jsons.length]!;
      const d = k % 10 === 0 ? null : k % 17 === 0 ? 1.5 : days[k % days.length]!;
      const dt = days[(k * 3) % days.length]!;
      const n = numbers[k % numbers.length];
      const m = k % 5 === 0 ? BigInt(k) * 1000n : k % 5 === 1 ? k / 3 : k % 5 === 2 ? "abc" : null;
      // A blob in a TEXT column too: declared types do not stop SQLite storing one.
      const s = k % 3 === 0 ? texts[(k * 7) % texts.length]! : k % 29 === 0 ? Buffer.from("b") : null;
      const b = k % 4 === 0 ? Buffer.alloc(k % 9) : k % 4 === 1 ? "text in a blob column" : null;
      insertMixed.run(rowid, a, j, d, dt, n, m, s, b);
    });
  })();
  // Values that only some ranges hold: integers, JSON text, dates, decimals at the ends only.
  const insertSparse = db.prepare("insert into sparse (_rowid_, x, j, d, n) values (?, ?, ?, ?, ?)");
  const sparseRows = [5n, 6n, 7n, 500_000n, 999_999n, 1_000_000n];
  sparseRows.forEach((rowid, k) =>
    insertSparse.run(
      rowid,
      k === 0 ? -(2n ** 63n) : k === 5 ? 2n ** 63n - 1n : null,
      k === 1 ? '{"k":[1,2,3]}' : null,
      k === 4 ? "2020-01-01T00:00:00Z" : null,
      k === 5 ? 123456.78 : null,
    ),
  );
  db.prepare("insert into one (_rowid_, x, j, d, n) values (42, 7, '[]', '2024-01-01', 1.25)").run();
  const insertKeyed = db.prepare("insert into keyed (id, v) values (?, ?)");
  db.transaction(() => {
    for (let id = 1n; id <= 5000n; id++) insertKeyed.run(id * 3n, `v${id}`);
  })();
  db.close();
  const source = openSqlite(path);
  after(() => source.close());
  const catalog = readSqliteCatalog(source);
  const table = (name: string) => catalog.tables.find((t) => t.name === name)!;
  const splits = (whole: TableStats): RowRange[][] => {
    const cases: RowRange[][] = [];
    if (whole.rowidMin !== undefined && whole.rowidMax !== undefined)
      for (let parts = 2; parts <= 4; parts++)
        cases.push(splitRowidRange(whole.rowidMin, whole.rowidMax, parts));
    // Cuts that leave ranges empty, that fall between rows and on rows, and at the rowid ends.
    cases.push(cutAt([-(2n ** 63n), 0n, 2n ** 63n - 2n]));
    cases.push(cutAt([-(2n ** 63n) + 1n, 6n, 10n, 999_999n]));
    cases.push(cutAt([-5n, 1_000_000n]));
    cases.push(cutAt([2999n]));
    return cases;
  };

  for (const name of ["mixed", "sparse", "empty", "one", "keyed"])
    it(`scanning ${name} in rowid ranges and merging gives the whole-table scan`, () => {
      const whole = scanTable(source, table(name));
      if (name === "mixed") assert.equal(whole.rows, mixedRows.length);
      // Storage classes as SQLite itself tells them, blobs included (the scan does not copy them).
      for (const [column, figures] of whole.columns) {
        const count = (type: string) =>
          Number(
            source
              .prepare(`select count(*) from ${name} where typeof("${column}") = ?`)
              .pluck()
              .get(type) as number,
          );
        assert.deepEqual(
          [figures.nulls, figures.integers, figures.reals, figures.texts, figures.blobs],
          ["null", "integer", "real", "text", "blob"].map(count),
          `${name}.${column}`,
        );
      }
      for (const ranges of splits(whole)) {
        const parts = ranges.map((range) => scanTable(source, table(name), range));
        assert.deepStrictEqual(
          mergeTableStats(parts),
          whole,
          JSON.stringify(ranges, (_, v) => (typeof v === "bigint" ? String(v) : v)),
        );
      }
    });

  it("keeps the figures that only some ranges hold, and leaves absent what no range saw", () => {
    const whole = scanTable(source, table("sparse"));
    const parts = cutAt([6n, 999_999n]).map((range) => scanTable(source, table("sparse"), range));
    assert.deepEqual(
      parts.map((p) => p.rows),
      [2, 3, 1],
    );
    assert.equal(parts[1]!.columns.get("x")!.integerMin, undefined);
    assert.equal("integerMin" in parts[1]!.columns.get("x")!, false);
    const merged = mergeTableStats(parts);
    assert.deepStrictEqual(merged, whole);
    assert.equal(merged.rowidMin, 5n);
    assert.equal(merged.rowidMax, 1_000_000n);
    const x = merged.columns.get("x")!;
    assert.equal(x.integerMin, -(2n ** 63n));
    assert.equal(x.integerMax, 2n ** 63n - 1n);
    assert.equal(merged.columns.get("j")!.textJson, 1);
    assert.equal(merged.columns.get("d")!.textZoned, 1);
    assert.equal(merged.columns.get("n")!.decimalIntegerDigits, 6);
    assert.equal(merged.columns.get("n")!.decimalFractionDigits, 2);
    const empty = scanTable(source, table("empty"));
    assert.equal(empty.rowidMin, undefined);
    assert.equal("rowidMin" in empty, false);
    assert.deepStrictEqual(
      mergeTableStats([
        scanTable(source, table("empty"), { throughRowid: 0n }),
        scanTable(source, table("empty"), { afterRowid: 0n }),
      ]),
      empty,
    );
  });

  it("refuses a range for a table without a row id to read it by", () => {
    assert.throws(
      () => scanTable(source, { ...table("keyed"), withoutRowid: true }, { throughRowid: 10n }),
      /scanned whole/,
    );
  });
});

describe("splitRowidRange", () => {
  it("cuts a span into ranges of equal span that cover it once", () => {
    assert.deepEqual(splitRowidRange(1n, 100n, 4), [
      { throughRowid: 25n },
      { afterRowid: 25n, throughRowid: 50n },
      { afterRowid: 50n, throughRowid: 75n },
      { afterRowid: 75n },
    ]);
    assert.deepEqual(splitRowidRange(-(2n ** 63n), 2n ** 63n - 1n, 2), [
      { throughRowid: -1n },
      { afterRowid: -1n },
    ]);
  });

  it("never makes more ranges than rowids, nor fewer than one", () => {
    assert.deepEqual(splitRowidRange(7n, 7n, 4), [{}]);
    assert.deepEqual(splitRowidRange(7n, 8n, 4), [{ throughRowid: 7n }, { afterRowid: 7n }]);
    assert.deepEqual(splitRowidRange(1n, 10n, 0), [{}]);
  });
});

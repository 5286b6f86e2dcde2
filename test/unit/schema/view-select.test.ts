import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { loadSqlParser } from "../../../src/schema/expression.ts";
import { applyNaming } from "../../../src/schema/naming.ts";
import type { Affinity, Conversion } from "../../../src/schema/type-mapping.ts";
import { type SqlRelation, translateViewSelect } from "../../../src/schema/view-select.ts";

before(loadSqlParser);

const column = (target: string, pgType: string, conversion: Conversion, affinity: Affinity) =>
  [target.toLowerCase(), { target, pgType, conversion, affinity }] as const;

const relations = new Map<string, SqlRelation>([
  [
    "orders",
    {
      target: "Orders",
      columns: new Map([
        column("OrderId", "bigint", "integer", "integer"),
        column("Total", "numeric", "numeric", "numeric"),
        column("Placed", "timestamp", "timestamp", "numeric"),
        column("Code", "text", "text", "text"),
        column("Qty", "integer", "integer", "integer"),
        column("Done", "boolean", "boolean", "numeric"),
        column("Mixed", "text", "text", "blob"),
        column("Stamp", "timestamptz", "epoch-s", "integer"),
      ]),
    },
  ],
  [
    "items",
    {
      target: "items",
      columns: new Map([
        column("id", "bigint", "integer", "integer"),
        column("name", "text", "text", "text"),
      ]),
    },
  ],
]);

function sql(select: string): string {
  const result = translateViewSelect(select, { relations });
  assert.ok(result.ok, JSON.stringify(result));
  return result.sql;
}

function reason(select: string): string {
  const result = translateViewSelect(select, { relations });
  assert.equal(result.ok, false, JSON.stringify(result));
  return result.ok ? "" : result.reason;
}

describe("translateViewSelect: names", () => {
  it("resolves names per table, case-insensitively, through aliases; quotes output aliases", () => {
    assert.equal(
      sql(
        "SELECT o.orderid, i.Name AS ItemName FROM orders o JOIN items i ON i.id = o.qty ORDER BY itemname",
      ),
      'SELECT o."OrderId", i."name" AS "ItemName" FROM "Orders" o JOIN "items" i ON i."id" = o."Qty" ORDER BY "ItemName"',
    );
    assert.equal(
      sql("SELECT [Code], `Qty`, orders.total FROM main.Orders"),
      'SELECT "Code", "Qty", "Orders"."Total" FROM "Orders"',
    );
  });
  it("a double-quoted name that is no column is a string, as in SQLite", () => {
    assert.equal(
      sql(`SELECT code FROM orders WHERE code = "open" OR "Code" = 'x'`),
      `SELECT "Code" FROM "Orders" WHERE "Code" = 'open' OR "Code" = 'x'`,
    );
  });
  it("IS / IS NOT between values, LIMIT offset, count", () => {
    assert.equal(
      sql("SELECT code FROM orders WHERE code IS NOT qty OR code IS 'a' OR code IS NOT NULL LIMIT 2, 5"),
      // (the words replaced keep the spaces that were between them)
      `SELECT "Code" FROM "Orders" WHERE "Code" IS DISTINCT FROM  "Qty" OR "Code" IS NOT DISTINCT FROM 'a' OR "Code" IS NOT NULL LIMIT 5 OFFSET 2  `,
    );
  });
  it("applies the naming policy to the view's own column names", () => {
    const result = translateViewSelect("SELECT Qty AS OrderQty, code FROM orders ORDER BY OrderQty", {
      relations,
      naming: (name) => applyNaming(name, "snake"),
    });
    assert.ok(result.ok);
    assert.equal(result.sql, 'SELECT "Qty" AS "order_qty", "Code" FROM "Orders" ORDER BY "order_qty"');
    assert.deepEqual(
      result.columns.map((c) => [c.source, c.name]),
      [
        ["OrderQty", "order_qty"],
        ["code", "Code"],
      ],
    );
  });
  it("names a FROM subquery (PostgreSQL before 16 requires it)", () => {
    assert.equal(
      sql("SELECT n FROM (SELECT count(*) AS n FROM orders)"),
      'SELECT "n" FROM (SELECT count(*) AS "n" FROM "Orders") as pgshift_subquery_1',
    );
  });
  it("reports the output columns with their types", () => {
    const result = translateViewSelect("SELECT OrderId, code AS c, 1 AS one FROM orders", { relations });
    assert.ok(result.ok);
    assert.deepEqual(
      result.columns.map((c) => [c.name, c.column?.pgType]),
      [
        ["OrderId", "bigint"],
        ["c", "text"],
        ["one", undefined],
      ],
    );
  });
});

describe("translateViewSelect: SQLite idioms", () => {
  it("COLLATE NOCASE -> the ICU collation, BINARY -> C", () => {
    const result = translateViewSelect(
      "SELECT code FROM orders ORDER BY code COLLATE NOCASE, code COLLATE binary",
      {
        relations,
        nocaseCollation: '"app"."pgshift_nocase"',
      },
    );
    assert.equal(
      result.ok && result.sql,
      `SELECT "Code" FROM "Orders" ORDER BY "Code" COLLATE "app"."pgshift_nocase", "Code" COLLATE "C"`,
    );
    assert.equal(
      reason("SELECT code FROM orders ORDER BY code COLLATE NOCASE"),
      "COLLATE NOCASE needs a server with ICU collations",
    );
  });
  it("group_concat -> string_agg over text, separator ',' by default", () => {
    assert.equal(
      sql("SELECT group_concat(DISTINCT qty) FROM orders"),
      `SELECT string_agg(distinct ("Qty")::text, ',') FROM "Orders"`,
    );
    assert.equal(
      sql("SELECT group_concat(code, '; ' ORDER BY code) FROM orders"),
      `SELECT string_agg("Code", '; ' ORDER BY "Code") FROM "Orders"`,
    );
  });
  it("ifnull, substr, instr, length on values of other types", () => {
    assert.equal(
      sql(
        "SELECT ifnull(code, 'none'), IFNULL(qty, 'n/a'), substr(qty, 2), instr(code, 'x'), length(total) FROM orders",
      ),
      `SELECT coalesce("Code", 'none'), coalesce(("Qty")::text, 'n/a'), substr(("Qty")::text, 2), strpos("Code", 'x'), length(("Total")::text) FROM "Orders"`,
    );
    assert.equal(sql("SELECT substr(code, -2) FROM orders"), `SELECT right("Code", 2) FROM "Orders"`);
  });
  it("|| with numbers and booleans, + on text", () => {
    assert.equal(
      sql("SELECT orderid || '-' || done, code || total, code + 1 FROM orders"),
      `SELECT ("OrderId")::text || '-' || ("Done")::int::text, "Code" || ("Total")::text, ("Code")::numeric + 1 FROM "Orders"`,
    );
  });
  it("LIMIT -1 is no limit", () => {
    assert.equal(
      sql("SELECT * FROM orders ORDER BY orderid LIMIT -1 OFFSET 1"),
      `SELECT * FROM "Orders" ORDER BY "OrderId" LIMIT all OFFSET 1`,
    );
  });
  it("compares a TEXT column with a number as text, as SQLite's affinity does; booleans with false/true", () => {
    assert.equal(
      sql("SELECT orderid FROM orders WHERE code = 5 OR code >= 10 OR code IN (1, 2.50) OR done = 1"),
      `SELECT "OrderId" FROM "Orders" WHERE "Code" = '5' OR "Code" >= ('10' collate "C") OR "Code" IN ('1', '2.5') OR "Done" = true`,
    );
  });
  it("date functions on columns, literals and 'now', in UTC", () => {
    assert.equal(
      sql(
        "SELECT strftime('%Y-%m-%d %H:%M', placed), date(placed, 'start of month', '-1 day'), datetime(stamp, 'unixepoch'), time('now'), julianday('2024-01-01'), strftime('%s', 'now') FROM orders",
      ),
      `SELECT to_char("Placed", 'YYYY"-"MM"-"DD" "HH24":"MI'), to_char((date_trunc('month', "Placed") - interval '1 days'), 'YYYY-MM-DD'), to_char(("Stamp" at time zone 'UTC'), 'YYYY-MM-DD HH24:MI:SS'), to_char((current_timestamp at time zone 'UTC'), 'HH24:MI:SS'), (extract(epoch from ('2024-01-01')::timestamp) / 86400 + 2440587.5)::double precision, (floor(extract(epoch from (current_timestamp at time zone 'UTC'))))::bigint::text FROM "Orders"`,
    );
    assert.equal(
      sql("SELECT OrderId FROM orders WHERE placed > date('now', '-30 days')"),
      `SELECT "OrderId" FROM "Orders" WHERE (("Placed")::text collate "C") > to_char(((current_timestamp at time zone 'UTC') - interval '30 days'), 'YYYY-MM-DD')`,
    );
  });
  it("compares a date column with text as SQLite does (as text) unless the literal is in the column's own form", () => {
    assert.equal(
      sql(
        "SELECT OrderId FROM orders WHERE placed BETWEEN '19970101' AND '19971231' OR placed >= '2024-01-01 00:00:00' OR code BETWEEN 1 AND 5",
      ),
      `SELECT "OrderId" FROM "Orders" WHERE (("Placed")::text collate "C") BETWEEN '19970101' AND '19971231' OR "Placed" >= '2024-01-01 00:00:00' OR "Code" BETWEEN ('1' collate "C") AND ('5' collate "C")`,
    );
  });
  it("CAST to SQLite type names, avg/total/round as floating point, scalar max, iif", () => {
    assert.equal(
      sql(
        "SELECT cast(total AS INTEGER), CAST(qty AS REAL), avg(qty), total(qty), round(total, 1), max(qty, 3), iif(qty > 1, 'many', 'one') FROM orders",
      ),
      `SELECT trunc(("Total")::numeric)::bigint, ("Qty")::double precision, (avg("Qty"))::double precision, coalesce(sum("Qty"), 0)::double precision, (round(("Total")::numeric, 1))::double precision, (case when ("Qty") is null or (3) is null then null else greatest("Qty", 3) end), case when "Qty" > 1 then 'many' else 'one' end FROM "Orders"`,
    );
  });
  it("reports what has no faithful translation", () => {
    assert.equal(
      reason("SELECT orderid FROM orders WHERE mixed = 5"),
      "comparison of column Mixed (values of several storage classes, kept as text) with the number 5: SQLite compares by storage class",
    );
    assert.equal(
      reason("SELECT date(placed, 'localtime') FROM orders"),
      "date modifier 'localtime' is not translated",
    );
    assert.equal(reason("SELECT strftime('%W', placed) FROM orders"), "strftime format %W is not translated");
    assert.equal(
      reason("SELECT random() FROM orders"),
      "function random() has no PostgreSQL equivalent with the same meaning",
    );
    assert.equal(
      reason("SELECT 'n' || qty * 2 FROM orders"),
      "|| next to * without parentheses: SQLite binds || tighter than arithmetic, PostgreSQL looser, so the expression would mean something else (add parentheses in SQLite)",
    );
    assert.equal(
      reason("SELECT code FROM orders WHERE code GLOB 'a*'"),
      "GLOB has no exact PostgreSQL equivalent",
    );
  });
});

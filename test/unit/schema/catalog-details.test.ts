import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { translateDefault } from "../../../src/schema/defaults.ts";
import { foreignKeySql } from "../../../src/schema/ddl.ts";
import { widerType } from "../../../src/schema/plan.ts";
import { parseCreateTable } from "../../../src/sources/sqlite/sqlite-catalog.ts";
import { decimalDigits, declaredPrecision } from "../../../src/sources/sqlite/sqlite-scan.ts";

describe("parseCreateTable: what PRAGMAs leave out", () => {
  it("reads constraint names and DEFERRABLE clauses of foreign keys, column and table level", () => {
    const parsed = parseCreateTable(`CREATE TABLE "c" (
      "id" integer NOT NULL CONSTRAINT "PK_c" PRIMARY KEY,
      "a_id" integer NULL REFERENCES "a" ("id") DEFERRABLE INITIALLY DEFERRED,
      b integer CONSTRAINT fk_b REFERENCES b (id) ON DELETE CASCADE NOT NULL,
      d integer,
      e text CONSTRAINT uq_e UNIQUE,
      CONSTRAINT c_to_p FOREIGN KEY (d) REFERENCES p (id) ON UPDATE SET NULL DEFERRABLE,
      FOREIGN KEY (b, d) REFERENCES q (x, y) NOT DEFERRABLE INITIALLY DEFERRED,
      CONSTRAINT uq_bd UNIQUE (b, "d")
    )`);
    assert.deepEqual(parsed.foreignKeys, [
      { columns: ["a_id"], referencedTable: "a", deferrable: true, deferred: true },
      { name: "fk_b", columns: ["b"], referencedTable: "b", deferrable: false, deferred: false },
      { name: "c_to_p", columns: ["d"], referencedTable: "p", deferrable: true, deferred: false },
      { columns: ["b", "d"], referencedTable: "q", deferrable: false, deferred: false },
    ]);
    assert.equal(parsed.primaryKeyName, "PK_c");
    assert.deepEqual(parsed.uniques, [
      { name: "uq_e", columns: ["e"] },
      { name: "uq_bd", columns: ["b", "d"] },
    ]);
  });
  it("gives a CONSTRAINT name to the next constraint only", () => {
    const parsed = parseCreateTable(
      "CREATE TABLE t (x int CONSTRAINT nn NOT NULL CHECK (x > 0), CONSTRAINT pk PRIMARY KEY (x))",
    );
    assert.deepEqual(parsed.checks, [{ expression: "x > 0" }]);
    assert.equal(parsed.primaryKeyName, "pk");
  });
});

describe("foreignKeySql: deferrable clauses", () => {
  it("writes DEFERRABLE and INITIALLY DEFERRED as SQLite declared them", () => {
    const base = { onUpdate: "NO ACTION", onDelete: "CASCADE" };
    assert.equal(
      foreignKeySql("s", "c", "fk", ["a"], "p", ["id"], { ...base, deferrable: true, deferred: true }),
      'alter table "s"."c" add constraint "fk" foreign key ("a") references "s"."p" ("id") on delete cascade deferrable initially deferred not valid',
    );
    assert.equal(
      foreignKeySql("s", "c", "fk", ["a"], "p", ["id"], { ...base, deferrable: true, deferred: false }),
      'alter table "s"."c" add constraint "fk" foreign key ("a") references "s"."p" ("id") on delete cascade deferrable not valid',
    );
  });
});

describe("translateDefault: double-quoted words are string literals", () => {
  it('translates DEFAULT "" and DEFAULT "isbn" like single-quoted strings', () => {
    assert.deepEqual(translateDefault('""', "text", "text"), { ok: true, sql: "''" });
    assert.deepEqual(translateDefault('"isbn"', "varchar(10)", "text"), { ok: true, sql: "'isbn'" });
    assert.deepEqual(translateDefault('"it""s"', "text", "text"), { ok: true, sql: `'it"s'` });
    assert.equal(translateDefault('"x"', "integer", "integer").ok, false);
  });
});

describe("type families", () => {
  it("widerType picks the type that holds both, within one family only", () => {
    assert.equal(widerType("integer", "bigint"), "bigint");
    assert.equal(widerType("varchar(10)", "varchar(20)"), "varchar(20)");
    assert.equal(widerType("varchar(10)", "text"), "text");
    assert.equal(widerType("numeric(10,2)", "numeric"), "numeric");
    assert.equal(widerType("integer", "text"), undefined);
  });
  it("declaredPrecision and decimalDigits read NUMERIC(p,s) and a number's digits", () => {
    assert.deepEqual(declaredPrecision("NUMERIC(10,2)"), { precision: 10, scale: 2 });
    assert.deepEqual(declaredPrecision("decimal( 7 )"), { precision: 7, scale: 0 });
    assert.equal(declaredPrecision("NUMERIC"), undefined);
    assert.equal(declaredPrecision("NUMERIC(2,5)"), undefined);
    assert.deepEqual(decimalDigits("12.25"), { integer: 2, fraction: 2 });
    assert.deepEqual(decimalDigits("0.05"), { integer: 0, fraction: 2 });
    assert.deepEqual(decimalDigits("1e+21"), { integer: 22, fraction: 0 });
    assert.deepEqual(decimalDigits("1.5e-7"), { integer: 0, fraction: 8 });
    assert.deepEqual(decimalDigits("-100"), { integer: 3, fraction: 0 });
    assert.deepEqual(decimalDigits("0"), { integer: 0, fraction: 0 });
  });
});

import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { parseMigrationSource, versionProblem } from "../../../src/migrate/migration-file.ts";
import { loadSqlParser } from "../../../src/migrate/sql-statements.ts";

before(() => loadSqlParser());

describe("migration versions are real UTC times, not in the future", () => {
  const now = new Date("2026-06-15T12:00:00Z");

  it("accepts past and present times, and a clock a little ahead", () => {
    for (const version of [
      "20240131120000",
      "19700101000000",
      "20260615120000",
      "20260616115959",
      "20240229235959",
    ])
      assert.equal(versionProblem(version, now), undefined, version);
  });

  it("refuses impossible dates and times", () => {
    for (const version of [
      "99999999999999",
      "20241301000000",
      "20240230000000",
      "20230229000000",
      "20240101240000",
      "20240101006000",
      "20240101000060",
      "00000000000000",
      "19691231235959",
    ])
      assert.match(versionProblem(version, now) ?? "", /not a valid UTC date and time/, version);
    assert.match(versionProblem("2024", now) ?? "", /not 14 digits/);
  });

  it("refuses versions in the future (beyond a day of clock skew)", () => {
    assert.match(
      versionProblem("20260616120001", now) ?? "",
      /is in the future \(2026-06-16T12:00:01\.000Z\)/,
    );
    assert.match(versionProblem("29991231235959", now) ?? "", /is in the future/);
  });
});

describe("a byte order mark before the first marker", () => {
  it("is not SQL before the marker; lines are unchanged", () => {
    const parsed = parseMigrationSource(
      "\uFEFF-- migrate:up\ncreate table t (id int);\n-- migrate:down\ndrop table t;\n",
      "x.sql",
    );
    assert.deepEqual(
      parsed.up.statements.map((s) => [s.text.trim(), s.line]),
      [["create table t (id int)", 2]],
    );
    assert.deepEqual(
      parsed.down?.statements.map((s) => [s.text.trim(), s.line]),
      [["drop table t", 4]],
    );
  });

  it("a BOM anywhere else is still what it was (text), and real SQL before the marker is still refused", () => {
    assert.throws(
      () => parseMigrationSource("\uFEFFselect 1;\n-- migrate:up\nselect 2;\n", "x.sql"),
      /x\.sql:1: SQL before the first section marker/,
    );
  });
});

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CRASH_POINTS } from "../../../src/load/crash-points.ts";
import {
  checkIsoDate,
  createRowEncoder,
  formatEpochMs,
  rowToQuarantineJson,
} from "../../../src/load/row-encoder.ts";
import type { ColumnPlan } from "../../../src/schema/plan.ts";
import type { Conversion } from "../../../src/schema/type-mapping.ts";

function col(name: string, conversion: Conversion, pgType = "text"): ColumnPlan {
  return {
    sourceName: name,
    targetName: name,
    declaredType: "",
    pgType,
    conversion,
    nullable: true,
    identity: false,
    nocase: false,
  };
}

describe("row encoder", () => {
  it("encodes each conversion for COPY and counts conversions", () => {
    const columns = [
      col("i", "integer", "bigint"),
      col("t", "text"),
      col("b", "boolean", "boolean"),
      col("ms", "epoch-ms", "timestamptz"),
      col("s", "epoch-s", "timestamptz"),
      col("ts", "timestamptz", "timestamptz"),
      col("blob", "bytea", "bytea"),
      col("r", "real", "double precision"),
      col("n", "text"),
    ];
    const encoder = createRowEncoder(columns, () => null);
    const line = encoder.encode([
      1n,
      9007199254740993n,
      "a\tb\\c\nd",
      1,
      1700000000123,
      1700000000,
      "2024-01-02 03:04:05",
      Buffer.from([0, 255]),
      0.1,
      12.5,
    ]);
    assert.equal(
      line,
      "9007199254740993\ta\\tb\\\\c\\nd\tt\t2023-11-14 22:13:20.123+00\t2023-11-14 22:13:20+00\t2024-01-02 03:04:05+00\t\\\\x00ff\t0.1\t12.5\n",
    );
    assert.deepEqual(encoder.conversions, [0, 0, 1, 1, 1, 1, 0, 0, 1]);
    assert.equal(
      encoder.encode([2n, null, null, null, null, null, null, null, null, null]),
      "\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\n",
    );
  });
  it("reports NUL, invalid UTF-8 and unparsable dates instead of altering them", () => {
    const encoder = createRowEncoder([col("t", "text"), col("d", "date", "date")], (_column, row) =>
      row[0] === 2n ? Buffer.from([0x61, 0xff]) : Buffer.from("a\ufffd"),
    );
    assert.equal(encoder.encode([1n, "a\u0000b", null]), undefined);
    assert.deepEqual(encoder.problem, {
      column: 0,
      reason: "NUL character in text (PostgreSQL text cannot store it)",
    });
    assert.equal(encoder.encode([2n, "a\ufffd", null]), undefined);
    assert.deepEqual(encoder.problem, {
      column: 0,
      reason: "invalid UTF-8 in text",
    });
    assert.equal(encoder.encode([3n, "a\ufffd", "2024-02-29"]), "a\ufffd\t2024-02-29\n");
    assert.equal(encoder.encode([4n, "x", "2023-02-29"]), undefined);
    assert.deepEqual(encoder.problem, {
      column: 1,
      reason: "unparsable date: day out of range",
    });
  });
  it("checks ISO dates as PostgreSQL reads them", () => {
    assert.deepEqual(checkIsoDate("2024-01-01T10:00:00.123Z"), {
      hasTime: true,
      hasZone: true,
    });
    assert.deepEqual(checkIsoDate("2024-01-01"), {
      hasTime: false,
      hasZone: false,
    });
    assert.equal(checkIsoDate("2024-13-01"), "month out of range");
    assert.equal(checkIsoDate("yesterday"), "not an ISO-8601 date");
    assert.equal(checkIsoDate("0000-01-01"), "year 0 does not exist in PostgreSQL");
  });
  it("serializes quarantined rows byte-exact", () => {
    const json = rowToQuarantineJson(
      [col("t", "text"), col("b", "bytea"), col("n", "integer"), col("bad", "text")],
      [7n, "x\u0000", Buffer.from([1, 2]), 9007199254740993n, "a\ufffd"],
      () => Buffer.from([0x61, 0xff]),
    );
    assert.equal(
      json,
      '{"$rowid":7,"t":"x\\u0000","b":{"$blob":"0102"},"n":9007199254740993,"bad":{"$bytes":"61ff"}}',
    );
  });
  it("names at least 20 crash points", () => {
    assert.ok(CRASH_POINTS.length >= 20);
    assert.equal(new Set(CRASH_POINTS).size, CRASH_POINTS.length);
  });
});

describe("formatEpochMs", () => {
  it("agrees with Date for every kind of day", () => {
    const samples = [
      0, 1, 999, 86_399_999, 951_782_400_000, 1_700_000_000_123, -1, -62_135_596_800_000, 253_402_300_799_999,
    ];
    for (let ms = -5e12; ms < 5e12; ms += 123_456_789_017) samples.push(ms);
    for (const ms of samples) {
      const iso = new Date(ms).toISOString();
      const expected = `${iso.slice(0, 10)} ${iso.slice(11, 19)}${iso.slice(20, 23) === "000" ? "" : iso.slice(19, 23)}+00`;
      assert.equal(formatEpochMs(ms), expected, String(ms));
    }
  });
});

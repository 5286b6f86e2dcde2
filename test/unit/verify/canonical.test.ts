import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  canonicalConverter,
  isUnconvertible,
  kindOfPgType,
  recordText,
} from "../../../src/verify/canonical.ts";
import { jsonbText } from "../../../src/verify/canonical-json.ts";
import {
  float4Text,
  float8Text,
  integerText,
  jsonbNumberText,
  numericText,
  numericTextOfDouble,
} from "../../../src/verify/canonical-number.ts";
import {
  civilFromDays,
  daysFromCivil,
  parseIsoDateTime,
  timestampText,
} from "../../../src/verify/canonical-time.ts";
import { baseTypeName, kindOfPlannedType } from "../../../src/verify/plan-tables.ts";

describe("float canonical text (PostgreSQL float8out, extra_float_digits = 1)", () => {
  it("uses shortest round-trip digits and PostgreSQL's notation thresholds", () => {
    const cases: [number, string][] = [
      [0, "0"],
      [-0, "-0"],
      [0.1, "0.1"],
      [100, "100"],
      [1e14, "100000000000000"],
      [1e15, "1e+15"],
      [123456789012345.6, "123456789012345.6"],
      [1e-4, "0.0001"],
      [1e-5, "1e-05"],
      [1.5e-7, "1.5e-07"],
      [1e21, "1e+21"],
      [5e-324, "5e-324"],
      [1.7976931348623157e308, "1.7976931348623157e+308"],
      [-2.5, "-2.5"],
      [Number.NaN, "NaN"],
      [Number.POSITIVE_INFINITY, "Infinity"],
      [Number.NEGATIVE_INFINITY, "-Infinity"],
    ];
    for (const [value, text] of cases) assert.equal(float8Text(value), text, String(value));
  });

  it("rounds real (float4) values and prints their own shortest digits", () => {
    assert.equal(float4Text(0.1), "0.1");
    assert.equal(float4Text(1234567), "1.234567e+06");
    assert.equal(float4Text(123456), "123456");
    assert.equal(float4Text(16777217), "1.6777216e+07");
    assert.equal(float4Text(3.4028235e38), "3.4028235e+38");
  });
});

describe("numeric canonical text", () => {
  it("is exact, plain and trimmed of trailing fractional zeros", () => {
    assert.equal(numericText("1.50"), "1.5");
    assert.equal(numericText("1e3"), "1000");
    assert.equal(numericText("-0.0"), "0");
    assert.equal(numericText("0.000100"), "0.0001");
    assert.equal(numericText("123456789012345678901234567890.123"), "123456789012345678901234567890.123");
    assert.equal(numericText("  +7 "), "7");
    assert.equal(numericText("NaN"), "NaN");
    assert.equal(numericText("abc"), undefined);
    assert.equal(numericText("1.2.3"), undefined);
  });

  it("keeps a JSON number's written scale, as jsonb does", () => {
    assert.equal(jsonbNumberText("1.50"), "1.50");
    assert.equal(jsonbNumberText("1e2"), "100");
    assert.equal(jsonbNumberText("1.50e-3"), "0.00150");
    assert.equal(jsonbNumberText("1.0e1"), "10");
    assert.equal(jsonbNumberText("-0"), "0");
    assert.equal(jsonbNumberText("-0.0"), "0.0");
    assert.equal(jsonbNumberText("12345678901234567890123"), "12345678901234567890123");
  });

  it("gives a double's numeric text as numericText of its shortest digits (fast path, 200k random doubles)", () => {
    // Random bit patterns cover every exponent; scaled values cover the plain-notation range users have.
    const view = new DataView(new ArrayBuffer(8));
    let state = 0x9e3779b9;
    const next32 = () => {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      return state >>> 0;
    };
    for (let i = 0; i < 200_000; i++) {
      view.setUint32(0, next32());
      view.setUint32(4, next32());
      const bits = view.getFloat64(0);
      const scaled = (next32() / 2 ** 32 - 0.5) * 10 ** ((next32() % 40) - 20);
      const rounded = Math.round(scaled * 1e6) / 1e6 + 1e-7;
      for (const value of [bits, scaled, rounded]) {
        if (!Number.isFinite(value) || value === 0) continue;
        assert.equal(numericTextOfDouble(value), numericText(String(value)), String(value));
      }
    }
    assert.equal(numericTextOfDouble(-0.000001), "-0.000001");
    assert.equal(numericTextOfDouble(1e-7), "0.0000001");
    assert.equal(numericTextOfDouble(-0), "0");
  });

  it("normalizes integers", () => {
    assert.equal(integerText("007"), "7");
    assert.equal(integerText("-0"), "0");
    assert.equal(integerText("-12"), "-12");
    assert.equal(integerText("1.5"), undefined);
  });
});

describe("date and time canonical text", () => {
  it("converts days both ways across eras", () => {
    for (const [y, m, d] of [
      [1970, 1, 1],
      [2000, 2, 29],
      [1, 1, 1],
      [0, 12, 31],
      [-44, 3, 15],
      [9999, 12, 31],
      [10000, 1, 1],
    ] as const) {
      assert.deepEqual(civilFromDays(daysFromCivil(y, m, d)), [y, m, d]);
    }
    assert.equal(daysFromCivil(1970, 1, 1), 0);
    assert.equal(daysFromCivil(2024, 1, 2), 19724);
  });

  it("prints timestamps like PostgreSQL with DateStyle ISO and TimeZone UTC", () => {
    const ts = (text: string, zone: boolean) => canonicalConverter(zone ? "timestamptz" : "timestamp")(text);
    assert.equal(ts("2024-01-02 03:04:05", false), "2024-01-02 03:04:05");
    assert.equal(ts("2024-01-02T03:04:05.100", false), "2024-01-02 03:04:05.1");
    assert.equal(ts("2024-01-02T03:04:05.123456Z", true), "2024-01-02 03:04:05.123456+00");
    assert.equal(ts("2024-01-02 03:04:05.5-01:30", true), "2024-01-02 04:34:05.5+00");
    assert.equal(ts("2024-01-02 03:04:05 +05", true), "2024-01-01 22:04:05+00");
    assert.equal(ts("2024-01-02 03:04:05+02", false), "2024-01-02 03:04:05");
    assert.equal(ts("2024-01-02T03:04", false), "2024-01-02 03:04:00");
    assert.equal(ts("2024-01-02 03:04:05.1234565", false), "2024-01-02 03:04:05.123456");
    assert.equal(ts("2024-01-02 03:04:05.1234575", false), "2024-01-02 03:04:05.123458");
    assert.equal(ts("2024-02-30", false)!.charCodeAt(0), 0);
    assert.equal(
      timestampText({ seconds: daysFromCivil(0, 1, 1) * 86400, micros: 0 }, true),
      "0001-01-01 00:00:00+00 BC",
    );
    assert.equal(parseIsoDateTime("not a date"), undefined);
  });

  it("reads unix seconds and milliseconds", () => {
    const ms = canonicalConverter("timestamptz", "epoch-ms");
    const s = canonicalConverter("timestamptz", "epoch-s");
    assert.equal(ms(1704164645123n), "2024-01-02 03:04:05.123+00");
    assert.equal(ms(-1), "1969-12-31 23:59:59.999+00");
    assert.equal(s(1704164645n), "2024-01-02 03:04:05+00");
    assert.equal(s(1704164645.25), "2024-01-02 03:04:05.25+00");
    assert.equal(canonicalConverter("date", "epoch-s")(1704164645n), "2024-01-02");
  });
});

describe("jsonb canonical text", () => {
  it("sorts keys by length then bytes, keeps the last duplicate, and spaces like jsonb", () => {
    assert.equal(
      jsonbText('{"b":1,"aa":2,"a":{"z":1.50,"y":1e2,"x":-0.0},"n":null,"arr":[1,2,{}],"e":[]}'),
      '{"a": {"x": 0.0, "y": 100, "z": 1.50}, "b": 1, "e": [], "n": null, "aa": 2, "arr": [1, 2, {}]}',
    );
    assert.equal(jsonbText('{"é":1,"z":2,"aa":3}'), '{"z": 2, "aa": 3, "é": 1}');
    assert.equal(jsonbText('{"a":1,"a":2}'), '{"a": 2}');
    assert.equal(jsonbText(' "\\u00e9\\u0001\\u007f\\ud83d\\ude00\\/" '), '"é\\u0001\x7f😀/"');
    assert.equal(jsonbText('"a\\nb\\"c\\\\"'), '"a\\nb\\"c\\\\"');
    assert.equal(jsonbText("12345678901234567890.10"), "12345678901234567890.10");
    assert.throws(() => jsonbText('{"a":}'));
    assert.throws(() => jsonbText('"\\u0000"'));
    assert.throws(() => jsonbText("[1] x"));
  });
});

describe("converters", () => {
  it("turn SQLite values into canonical text for the planned kind", () => {
    assert.equal(canonicalConverter("integer")(42n), "42");
    assert.equal(canonicalConverter("integer")(9223372036854775807n), "9223372036854775807");
    assert.equal(canonicalConverter("double")(0.1), "0.1");
    assert.equal(canonicalConverter("double")(3n), "3");
    assert.equal(canonicalConverter("numeric")(0.1), "0.1");
    assert.equal(canonicalConverter("numeric")(1e21), "1000000000000000000000");
    assert.equal(canonicalConverter("numeric")("2.500"), "2.5");
    assert.equal(canonicalConverter("boolean")(1n), "true");
    assert.equal(canonicalConverter("boolean")(0n), "false");
    assert.equal(canonicalConverter("bytea")(Buffer.from([0, 255, 16])), "00ff10");
    assert.equal(canonicalConverter("bytea")("hé"), "68c3a9");
    assert.equal(canonicalConverter("text")(""), "");
    assert.equal(canonicalConverter("text")(null), null);
    assert.equal(
      canonicalConverter("uuid")("{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11}"),
      "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
    );
    assert.equal(canonicalConverter("date")("2024-01-02"), "2024-01-02");
    // The date converter remembers texts it has seen: the second call answers the same.
    const date = canonicalConverter("date");
    for (let round = 0; round < 2; round++) {
      assert.equal(date(" 2024-1-2 "), "2024-01-02");
      assert.equal(date("0000-03-01"), "0001-03-01 BC");
      assert.ok(isUnconvertible(date("2024-02-30")));
      assert.ok(isUnconvertible(date(19723n)));
    }
    assert.equal(canonicalConverter("jsonb")('{"b": 1, "a": [true]}'), '{"a": [true], "b": 1}');
    assert.ok(isUnconvertible(canonicalConverter("integer")("12a")));
    assert.ok(isUnconvertible(canonicalConverter("jsonb")("{")));
    assert.ok(isUnconvertible(canonicalConverter("boolean")(2n)));
  });

  it("maps PostgreSQL type names to kinds", () => {
    assert.equal(kindOfPgType("int8"), "integer");
    assert.equal(kindOfPlannedType("varchar(80)"), "text");
    assert.equal(kindOfPlannedType("double precision"), "double");
    assert.equal(kindOfPlannedType("numeric(10, 2)"), "numeric");
    assert.equal(kindOfPlannedType("timestamptz"), "timestamptz");
    assert.equal(baseTypeName("Timestamp(3) With Time Zone"), "timestamp with time zone");
    assert.equal(kindOfPlannedType("interval"), "other");
  });
});

describe("row canonical text (PostgreSQL record output)", () => {
  it("keeps NULL and the empty string apart and quotes what needs quoting", () => {
    assert.equal(
      recordText(["a", null, "", "b c", 'x"y', "a\\b", "(", ","]),
      '(a,,"","b c","x""y","a\\\\b","(",",")',
    );
    assert.notEqual(recordText([null]), recordText([""]));
    assert.notEqual(recordText(["a", "b"]), recordText(["a,b"]));
    assert.equal(recordText(["1"]), "(1)");
  });
});

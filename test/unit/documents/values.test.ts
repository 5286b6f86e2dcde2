import assert from "node:assert/strict";
import { test } from "node:test";
import { formatPointer, getAtPointer, parsePointer } from "../../../src/documents/json-pointer.ts";
import { findJsonbProblem, mayHaveJsonbProblem } from "../../../src/documents/jsonb-check.ts";
import { TypeInference } from "../../../src/documents/typed-inference.ts";
import { firstInvalidUtf8 } from "../../../src/documents/utf8.ts";
import { convertValue, normalizeDate, parseColumnType } from "../../../src/documents/value-conversion.ts";

test("JSON pointers (RFC 6901)", () => {
  assert.deepEqual(parsePointer(""), []);
  assert.deepEqual(parsePointer("/a~1b/c~0d/0"), ["a/b", "c~d", "0"]);
  assert.equal(formatPointer(["a/b", "c~d", 0]), "/a~1b/c~0d/0");
  const doc = { a: { list: [10, { b: null }] }, "x/y": 1 };
  assert.equal(getAtPointer(doc, ["a", "list", "0"]), 10);
  assert.equal(getAtPointer(doc, ["a", "list", "1", "b"]), null);
  assert.equal(getAtPointer(doc, ["a", "list", "01"]), undefined);
  assert.equal(getAtPointer(doc, ["a", "missing"]), undefined);
  assert.equal(getAtPointer(doc, parsePointer("/x~1y")), 1);
  assert.equal(getAtPointer(doc, ["toString"]), undefined);
});

test("jsonb problems: NUL and lone surrogates, with their pointer", () => {
  assert.equal(findJsonbProblem({ a: ["ok", { b: "fine \ud83d\ude00" }] }), undefined);
  assert.deepEqual(findJsonbProblem({ a: ["ok", { b: "x\u0000" }] }), {
    pointer: "/a/1/b",
    reason: "NUL character (\\u0000), which PostgreSQL jsonb cannot store",
  });
  assert.match(findJsonbProblem({ "k\u0000": 1 })!.reason, /in a key/);
  assert.equal(findJsonbProblem(["\udc00"])!.pointer, "/0");
  assert.equal(findJsonbProblem({ s: "\ud800x" })!.pointer, "/s");
  assert.equal(mayHaveJsonbProblem('{"a":"plain"}'), false);
  assert.equal(mayHaveJsonbProblem('{"a":"\\u0000"}'), true);
});

test("strict UTF-8 validation finds the first bad byte", () => {
  assert.equal(firstInvalidUtf8(Buffer.from("plain ascii é € 😀")), -1);
  assert.equal(firstInvalidUtf8(Buffer.from([0x61, 0xc3, 0x28])), 1);
  assert.equal(firstInvalidUtf8(Buffer.from([0xc0, 0x80])), 0, "overlong");
  assert.equal(firstInvalidUtf8(Buffer.from([0xed, 0xa0, 0x80])), 0, "surrogate");
  assert.equal(firstInvalidUtf8(Buffer.from([0x41, 0xe2, 0x82])), 1, "truncated");
  assert.equal(firstInvalidUtf8(Buffer.from([0x41, 0xe2, 0x82]), true), -1, "truncated at a chunk end");
  assert.equal(firstInvalidUtf8(Buffer.from([0xf4, 0x90, 0x80, 0x80])), 0, "above U+10FFFF");
});

test("value conversion refuses rather than alters", () => {
  assert.deepEqual(convertValue("2024-02-29", "date"), { ok: true, value: "2024-02-29" });
  assert.deepEqual(convertValue("20240229", "date"), { ok: true, value: "2024-02-29" });
  assert.equal(normalizeDate("2023-02-29"), undefined);
  assert.equal(convertValue("2023-02-29", "date").ok, false);
  assert.deepEqual(convertValue(42, "bigint"), { ok: true, value: "42" });
  assert.deepEqual(convertValue("9223372036854775808", "bigint"), {
    ok: false,
    reason: "9223372036854775808 is out of range for bigint",
  });
  assert.equal(convertValue(1.5, "integer").ok, false);
  assert.deepEqual(convertValue("1.50", "numeric"), { ok: true, value: "1.50" });
  assert.deepEqual(convertValue("yes", "boolean"), { ok: true, value: true });
  assert.equal(convertValue("maybe", "boolean").ok, false);
  assert.deepEqual(convertValue("2024-01-01T10:00:00+02:00", "timestamptz"), {
    ok: true,
    value: "2024-01-01T10:00:00+02:00",
  });
  assert.equal(convertValue("2024-01-01T25:00:00Z", "timestamptz").ok, false);
  assert.equal(convertValue("2024-01-01T10:00:00Z", "timestamp").ok, false);
  assert.deepEqual(convertValue({ a: 1 }, "jsonb"), { ok: true, value: '{"a":1}' });
  assert.equal(convertValue({ a: "\u0000" }, "jsonb").ok, false);
  assert.equal(convertValue("a\u0000", "text").ok, false);
  assert.deepEqual(convertValue(null, "date"), { ok: true, value: null });
  assert.equal(parseColumnType("Timestamp With Time Zone"), "timestamptz");
  assert.equal(parseColumnType("blob"), undefined);
});

test("type inference scans every value: CSV text and JSON values", () => {
  const csv = new TypeInference({ flatten: false, csv: true });
  for (const row of [
    { id: "1", code: "007", amount: "1", flag: "true", day: "2024-01-01", mixed: "1" },
    // an unquoted empty CSV field arrives as null (the CSV source applies --empty-as)
    { id: "2", code: "8", amount: "2.5", flag: "FALSE", day: null, mixed: "x" },
  ])
    csv.add(row);
  assert.deepEqual(
    csv.columns().map((c) => `${c.name}:${c.type}:${c.nullable}`),
    [
      "id:bigint:false",
      "code:text:false",
      "amount:numeric:false",
      "flag:boolean:false",
      "day:date:true",
      "mixed:text:false",
    ],
  );
  const json = new TypeInference({ flatten: true, csv: false });
  json.add({ id: 1, when: "2024-01-01", a: { b: 1, c: [1] }, v: 1 });
  json.add({ id: 2, when: "2024-01-01T00:00:00Z", a: { b: 2.5 }, v: "one" });
  assert.deepEqual(
    json.columns(["id"]).map((c) => `${c.name}:${c.type}`),
    ["id_2:bigint", "when:timestamptz", "a_b:numeric", "a_c:jsonb", "v:jsonb"],
  );
});

import assert from "node:assert/strict";
import { test } from "node:test";
import {
  MAX_DOCUMENT_DEPTH,
  textExceedsDepth,
  valueExceedsDepth,
} from "../../../src/documents/json-depth.ts";
import {
  arrayElements,
  documentRange,
  exactInteger,
  rangeAtPointer,
} from "../../../src/documents/json-ranges.ts";
import { documentJsonbText } from "../../../src/verify/canonical-document.ts";
import { JsonCanonicalError, jsonbText } from "../../../src/verify/canonical-json.ts";

const nested = (levels: number, open = "[", close = "]") => `${open.repeat(levels)}${close.repeat(levels)}`;

test("depth: exactly MAX_DOCUMENT_DEPTH levels pass, one more does not (text and value, strings ignored)", () => {
  assert.equal(textExceedsDepth(nested(MAX_DOCUMENT_DEPTH)), false);
  assert.equal(textExceedsDepth(nested(MAX_DOCUMENT_DEPTH + 1)), true);
  assert.equal(textExceedsDepth(`{"s": "${"[".repeat(5000)}"}`), false);
  assert.equal(textExceedsDepth(`{"s": "\\"${"[".repeat(5000)}"}`), false);
  let value: unknown = [];
  for (let i = 1; i < MAX_DOCUMENT_DEPTH; i++) value = [value];
  assert.equal(valueExceedsDepth(value), false);
  assert.equal(valueExceedsDepth({ a: value }), true);
  assert.equal(valueExceedsDepth(JSON.parse(nested(100_000))), true);
});

test("canonical jsonb text is iterative: 100,000 levels of arrays and objects, same text as jsonb prints", () => {
  const levels = 100_000;
  assert.equal(jsonbText(nested(levels)), nested(levels));
  const objects = `${'{"a": '.repeat(levels)}1${"}".repeat(levels)}`;
  assert.equal(jsonbText(objects.replace(/ /g, "")), objects);
  assert.equal(documentJsonbText(nested(levels), JSON.parse(nested(levels))), nested(levels));
  // the same errors as before, at the same offsets
  assert.throws(
    () => jsonbText("[1,]"),
    (e: unknown) => e instanceof JsonCanonicalError && /offset 3/.test(String(e)),
  );
  assert.throws(() => jsonbText('{"a" 1}'), /expected :/);
  assert.throws(() => jsonbText('{"a": 1 "b": 2}'), /expected , or }/);
  assert.throws(() => jsonbText("[1 2]"), /expected , or ]/);
  assert.throws(() => jsonbText("{1: 2}"), /expected a key/);
  assert.throws(() => jsonbText("[] x"), /unexpected text/);
  assert.equal(
    jsonbText('{"b": [1, {"d": 2, "c": 3, "d": 4}], "a": 1.50}'),
    '{"a": 1.50, "b": [1, {"c": 3, "d": 4}]}',
  );
});

test("json ranges: the records of a file and the value at a pointer, as JSON.parse sees them, with their digits", () => {
  const text = `\ufeff {"meta": {"n": 9007199254740993}, "results": [ {"id": 1234567890123456789, "s": "a,]}\\"", "id": 12345678901234567890}, [1, [2]], "x" ,null ] }`;
  const bytes = Buffer.from(text, "utf8");
  const doc = documentRange(bytes);
  const results = rangeAtPointer(bytes, doc, ["results"])!;
  const elements = arrayElements(bytes, results).map((r) => bytes.toString("utf8", r.start, r.end));
  assert.deepEqual(elements, [
    `{"id": 1234567890123456789, "s": "a,]}\\"", "id": 12345678901234567890}`,
    "[1, [2]]",
    '"x"',
    "null",
  ]);
  assert.deepEqual(
    elements.map((e) => JSON.parse(e)),
    JSON.parse(text.slice(1)).results,
  );
  const at = (path: string[]) => {
    const r = rangeAtPointer(bytes, doc, path);
    return r && bytes.toString("utf8", r.start, r.end);
  };
  // the last of equal member names, as JSON.parse keeps it
  assert.equal(at(["results", "0", "id"]), "12345678901234567890");
  assert.equal(at(["meta", "n"]), "9007199254740993");
  assert.equal(at(["results", "1", "1", "0"]), "2");
  assert.equal(at(["results", "9"]), undefined);
  assert.equal(at(["meta", "missing"]), undefined);
  assert.equal(exactInteger(Number("9007199254740993"), "9007199254740993"), "9007199254740993");
  assert.equal(exactInteger(12, "12"), 12);
  assert.equal(exactInteger(1e21, "1e21"), 1e21);
});

import assert from "node:assert/strict";
import { test } from "node:test";
import { quoteIdent, quoteLiteral, quoteQualified } from "../../../src/pg/quote.ts";

test("quoteIdent always quotes and doubles embedded quotes", () => {
  assert.equal(quoteIdent("users"), '"users"');
  assert.equal(quoteIdent("Order Items"), '"Order Items"');
  assert.equal(quoteIdent("select"), '"select"');
  assert.equal(quoteIdent('a"b'), '"a""b"');
  assert.equal(quoteIdent('x"; drop table t; --'), '"x""; drop table t; --"');
});

test("quoteIdent rejects empty names and NUL", () => {
  assert.throws(() => quoteIdent(""), /empty identifier/);
  assert.throws(() => quoteIdent("a\u0000b"), /NUL/);
});

test("quoteQualified joins schema and name", () => {
  assert.equal(quoteQualified("My Schema", "t"), '"My Schema"."t"');
  assert.equal(quoteQualified(undefined, "t"), '"t"');
});

test("quoteLiteral escapes quotes and backslashes", () => {
  assert.equal(quoteLiteral("it's"), "'it''s'");
  assert.equal(quoteLiteral("a\\b"), "E'a\\\\b'");
});

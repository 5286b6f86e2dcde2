import assert from "node:assert/strict";
import { test } from "node:test";
import { copyStatement, encodeCopyRow, encodeCopyValue } from "../../../src/pg/copy-writer.ts";

test("COPY text encoding of every value kind", () => {
  assert.equal(encodeCopyValue(null), "\\N");
  assert.equal(encodeCopyValue(undefined), "\\N");
  assert.equal(encodeCopyValue(""), "");
  assert.equal(encodeCopyValue("a\tb\nc\\d\re"), "a\\tb\\nc\\\\d\\re");
  assert.equal(encodeCopyValue("\\N"), "\\\\N");
  assert.equal(encodeCopyValue(42), "42");
  assert.equal(encodeCopyValue(-0.5), "-0.5");
  assert.equal(encodeCopyValue(Number.NaN), "NaN");
  assert.equal(encodeCopyValue(Number.NEGATIVE_INFINITY), "-Infinity");
  assert.equal(encodeCopyValue(9007199254740993n), "9007199254740993");
  assert.equal(encodeCopyValue(true), "t");
  assert.equal(encodeCopyValue(Buffer.from([0, 255, 16])), "\\\\x00ff10");
  assert.equal(encodeCopyValue(new Date("2024-01-02T03:04:05.678Z")), "2024-01-02T03:04:05.678Z");
  assert.equal(encodeCopyValue({ a: "x\ty" }), '{"a":"x\\\\ty"}');
});

test("NUL in text is refused, never stripped", () => {
  assert.throws(() => encodeCopyValue("a\u0000b"), /NUL/);
});

test("rows and statements", () => {
  assert.equal(encodeCopyRow([1, null, "x"]), "1\t\\N\tx\n");
  assert.equal(
    copyStatement({ schema: "s", table: "Order Items", columns: ["id", "select"] }),
    'copy "s"."Order Items" ("id", "select") from stdin',
  );
});

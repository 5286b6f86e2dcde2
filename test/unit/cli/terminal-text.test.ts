import assert from "node:assert/strict";
import { test } from "node:test";
import { escapeControl } from "../../../src/cli/terminal-text.ts";

test("escapeControl makes escape sequences, bells, carriage returns and bidi overrides visible", () => {
  assert.equal(escapeControl("evil\u001b[31mred\u001b[0m"), "evil\\x1b[31mred\\x1b[0m");
  assert.equal(escapeControl("c\u001b]0;title\u0007"), "c\\x1b]0;title\\x07");
  assert.equal(escapeControl("ok\rhidden"), "ok\\x0dhidden");
  assert.equal(escapeControl("a\u009bb\u007f"), "a\\x9bb\\x7f");
  assert.equal(escapeControl("abc\u202edef"), "abc\\u202edef");
  // tabs, newlines and ordinary Unicode stay as they are
  assert.equal(escapeControl("table\tname\nné 名前 😀"), "table\tname\nné 名前 😀");
});

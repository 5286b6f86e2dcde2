import assert from "node:assert/strict";
import { test } from "node:test";
import { renderTable } from "../../../src/cli/output.ts";
import { parseSourceSpec } from "../../../src/sources/source-spec.ts";

test("renderTable pads text left and numbers right", () => {
  const out = renderTable(
    ["table", "rows"],
    [
      ["users", 1200],
      ["Order Items", 7],
    ],
  );
  assert.equal(
    out,
    ["table        rows", "-----------  ----", "users        1200", "Order Items     7"].join("\n"),
  );
});

test("source specs: prefixes and extensions", () => {
  assert.deepEqual(parseSourceSpec("sqlite:app.data"), {
    kind: "sqlite",
    path: "app.data",
    spec: "sqlite:app.data",
  });
  assert.equal(parseSourceSpec("app.sqlite3").kind, "sqlite");
  assert.equal(parseSourceSpec("dump.ndjson.gz").kind, "ndjson");
  assert.equal(parseSourceSpec("json:cache/").kind, "json");
  assert.equal(parseSourceSpec("export.csv").kind, "csv");
  assert.throws(() => parseSourceSpec("mysql:db"), /unknown source kind "mysql"/);
  assert.throws(() => parseSourceSpec("notes.txt"), /cannot tell what kind of source/);
  assert.throws(() => parseSourceSpec("csv:"), /names no path/);
});

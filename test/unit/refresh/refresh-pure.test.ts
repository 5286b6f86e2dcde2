import assert from "node:assert/strict";
import { test } from "node:test";
import { datasetProblems, singleTableDataset } from "../../../src/refresh/dataset.ts";
import { retained, spareSchemaName } from "../../../src/refresh/prune.ts";
import { refreshLockKey } from "../../../src/refresh/refresh-lock.ts";
import { swapStatements } from "../../../src/refresh/schema-swap.ts";

test("swapStatements: one quoted ALTER SCHEMA ... RENAME per step, in order", () => {
  assert.deepEqual(
    swapStatements([
      { from: "Shop", to: "Shop__prev_3" },
      { from: "Shop__next", to: "Shop" },
    ]),
    ['alter schema "Shop" rename to "Shop__prev_3"', 'alter schema "Shop__next" rename to "Shop"'],
  );
});

test("datasetProblems lists every problem at once", () => {
  assert.deepEqual(
    datasetProblems({
      name: "x",
      schema: "pgshift",
      checks: [],
      tables: [
        { table: "t", from: "" },
        { table: "t", from: "ndjson:a" },
      ],
    }),
    [
      'schema "pgshift" is reserved',
      'tables[0]: "from" (the source) is required',
      'table "t" is listed twice',
    ],
  );
  assert.deepEqual(datasetProblems({ name: "x", schema: "a__next", checks: [], tables: [] }), [
    'schema "a__next" holds "__next" or "__prev_", which refresh uses for its versions',
    "a dataset needs at least one table",
  ]);
  assert.throws(
    () => singleTableDataset({ schema: "x".repeat(41), table: "t", from: "ndjson:a" }),
    /longer than 40/,
  );
});

test("refreshLockKey: one key per dataset, apart from pgshift's other lock keys", () => {
  assert.notEqual(refreshLockKey("a"), refreshLockKey("b"));
  assert.equal(refreshLockKey("a"), refreshLockKey("a"));
  assert.equal(refreshLockKey("a") >> 32n, 0x7067_0007n);
});

test("retention: a previous version stays among the newest keep or while younger than keep-for", () => {
  const version = (retiredMs: number) => ({ version: 1, schema: "s__prev_1", retiredMs });
  assert.equal(retained(version(10), 0, 1, undefined), true);
  assert.equal(retained(version(10), 1, 1, undefined), false);
  assert.equal(retained(version(10), 1, 1, 60_000), true);
  assert.equal(retained(version(120_000), 1, 1, 60_000), false);
  assert.equal(retained(version(10), 5, undefined, undefined), false);
  assert.equal(spareSchemaName("recalls"), "recalls__spare");
});

import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { test } from "node:test";
import {
  pruneDataset,
  type PruneResult,
  refreshDataset,
  refreshStatus,
  rollbackDataset,
  singleTableDataset,
} from "../../../src/refresh/index.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import { writeTemp } from "../documents/fixtures.ts";

const db = useTestDatabase("refresh_recycle");

const ndjson = (records: object[]) => `${records.map((r) => JSON.stringify(r)).join("\n")}\n`;
const records = (n: number, changed: (i: number) => number) =>
  Array.from({ length: n }, (_, i) => ({ id: `k${String(i).padStart(3, "0")}`, v: changed(i), n: 1.5 }));

async function schemas(prefix: string): Promise<string[]> {
  const { rows } = await db().pool.query(
    "select nspname from pg_namespace where nspname like $1 || '%' order by nspname",
    [prefix],
  );
  return rows.map((r) => r.nspname);
}

/** Every column of every row, as text: what a copy of live plus the delta would hold. */
async function rowsOf(schema: string): Promise<string[]> {
  const { rows } = await db().pool.query(`select t::text as r from "${schema}".items t order by id`);
  return rows.map((r) => r.r);
}

const deltaOf = (n: number, v: number, every: number, offset: number) =>
  ndjson(records(n, () => v).filter((_, i) => i % every === offset));

/**
 * Two full loads of 200 records, then two deltas (keep 1): the first delta's prune keeps version 1 as the
 * spare, loaded in full (every row's loaded_at differs from live's), so the second delta copies live and
 * keeps version 2 as the spare, which differs from live only in the deltas' rows.
 */
async function steadyState(schema: string) {
  const full = await writeTemp(`${schema}-full.ndjson`, ndjson(records(200, () => 0)));
  const dataset = (from: string) =>
    singleTableDataset({ schema, table: "items", from: `ndjson:${from}`, key: "/id", gin: true });
  await refreshDataset({ pool: db().pool, dataset: dataset(full), keep: 1 });
  await refreshDataset({ pool: db().pool, dataset: dataset(full), keep: 1 });
  const delta1 = await writeTemp(`${schema}-d1.ndjson`, deltaOf(200, 1, 10, 0));
  const first = await refreshDataset({ pool: db().pool, dataset: dataset(delta1), delta: true, keep: 1 });
  const delta2 = await writeTemp(`${schema}-d2.ndjson`, deltaOf(200, 2, 10, 1));
  const second = await refreshDataset({ pool: db().pool, dataset: dataset(delta2), delta: true, keep: 1 });
  return { dataset, first, second };
}

test("a delta build brings the spare in line with live instead of copying it, and next is what a copy would be", async () => {
  const { dataset, first, second } = await steadyState("rc");
  assert.equal(first.recycled, undefined);
  assert.deepEqual((first.prune as PruneResult).spare, { version: 1, schema: "rc__spare" });
  assert.deepEqual(second.recycled, { schema: "rc__spare" });
  assert.equal(second.tables[0]!.recycledFrom, undefined, "version 1 was loaded in full: every row differs");
  assert.equal(second.tables[0]!.check!.identical, true);
  assert.deepEqual((second.prune as PruneResult).spare, { version: 2, schema: "rc__spare" });
  assert.deepEqual(await schemas("rc"), ["rc", "rc__prev_3", "rc__spare"]);

  const liveBefore = await rowsOf("rc");
  const deleted = await writeTemp("rc-deleted.txt", "k005\nk006\n");
  const delta3 = await writeTemp(
    "rc-d3.ndjson",
    ndjson([
      ...records(200, () => 3).filter((_, i) => i % 10 === 5 && i !== 5),
      { id: "k900", v: 3, n: 1.5 },
    ]),
  );
  const third = await refreshDataset({
    pool: db().pool,
    dataset: dataset(delta3),
    delta: true,
    deletedKeysFile: deleted,
    keep: 1,
  });
  assert.equal(third.status, "switched");
  assert.equal(third.tables[0]!.recycledFrom, "rc__spare");
  assert.equal(third.tables[0]!.check!.identical, true);
  assert.deepEqual(
    [third.tables[0]!.inserted, third.tables[0]!.updated, third.tables[0]!.deleted],
    [1, 19, 2],
  );
  assert.deepEqual(await schemas("rc"), ["rc", "rc__prev_4", "rc__spare"]);
  // untouched rows are live's rows in every column (loaded_at, source_file, content_hash included)
  const changedKeys = new Set([
    "k005",
    "k006",
    "k900",
    ...records(200, () => 3)
      .filter((_, i) => i % 10 === 5)
      .map((r) => r.id),
  ]);
  const untouched = (all: string[]) => all.filter((r) => !changedKeys.has(/^\(([^,]+),/.exec(r)![1]!));
  const after = await rowsOf("rc");
  assert.equal(after.length, 200 - 2 + 1);
  assert.deepEqual(untouched(after), untouched(liveBefore));
  const { rows: indexes } = await db().pool.query(
    "select indexname from pg_indexes where schemaname = 'rc' order by indexname",
  );
  assert.deepEqual(
    indexes.map((r) => r.indexname),
    ["items_doc_gin", "items_pkey"],
  );
  const status = await refreshStatus({ pool: db().pool, dataset: "rc" });
  assert.deepEqual(
    status.previous.map((v) => v.version),
    [4],
  );
  assert.deepEqual(status.spare, { version: 3, schema: "rc__spare" });
  // the version the delta went live over is intact: rollback returns to it
  await rollbackDataset({ pool: db().pool, dataset: "rc" });
  assert.deepEqual(await rowsOf("rc"), liveBefore);
  // an explicit prune frees the spare too
  await pruneDataset({ pool: db().pool, dataset: "rc", keep: 0 });
  assert.deepEqual(await schemas("rc"), ["rc"]);
});

test("without a retention no spare is kept; a spare of another shape is not used, live is copied", async () => {
  const full = await writeTemp("rn-full.ndjson", ndjson(records(50, () => 0)));
  const delta = await writeTemp("rn-d.ndjson", deltaOf(50, 1, 10, 0));
  const dataset = (from: string) =>
    singleTableDataset({ schema: "rn", table: "items", from: `ndjson:${from}`, key: "/id", gin: true });
  await refreshDataset({ pool: db().pool, dataset: dataset(full) });
  await refreshDataset({ pool: db().pool, dataset: dataset(full) });
  const kept = await refreshDataset({ pool: db().pool, dataset: dataset(delta), delta: true });
  assert.equal(kept.recycled, undefined);
  assert.deepEqual(await schemas("rn"), ["rn", "rn__prev_1", "rn__prev_2"]);
  // --keep 1: version 1 becomes the spare, version 2 stays the rollback target
  await refreshDataset({ pool: db().pool, dataset: dataset(delta), delta: true, keep: 1 });
  await refreshDataset({ pool: db().pool, dataset: dataset(delta), delta: true, keep: 1 });
  assert.deepEqual(await schemas("rn"), ["rn", "rn__prev_4", "rn__spare"]);
  await db().pool.query('drop index "rn__spare".items_doc_gin');
  const again = await refreshDataset({ pool: db().pool, dataset: dataset(delta), delta: true, keep: 1 });
  assert.equal(again.status, "switched");
  assert.equal(again.tables[0]!.recycledFrom, undefined);
  assert.equal(again.tables[0]!.check!.identical, true);
  // a full refresh keeps no spare
  await refreshDataset({ pool: db().pool, dataset: dataset(full), keep: 1 });
  assert.deepEqual(await schemas("rn"), ["rn", "rn__prev_6"]);
});

test("a failed delta leaves live and the rollback target untouched; only the spare is used up", async () => {
  const { dataset } = await steadyState("rf");
  const liveBefore = await rowsOf("rf");
  const previousBefore = await rowsOf("rf__prev_3");
  const bad = await writeTemp("rf-bad.ndjson", '{"id": "k001", "v": 9, "n": 1.5}\n{"id": "k002", "v": \n');
  await assert.rejects(refreshDataset({ pool: db().pool, dataset: dataset(bad), delta: true, keep: 1 }), /./);
  assert.deepEqual(await rowsOf("rf"), liveBefore);
  assert.deepEqual(await rowsOf("rf__prev_3"), previousBefore);
  assert.deepEqual(await schemas("rf"), ["rf", "rf__prev_3"]);
  await writeFile(bad, '{"id": "k001", "v": 9, "n": 1.5}\n');
  const fixed = await refreshDataset({ pool: db().pool, dataset: dataset(bad), delta: true, keep: 1 });
  assert.equal(fixed.status, "switched");
  assert.deepEqual(await schemas("rf"), ["rf", "rf__prev_4", "rf__spare"]);
});

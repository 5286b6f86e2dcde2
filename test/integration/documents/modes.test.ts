import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { test } from "node:test";
import { DocumentStore } from "../../../src/documents/document-store.ts";
import { importDocuments } from "../../../src/documents/import-documents.ts";
import { quoteIdent } from "../../../src/pg/quote.ts";
import { verifyDocuments } from "../../../src/verify/document-verify.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import { writeTemp } from "./fixtures.ts";

const db = useTestDatabase("docs_modes");

const ndjson = (records: object[]) => `${records.map((r) => JSON.stringify(r)).join("\n")}\n`;

test("upsert reports inserted, updated and unchanged; --mirror deletes keys not in the import", async () => {
  const path = await writeTemp(
    "recalls.ndjson",
    ndjson([
      { id: "r1", v: 1 },
      { id: "r2", v: 1 },
      { id: "r3", v: 1 },
    ]),
  );
  const first = await importDocuments({
    pool: db().pool,
    from: `ndjson:${path}`,
    key: "/id",
    mode: "upsert",
  });
  assert.deepEqual([first.inserted, first.updated, first.unchanged, first.tableCreated], [3, 0, 0, true]);
  const { rows: before } = await db().pool.query("select id, loaded_at from recalls order by id");

  await writeFile(
    path,
    ndjson([
      { id: "r1", v: 1 },
      { id: "r2", v: 2 },
      { id: "r4", v: 1 },
    ]),
  );
  const second = await importDocuments({
    pool: db().pool,
    from: `ndjson:${path}`,
    key: "/id",
    mode: "upsert",
  });
  assert.deepEqual([second.inserted, second.updated, second.unchanged, second.deleted], [1, 1, 1, 0]);
  const { rows: after } = await db().pool.query(
    "select id, doc->>'v' as v, loaded_at from recalls order by id",
  );
  assert.deepEqual(
    after.map((r) => [r.id, r.v]),
    [
      ["r1", "1"],
      ["r2", "2"],
      ["r3", "1"],
      ["r4", "1"],
    ],
  );
  // the unchanged row was not rewritten
  assert.equal(after[0].loaded_at.getTime(), before[0].loaded_at.getTime());

  const third = await importDocuments({
    pool: db().pool,
    from: `ndjson:${path}`,
    key: "/id",
    mode: "upsert",
    mirror: true,
  });
  assert.deepEqual([third.inserted, third.updated, third.unchanged, third.deleted], [0, 0, 3, 1]);
  assert.deepEqual(third.deletedKeys, ["r3"]);
  const { rows: mirrored } = await db().pool.query("select id from recalls order by id");
  assert.deepEqual(
    mirrored.map((r) => r.id),
    ["r1", "r2", "r4"],
  );
});

test("replace swaps in a new table atomically, keeping indexes; insert appends and refuses existing keys", async () => {
  const path = await writeTemp("approvals.ndjson", ndjson([{ n: "a" }, { n: "b" }]));
  await importDocuments({ pool: db().pool, from: `ndjson:${path}`, key: "/n", gin: true });
  await writeFile(path, ndjson([{ n: "c" }]));
  const appended = await importDocuments({ pool: db().pool, from: `ndjson:${path}`, key: "/n" });
  assert.equal(appended.inserted, 1);
  assert.equal(appended.tableCreated, false);
  await assert.rejects(
    importDocuments({ pool: db().pool, from: `ndjson:${path}`, key: "/n" }),
    (error: Error & { code?: string }) => {
      assert.equal(error.code, "duplicate_key");
      assert.match(error.message, /already has a row with that key .*\(n\)=\(c\).*--mode upsert/);
      return true;
    },
  );
  // the failed insert left nothing behind
  const { rows: count } = await db().pool.query("select count(*)::int as n from approvals");
  assert.equal(count[0].n, 3);

  await writeFile(path, ndjson([{ n: "x" }, { n: "y" }]));
  const replaced = await importDocuments({
    pool: db().pool,
    from: `ndjson:${path}`,
    key: "/n",
    mode: "replace",
    gin: true,
  });
  assert.deepEqual([replaced.inserted, replaced.deleted], [2, 3]);
  const { rows } = await db().pool.query("select n from approvals order by n");
  assert.deepEqual(
    rows.map((r) => r.n),
    ["x", "y"],
  );
  const { rows: indexes } = await db().pool.query(
    "select indexname from pg_indexes where tablename = 'approvals' order by indexname",
  );
  assert.deepEqual(
    indexes.map((r) => r.indexname),
    ["approvals_doc_gin", "approvals_pkey"],
  );
  const { rows: leftovers } = await db().pool.query(
    "select relname from pg_class where relname like '%pgshift_new%'",
  );
  assert.equal(leftovers.length, 0);
});

test("duplicate keys within one import: fail names both places; last-wins keeps the last and reports", async () => {
  const path = await writeTemp(
    "dups.ndjson",
    ndjson([
      { id: 1, v: "first" },
      { id: 2, v: "x" },
      { id: 1, v: "second" },
      { id: 1, v: "third" },
    ]),
  );
  await assert.rejects(
    importDocuments({ pool: db().pool, from: `ndjson:${path}`, key: "/id" }),
    /duplicate key \["1"\] at dups\.ndjson:3 \(first seen in dups\.ndjson\); pass --duplicates last-wins/,
  );
  const { rows: none } = await db().pool.query("select to_regclass('public.dups') as t");
  assert.equal(none[0].t, null);

  const result = await importDocuments({
    pool: db().pool,
    from: `ndjson:${path}`,
    key: "/id",
    duplicates: "last-wins",
  });
  assert.equal(result.duplicates.count, 2);
  assert.deepEqual(
    result.duplicates.sample.map((d) => d.location),
    ["dups.ndjson:3", "dups.ndjson:4"],
  );
  assert.equal(result.recordsRead, 4);
  assert.equal(result.inserted, 2);
  const { rows } = await db().pool.query("select id, doc->>'v' as v from dups order by id");
  assert.deepEqual(
    rows.map((r) => [r.id, r.v]),
    [
      ["1", "third"],
      ["2", "x"],
    ],
  );
  const upserted = await importDocuments({
    pool: db().pool,
    from: `ndjson:${path}`,
    key: "/id",
    duplicates: "last-wins",
    mode: "upsert",
  });
  assert.deepEqual([upserted.inserted, upserted.updated, upserted.unchanged], [0, 0, 2]);
});

test("typed tables take all three modes too (CSV upsert by key)", async () => {
  const path = await writeTemp("prices.csv", "sku,price,active\nA,1.50,true\nB,2,false\n");
  const first = await importDocuments({ pool: db().pool, from: `csv:${path}`, key: "/sku", mode: "upsert" });
  assert.equal(first.inserted, 2);
  await writeFile(path, "sku,price,active\nA,1.75,true\nB,2,false\nC,3,true\n");
  const second = await importDocuments({ pool: db().pool, from: `csv:${path}`, key: "/sku", mode: "upsert" });
  assert.deepEqual([second.inserted, second.updated, second.unchanged], [1, 1, 1]);
  const { rows } = await db().pool.query("select sku, price::text as price, active from prices order by sku");
  assert.deepEqual(rows, [
    { sku: "A", price: "1.75", active: true },
    { sku: "B", price: "2", active: false },
    { sku: "C", price: "3", active: true },
  ]);
  const replaced = await importDocuments({
    pool: db().pool,
    from: `csv:${path}`,
    key: "/sku",
    mode: "replace",
  });
  assert.equal(replaced.inserted, 3);
});

test("replace explains when a view depends on the table; the old data stays", async () => {
  const path = await writeTemp("viewed.ndjson", ndjson([{ id: "a" }]));
  await importDocuments({ pool: db().pool, from: `ndjson:${path}`, key: "/id" });
  await db().pool.query("create view viewed_ids as select id from viewed");
  await assert.rejects(
    importDocuments({ pool: db().pool, from: `ndjson:${path}`, key: "/id", mode: "replace" }),
    /--mode replace swaps in a new public\.viewed, but other objects depend on the old one .*view viewed_ids/,
  );
  const { rows } = await db().pool.query("select id from viewed_ids");
  assert.deepEqual(rows, [{ id: "a" }]);
});

test("two table names over 63 bytes that differ at the end stay two tables; replace of one leaves the other", async () => {
  const stem = "fda_device_recalls_by_product_code_and_fiscal_year_quarter";
  const first = `${stem}_1_extra1234`;
  const second = `${stem}_2_extra1234`;
  assert.equal(Buffer.byteLength(first), 70);
  const path1 = await writeTemp("q1.ndjson", ndjson([{ id: "a", q: 1 }]));
  const path2 = await writeTemp("q2.ndjson", ndjson([{ id: "b", q: 2 }]));
  const one = await importDocuments({ pool: db().pool, from: `ndjson:${path1}`, table: first, key: "/id" });
  const two = await importDocuments({
    pool: db().pool,
    from: `ndjson:${path2}`,
    table: second,
    key: "/id",
    mode: "replace",
  });
  assert.notEqual(one.target.table, two.target.table);
  assert.equal(one.tableRequested, first);
  assert.ok(Buffer.byteLength(one.target.table) <= 63);
  assert.match(one.target.table, /_[0-9a-f]{8}$/);
  const again = await importDocuments({
    pool: db().pool,
    from: `ndjson:${path2}`,
    table: second,
    key: "/id",
    mode: "replace",
  });
  assert.equal(again.deleted, 1);
  const { rows } = await db().pool.query(`select id from ${quoteIdent(one.target.table)}`);
  assert.deepEqual(
    rows.map((r) => r.id),
    ["a"],
  );
  const store = new DocumentStore(db().pool, { table: second });
  assert.deepEqual(await store.get("b"), { id: "b", q: 2 });
  const verified = await verifyDocuments({
    pool: db().pool,
    from: `ndjson:${path1}`,
    table: first,
    key: "/id",
  });
  assert.equal(verified.tables[0]!.status, "identical");
});

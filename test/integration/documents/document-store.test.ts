import assert from "node:assert/strict";
import { test } from "node:test";
import { DocumentStore, mapKey } from "../../../src/documents/document-store.ts";
import { importDocuments } from "../../../src/documents/import-documents.ts";
import { createPool } from "../../../src/pg/pool.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import { writeTemp } from "./fixtures.ts";

const db = useTestDatabase("docs_store");

test("DocumentStore over an imported table: get, getMany, containing, wherePath, search, page, count", async () => {
  const records = Array.from({ length: 25 }, (_, i) => ({
    k: `K${String(i).padStart(3, "0")}`,
    device: i % 5 === 0 ? `Cardiac Stent ${i}` : `Pump ${i}`,
    openfda: { class: i % 2 === 0 ? "II" : "III" },
    n: i,
  }));
  const path = await writeTemp("devices.ndjson", records.map((r) => JSON.stringify(r)).join("\n"));
  await importDocuments({ pool: db().pool, from: `ndjson:${path}`, key: "/k", gin: true, trgm: "/device" });
  const store = new DocumentStore(db().pool, { table: "devices", keyColumns: ["k"] });

  assert.deepEqual(await store.get("K007"), records[7]);
  assert.equal(await store.get("nope"), undefined);
  const many = await store.getMany(["K001", "K002", "missing"]);
  assert.deepEqual([...many.keys()].sort(), ["K001", "K002"]);
  assert.deepEqual(many.get("K002"), records[2]);

  const contained = await store.containing({ openfda: { class: "III" }, n: 3 });
  assert.deepEqual(
    contained.map((r) => r.key),
    ["K003"],
  );
  const byPath = await store.wherePath("/openfda/class", "II");
  assert.equal(byPath.length, 13);
  assert.deepEqual(
    (await store.wherePath("/n", 24)).map((r) => r.key),
    ["K024"],
  );

  const found = await store.search("cardiac st", { path: "/device" });
  assert.deepEqual(
    found.map((r) => r.key),
    ["K000", "K005", "K010", "K015", "K020"],
  );
  assert.deepEqual(await store.search("100%_", { path: "/device" }), []);

  const first = await store.page({ limit: 10 });
  assert.equal(first.rows.length, 10);
  assert.equal(first.next, "K009");
  const second = await store.page({ after: first.next, limit: 10 });
  assert.equal(second.rows[0]!.key, "K010");
  const third = await store.page({ after: second.next, limit: 10 });
  assert.equal(third.rows.length, 5);
  assert.equal(third.next, undefined);
  assert.equal(await store.count(), 25);
});

test("DocumentStore.wherePath keeps equality's meaning with the GIN hint: objects, arrays, array indexes, and the index is used", async () => {
  const records = [
    { k: "A", o: { x: 1 }, tags: ["red", "blue"], list: [{ c: "1" }] },
    { k: "B", o: { x: 1, y: 2 }, tags: ["red"], list: [{ c: "2" }] },
    { k: "C", o: { x: [1, 2] }, tags: "red", list: { c: "1" } },
    { k: "D", o: null, tags: [], list: [] },
  ];
  const path = await writeTemp("shapes.ndjson", records.map((r) => JSON.stringify(r)).join("\n"));
  await importDocuments({ pool: db().pool, from: `ndjson:${path}`, key: "/k", gin: true });
  const store = new DocumentStore(db().pool, { table: "shapes", keyColumns: ["k"] });
  const keys = async (pointer: string, value: unknown) =>
    (await store.wherePath(pointer, value)).map((r) => r.key);
  // {"o": {"x": 1}} is contained in B's o too: equality, not containment, decides
  assert.deepEqual(await keys("/o", { x: 1 }), ["A"]);
  assert.deepEqual(await keys("/o/x", 1), ["A", "B"]);
  assert.deepEqual(await keys("/o/x", [1, 2]), ["C"]);
  assert.deepEqual(await keys("/o", null), ["D"]);
  assert.deepEqual(await keys("/tags", ["red"]), ["B"]);
  assert.deepEqual(await keys("/tags", "red"), ["C"]);
  // a digit step is an array index for #> (no containment hint: as an object key it would miss these)
  assert.deepEqual(await keys("/tags/0", "red"), ["A", "B"]);
  assert.deepEqual(await keys("/list/0/c", "1"), ["A"]);
  const client = await db().pool.connect();
  try {
    // can the GIN index answer it: with 4 rows a planner may as well walk the primary key in key order
    // (PostgreSQL 18 does), so both plain scans are off, in this transaction only
    await client.query("begin");
    await client.query("set local enable_seqscan = off");
    await client.query("set local enable_indexscan = off");
    const { rows } = await client.query(
      `explain select k from public.shapes where doc @> '{"o":{"x":1}}' and doc #> '{o,x}' = '1' order by k limit 10`,
    );
    await client.query("rollback");
    assert.match(rows.map((r) => r["QUERY PLAN"]).join("\n"), /shapes_doc_gin/);
  } finally {
    client.release();
  }
});

test("DocumentStore.getMany over a bigint key reads the keys as the column's type, through its index", async () => {
  const store = new DocumentStore(db().pool, {
    schema: "app",
    table: "numbered",
    keyColumns: ["id"],
    keyTypes: ["bigint"],
  });
  await store.ensureTable();
  await db().pool.query(
    `insert into app.numbered (id, doc, source_file, content_hash)
     select i, jsonb_build_object('n', i), 'seed', md5(i::text) from generate_series(1, 5000) i`,
  );
  await db().pool.query("analyze app.numbered");
  const many = await store.getMany([7, 4999, 123456]);
  assert.deepEqual([...many.keys()].sort(), ["4999", "7"]);
  assert.deepEqual(many.get("7"), { n: 7 });
  const plan = await db().pool.query("explain select id, doc from app.numbered where id = any($1)", [
    ["7", "4999"],
  ]);
  assert.match(plan.rows.map((r) => r["QUERY PLAN"]).join("\n"), /Index Scan|Bitmap Index Scan/);
});

test("DocumentStore.ensureTable, put (upsert), delete, has; composite keys as arrays", async () => {
  const store = new DocumentStore(db().pool, {
    schema: "app",
    table: "edges",
    keyColumns: ["project", "edge_id"],
    keyTypes: ["text", "bigint"],
  });
  await store.ensureTable();
  await store.ensureTable();
  await store.put(["p1", 1], { from: "a", to: "b" });
  await store.put(["p1", 2], { from: "b", to: "c" });
  await store.put(["p1", 1], { from: "a", to: "z" });
  assert.deepEqual(await store.get(["p1", 1]), { from: "a", to: "z" });
  assert.equal(await store.count(), 2);
  assert.equal(await store.has(["p1", 2]), true);
  const many = await store.getMany([
    ["p1", 1],
    ["p1", 2],
    ["p2", 1],
  ]);
  assert.deepEqual(many.get(mapKey(["p1", 2])), { from: "b", to: "c" });
  assert.equal(many.size, 2);
  const { rows } = await db().pool.query("select content_hash, source_file from app.edges where edge_id = 1");
  assert.equal(rows[0].content_hash.length, 64);
  assert.equal(rows[0].source_file, "DocumentStore.put");
  assert.equal(await store.delete(["p1", 1]), true);
  assert.equal(await store.delete(["p1", 1]), false);
  assert.deepEqual(
    (await store.page()).rows.map((r) => r.key),
    [["p1", "2"]],
  );
  await assert.rejects(store.get("p1"), /2 key column\(s\) \(project, edge_id\); got 1 value/);
  // values are parameters: a quote in a key is just data
  const plain = new DocumentStore(db().pool, { table: "kv" });
  await plain.ensureTable();
  await plain.put("it's'); drop table kv; --", { ok: true });
  assert.deepEqual(await plain.get("it's'); drop table kv; --"), { ok: true });
});

test("DocumentStore prepares its key queries once per connection, one name per query; the rest stay unprepared", async () => {
  // One connection, so pg_prepared_statements below sees the statements the stores prepared.
  const pool = createPool({ url: db().url, max: 1 });
  try {
    const prepared = async () =>
      (
        await pool.query<{ name: string; statement: string }>(
          "select name, statement from pg_prepared_statements order by statement",
        )
      ).rows;
    const a = new DocumentStore(pool, { schema: "prep", table: "a", keyColumns: ["id"] });
    const b = new DocumentStore(pool, {
      schema: "prep",
      table: "b",
      keyColumns: ["id", "n"],
      keyTypes: ["text", "bigint"],
    });
    await a.ensureTable();
    await b.ensureTable();
    const exercise = async () => {
      await a.put("x", { v: 1 });
      await a.put("y", { v: 2 });
      assert.deepEqual(await a.get("x"), { v: 1 });
      assert.equal(await a.has("y"), true);
      assert.equal(await a.delete("y"), true);
      assert.equal(await a.count(), 1);
      assert.deepEqual((await a.page({ limit: 1 })).rows, [{ key: "x", doc: { v: 1 } }]);
      assert.deepEqual((await a.page({ after: "w", limit: 1 })).rows, [{ key: "x", doc: { v: 1 } }]);
      await b.put(["p", 1], { v: 3 });
      await b.put(["p", 2], { v: 4 });
      assert.deepEqual(await b.get(["p", 2]), { v: 4 });
      assert.deepEqual(
        (await b.page({ after: ["p", 1] })).rows.map((r) => r.key),
        [["p", "2"]],
      );
    };
    await exercise();
    const first = await prepared();
    assert.ok(first.every((s) => /^pgshift_ds_[0-9a-f]{24}$/.test(s.name)));
    assert.equal(new Set(first.map((s) => s.name)).size, first.length);
    // a: get, has, put, delete, count, page, page after; b: put, get, page after
    assert.equal(first.filter((s) => s.statement.includes('"prep"."a"')).length, 7);
    assert.equal(first.filter((s) => s.statement.includes('"prep"."b"')).length, 3);
    await exercise();
    assert.deepEqual(await prepared(), first, "the second round reuses the prepared statements");

    // Value-dependent plans are left to the planner on every call.
    await a.containing({ v: 1 });
    await a.wherePath("/v", 1);
    await a.search("x", { path: "/v" });
    await a.getMany(["x"]);
    assert.equal((await prepared()).length, first.length);

    // The server re-analyses a prepared statement when its table is replaced.
    await pool.query("drop table prep.a");
    await a.ensureTable();
    assert.equal(await a.get("x"), undefined);
    await a.put("x", { v: 9 });
    assert.deepEqual(await a.get("x"), { v: 9 });

    const plain = new DocumentStore(pool, { schema: "prep", table: "a", preparedStatements: false });
    await pool.query("deallocate all");
    assert.deepEqual(await plain.get("x"), { v: 9 });
    assert.equal(await plain.has("x"), true);
    assert.deepEqual(await prepared(), []);
  } finally {
    await pool.end();
  }
});

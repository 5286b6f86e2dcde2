import assert from "node:assert/strict";
import { test } from "node:test";
import { importDocuments } from "../../../src/documents/import-documents.ts";
import { jsonFileSource } from "../../../src/sources/json/json-file-source.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import { writeTemp, writeTree } from "./fixtures.ts";

const db = useTestDatabase("docs_json");

test("json:DIR with one-record files, arrays and nested directories, in sorted order", async () => {
  const root = await writeTree({
    "b.json": JSON.stringify({ id: "b1", n: 2 }),
    "a.json": JSON.stringify([
      { id: "a1", n: 1 },
      { id: "a2", n: 1.5 },
    ]),
    "sub/c.json": JSON.stringify({ id: "c1", tags: ["x", "y"] }),
    "notes.txt": "not json, ignored",
    ".hidden.json": "{ broken",
  });
  const result = await importDocuments({
    pool: db().pool,
    from: `json:${root}`,
    key: "/id",
    table: "dir_docs",
  });
  assert.equal(result.files, 3);
  assert.equal(result.recordsRead, 4);
  assert.equal(result.inserted, 4);
  const { rows } = await db().pool.query("select id, source_file, doc from dir_docs order by id");
  assert.deepEqual(
    rows.map((r) => [r.id, r.source_file]),
    [
      ["a1", "a.json"],
      ["a2", "a.json"],
      ["b1", "b.json"],
      ["c1", "sub/c.json"],
    ],
  );
  assert.deepEqual(rows[3].doc, { id: "c1", tags: ["x", "y"] });
});

test("json:DIR of API pages: envelopes with records at --records", async () => {
  const page = (n: number, ids: string[]) =>
    JSON.stringify({
      meta: { page: n },
      results: ids.map((id) => ({ k_number: id, openfda: { name: `dev ${id}` } })),
    });
  const root = await writeTree({
    "clearances/page-1.json": page(1, ["K1", "K2"]),
    "clearances/page-2.json": page(2, ["K3"]),
    "clearances/page-3.json": page(3, []),
  });
  const result = await importDocuments({
    pool: db().pool,
    from: `json:${root}/clearances`,
    key: "/k_number",
    records: "/results",
    columns: ["device_name=/openfda/name"],
  });
  assert.equal(result.target.table, "clearances");
  assert.equal(result.files, 3);
  assert.equal(result.recordsRead, 3);
  const { rows } = await db().pool.query("select k_number, device_name from clearances order by k_number");
  assert.deepEqual(
    rows.map((r) => [r.k_number, r.device_name]),
    [
      ["K1", "dev K1"],
      ["K2", "dev K2"],
      ["K3", "dev K3"],
    ],
  );
});

test("json:FILE streamed with stream-json: a top-level array and an envelope", async () => {
  const records = Array.from({ length: 500 }, (_, i) => ({
    id: i,
    name: `r${i}`,
    deep: { list: [i, { s: "é\u2028" }] },
  }));
  const arrayPath = await writeTemp("big-array.json", JSON.stringify(records, null, 1));
  const streamed = jsonFileSource(arrayPath, { wholeFileLimit: 0 });
  const result = await importDocuments({
    pool: db().pool,
    from: streamed,
    key: "/id:bigint",
    table: "streamed",
  });
  assert.equal(result.recordsRead, 500);
  assert.equal(result.inserted, 500);
  const { rows } = await db().pool.query("select id, doc from streamed where id in (0, 499) order by id");
  assert.deepEqual(rows[1].doc, records[499]);
  assert.equal(rows[0].id, "0");

  const envelopePath = await writeTemp(
    "envelope.json",
    JSON.stringify({ meta: { total: 3, results: "decoy" }, results: records.slice(0, 3), trailer: [1, 2] }),
  );
  const enveloped = jsonFileSource(envelopePath, { wholeFileLimit: 0, recordsPointer: ["results"] });
  const second = await importDocuments({ pool: db().pool, from: enveloped, key: "/id", table: "enveloped" });
  assert.equal(second.recordsRead, 3);
  const { rows: ids } = await db().pool.query("select id from enveloped order by id");
  assert.deepEqual(
    ids.map((r) => r.id),
    ["0", "1", "2"],
  );
});

test("json:FILE holding one object is one record; a typed table with --flatten", async () => {
  const path = await writeTemp(
    "device.json",
    JSON.stringify({
      id: 7,
      name: "Pump",
      address: { city: "Berlin", zip: "10115" },
      tags: ["a"],
      since: "2021-03-04",
    }),
  );
  const result = await importDocuments({
    pool: db().pool,
    from: `json:${path}`,
    key: "/id",
    typed: true,
    flatten: true,
    table: "device_typed",
  });
  assert.equal(result.target.kind, "typed");
  assert.deepEqual(
    result.columns.map((c) => `${c.name} ${c.type}`),
    [
      "id bigint",
      "name text",
      "address_city text",
      "address_zip text",
      "tags jsonb",
      "since date",
      "_source_file text",
      "_content_hash text",
      "_loaded_at timestamptz",
    ],
  );
  const { rows } = await db().pool.query(
    "select id, address_city, tags, since::text as since from device_typed",
  );
  assert.deepEqual(rows, [{ id: "7", address_city: "Berlin", tags: ["a"], since: "2021-03-04" }]);
});

test("library: the same import from an async iterable of plain objects", async () => {
  async function* generate() {
    for (let i = 0; i < 50; i++) yield { uid: `u${i}`, score: i, when: new Date(Date.UTC(2024, 0, 1 + i)) };
  }
  const result = await importDocuments({
    pool: db().pool,
    from: generate(),
    key: "/uid",
    table: "from_iterable",
  });
  assert.equal(result.inserted, 50);
  const { rows } = await db().pool.query("select doc from from_iterable where uid = 'u3'");
  assert.deepEqual(rows[0].doc, { uid: "u3", score: 3, when: "2024-01-04T00:00:00.000Z" });

  const typed = await importDocuments({
    pool: db().pool,
    from: generate(),
    key: "/uid",
    table: "from_iterable_typed",
    typed: true,
  });
  assert.deepEqual(
    typed.columns.slice(0, 3).map((c) => `${c.name} ${c.type}`),
    ["uid text", "score bigint", "when timestamptz"],
  );
  const { rows: typedRows } = await db().pool.query(
    `select count(*)::int as n, max(score)::int as top from from_iterable_typed`,
  );
  assert.deepEqual(typedRows[0], { n: 50, top: 49 });
});

test("library: upsert + mirror from an iterable (a backfill re-run), with progress events", async () => {
  const run = (items: object[]) =>
    importDocuments({
      pool: db().pool,
      from: items,
      key: "/id",
      table: "backfill",
      mode: "upsert",
      mirror: true,
      sourceLabel: "memory-store",
    });
  await run([
    { id: 1, v: "a" },
    { id: 2, v: "b" },
  ]);
  const second = await run([
    { id: 2, v: "B" },
    { id: 3, v: "c" },
  ]);
  assert.deepEqual(
    [second.inserted, second.updated, second.unchanged, second.deleted, second.deletedKeys],
    [1, 1, 0, 1, ["1"]],
  );
  const { rows } = await db().pool.query("select id, doc->>'v' as v, source_file from backfill order by id");
  assert.deepEqual(rows, [
    { id: "2", v: "B", source_file: "memory-store" },
    { id: "3", v: "c", source_file: "memory-store" },
  ]);

  const root = await writeTree({ "a.json": '[{"id":1}]', "b/c.json": '{"id":2}', "b/d.json": '{"id":3}' });
  const events: { task: string; done: number; total?: number; unit: string }[] = [];
  await importDocuments({
    pool: db().pool,
    from: `json:${root}`,
    key: "/id",
    table: "progressed",
    onProgress: (event) => events.push(event),
  });
  const files = events.filter((e) => e.unit === "files");
  assert.deepEqual(
    files.map((e) => [e.done, e.total]),
    [
      [1, 3],
      [2, 3],
      [3, 3],
    ],
  );
  const records = events.filter((e) => e.unit === "records");
  assert.equal(records[records.length - 1]!.done, 3);
});

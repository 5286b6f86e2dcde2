import assert from "node:assert/strict";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { gzipSync } from "node:zlib";
import { importDocuments } from "../../../src/documents/import-documents.ts";
import { useTestDatabase } from "../../helpers/database.ts";

const db = useTestDatabase("docs_ndjson");

async function tempFile(name: string, content: string | Buffer): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "pgshift-ndjson-"));
  const path = join(dir, name);
  await writeFile(path, content);
  return path;
}

test("ndjson into a document table: keys, doc, provenance, hash", async () => {
  const lines = [
    '{"k_number":"K001","device":"Stent","decision_date":"2020-01-31"}',
    '{"k_number":"K002","device":"Valve \\"X\\"\\ttab","decision_date":"20200215"}',
    "",
    '{"k_number":"K003","device":"Pump","nested":{"a":[1,2,{"b":null}]}}',
  ];
  const path = await tempFile("clearances.ndjson", `${lines.join("\n")}\n`);
  const result = await importDocuments({
    pool: db().pool,
    from: `ndjson:${path}`,
    key: "/k_number",
    columns: ["decision_date=/decision_date:date"],
    gin: true,
    trgm: "/device",
  });
  assert.equal(result.target.table, "clearances");
  assert.equal(result.recordsRead, 3);
  assert.equal(result.recordsLoaded, 3);
  assert.equal(result.inserted, 3);
  assert.equal(result.quarantined, 0);
  const { rows } = await db().pool.query(
    "select k_number, doc, decision_date::text as d, source_file, length(content_hash) as hl from clearances order by k_number",
  );
  assert.deepEqual(
    rows.map((r) => [r.k_number, r.d, r.source_file, r.hl]),
    [
      ["K001", "2020-01-31", "clearances.ndjson", 64],
      ["K002", "2020-02-15", "clearances.ndjson", 64],
      ["K003", null, "clearances.ndjson", 64],
    ],
  );
  assert.equal(rows[1].doc.device, 'Valve "X"\ttab');
  assert.deepEqual(rows[2].doc.nested, { a: [1, 2, { b: null }] });
  const { rows: indexes } = await db().pool.query(
    "select indexname from pg_indexes where tablename = 'clearances' order by indexname",
  );
  assert.deepEqual(
    indexes.map((r) => r.indexname),
    ["clearances_device_trgm", "clearances_doc_gin", "clearances_pkey"],
  );
});

test("gzip ndjson, composite keys", async () => {
  const text = `${[
    { country: "US", id: 1, v: "a" },
    { country: "DE", id: 1, v: "b" },
    { country: "US", id: 2, v: "c" },
  ]
    .map((r) => JSON.stringify(r))
    .join("\n")}\n`;
  const path = await tempFile("events.ndjson.gz", gzipSync(text));
  const result = await importDocuments({
    pool: db().pool,
    from: `ndjson:${path}`,
    key: ["/country", "/id:bigint"],
    table: "events",
  });
  assert.equal(result.inserted, 3);
  const { rows } = await db().pool.query(
    "select country, id, doc->>'v' as v from events order by country, id",
  );
  assert.deepEqual(
    rows.map((r) => [r.country, r.id, r.v]),
    [
      ["DE", "1", "b"],
      ["US", "1", "a"],
      ["US", "2", "c"],
    ],
  );
});

test("an empty part of a composite key is a value (openFDA PMA originals); an empty single key is not", async () => {
  const text = `${[
    { pma_number: "P850079", supplement_number: "", v: "original" },
    { pma_number: "P850079", supplement_number: "S001", v: "supplement" },
  ]
    .map((r) => JSON.stringify(r))
    .join("\n")}\n`;
  const path = await tempFile("pma.ndjson", text);
  const result = await importDocuments({
    pool: db().pool,
    from: `ndjson:${path}`,
    key: ["/pma_number", "/supplement_number"],
    table: "pma",
  });
  assert.equal(result.inserted, 2);
  assert.equal(result.quarantined, 0);
  const { rows } = await db().pool.query(
    "select pma_number, supplement_number, doc->>'v' as v from pma order by supplement_number",
  );
  assert.deepEqual(
    rows.map((r) => [r.pma_number, r.supplement_number, r.v]),
    [
      ["P850079", "", "original"],
      ["P850079", "S001", "supplement"],
    ],
  );

  const single = await tempFile("single.ndjson", '{"id":"","v":1}\n{"id":"a","v":2}\n');
  const keyed = await importDocuments({
    pool: db().pool,
    from: `ndjson:${single}`,
    key: "/id",
    table: "single",
    onBadValue: "quarantine",
  });
  assert.equal(keyed.inserted, 1);
  assert.equal(keyed.quarantined, 1);
});

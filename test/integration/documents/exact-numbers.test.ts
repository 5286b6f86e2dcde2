import assert from "node:assert/strict";
import { test } from "node:test";
import { DocumentStore } from "../../../src/documents/document-store.ts";
import { importDocuments } from "../../../src/documents/import-documents.ts";
import { jsonFileSource } from "../../../src/sources/json/json-file-source.ts";
import { verifyDocuments } from "../../../src/verify/document-verify.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import { writeTemp } from "./fixtures.ts";

const db = useTestDatabase("docs_exact_numbers");

// 1234567890123456789 and ...788 are the same double; 9007199254740993 is read as ...992
const BIG_A = "1234567890123456789";
const BIG_B = "1234567890123456788";
const ODD = "9007199254740993";

async function keysOf(table: string): Promise<string[]> {
  const { rows } = await db().pool.query(`select id::text as id from ${table} order by id`);
  return rows.map((r) => r.id as string);
}

for (const [kind, content] of [
  ["ndjson", `{"id": ${BIG_A}, "v": 1}\n{"id": ${BIG_B}, "v": 2}\n`],
  ["json array", `[{"id": ${BIG_A}, "v": 1}, {"id": ${BIG_B}, "v": 2}]`],
] as const) {
  test(`${kind}: two integer keys beyond 2^53 stay two under last-wins, and verify agrees`, async () => {
    const ndjson = kind === "ndjson";
    const path = await writeTemp(ndjson ? "snow.ndjson" : "snow.json", content);
    const table = ndjson ? "snow_nd" : "snow_js";
    for (const jobs of [1, 2]) {
      const result = await importDocuments({
        pool: db().pool,
        from: `${ndjson ? "ndjson" : "json"}:${path}`,
        table,
        key: "/id",
        duplicates: "last-wins",
        mode: "replace",
        jobs,
      });
      assert.equal(result.recordsLoaded, 2);
      assert.equal(result.duplicates.count, 0);
      assert.deepEqual(await keysOf(table), [BIG_B, BIG_A]);
    }
    const verified = await verifyDocuments({
      pool: db().pool,
      from: `${ndjson ? "ndjson" : "json"}:${path}`,
      table,
      key: "/id",
      duplicates: "last-wins",
    });
    assert.equal(verified.tables[0]!.status, "identical");
    assert.equal(verified.tables[0]!.sourceRows, 2);
  });
}

test("a key beyond 2^53 is stored as written (text and :bigint) and DocumentStore.get finds it", async () => {
  const path = await writeTemp("odd.ndjson", `{"id": ${ODD}, "n": {"deep": ${ODD}}}\n`);
  for (const [table, key] of [
    ["odd_text", "/id"],
    ["odd_bigint", "/id:bigint"],
  ] as const) {
    await importDocuments({ pool: db().pool, from: `ndjson:${path}`, table, key });
    assert.deepEqual(await keysOf(table), [ODD]);
    const store = new DocumentStore<{ id: unknown; n: unknown }>(db().pool, {
      table,
      keyColumns: ["id"],
      keyTypes: [key.endsWith("bigint") ? "bigint" : "text"],
    });
    const doc = await store.get(ODD);
    assert.ok(doc, `${table}: get(${ODD}) finds the document`);
    const { rows } = await db().pool.query(`select doc->>'id' as id, doc#>>'{n,deep}' as deep from ${table}`);
    assert.deepEqual(rows[0], { id: ODD, deep: ODD });
  }
  // --column conversions take the digits too
  await importDocuments({
    pool: db().pool,
    from: `ndjson:${path}`,
    table: "odd_column",
    key: "/id",
    columns: ["deep=/n/deep:numeric"],
  });
  const { rows } = await db().pool.query("select deep::text as deep from odd_column");
  assert.equal(rows[0].deep, ODD);
});

test("json arrays, --records envelopes and streamed files keep numbers inside documents byte-exact", async () => {
  const clean = (id: number) =>
    `{"id": ${id}, "big": ${BIG_A}, "neg": -${ODD}, "list": [${ODD}, 1.50], "x": {"y": ${BIG_B}}}`;
  const cleanArray = `[${clean(1)}, ${clean(2)}]`;
  const cleanEnvelope = `{"meta": {"n": ${ODD}}, "results": ${cleanArray}}`;
  const cleanCases = [
    ["carray", jsonFileSource(await writeTemp("ca.json", cleanArray))],
    ["carray_streamed", jsonFileSource(await writeTemp("cb.json", cleanArray), { wholeFileLimit: 0 })],
    ["cenvelope", jsonFileSource(await writeTemp("cc.json", cleanEnvelope), { recordsPointer: ["results"] })],
    [
      "cenvelope_streamed",
      jsonFileSource(await writeTemp("cd.json", cleanEnvelope), {
        recordsPointer: ["results"],
        wholeFileLimit: 0,
      }),
    ],
  ] as const;
  for (const [table, from] of cleanCases) {
    const result = await importDocuments({ pool: db().pool, from, table, key: "/id" });
    assert.equal(result.recordsLoaded, 2, table);
    const { rows } = await db().pool.query(
      `select doc->>'big' as big, doc->>'neg' as neg, doc->'list'->>0 as first, doc->'list'->>1 as scale,
              doc#>>'{x,y}' as y from ${table} order by id`,
    );
    for (const row of rows)
      assert.deepEqual(row, { big: BIG_A, neg: `-${ODD}`, first: ODD, scale: "1.50", y: BIG_B }, table);
  }
});

test("verify catches a key column that disagrees with its document", async () => {
  const path = await writeTemp("tamper.ndjson", `{"id": ${ODD}, "v": 1}\n{"id": 5, "v": 2}\n`);
  await importDocuments({ pool: db().pool, from: `ndjson:${path}`, table: "tamper", key: "/id:bigint" });
  const before = await verifyDocuments({
    pool: db().pool,
    from: `ndjson:${path}`,
    table: "tamper",
    key: "/id:bigint",
  });
  assert.equal(before.tables[0]!.status, "identical");
  // the key column as a double would have rounded it; the document still says ...993
  await db().pool.query("update tamper set id = id - 1 where id = $1", [ODD]);
  const after = await verifyDocuments({
    pool: db().pool,
    from: `ndjson:${path}`,
    table: "tamper",
    key: "/id:bigint",
  });
  assert.equal(after.tables[0]!.status, "mismatch");
  assert.equal(after.tables[0]!.missingRows, 1);
  assert.equal(after.tables[0]!.extraRows, 1);
});

test("typed tables from JSON take the digits too: integer columns and nested jsonb", async () => {
  const path = await writeTemp(
    "typed.json",
    `[{"id": ${BIG_A}, "count": ${ODD}, "meta": {"ref": ${BIG_B}}}, {"id": ${BIG_B}, "count": 1, "meta": {"ref": 2}}]`,
  );
  const result = await importDocuments({
    pool: db().pool,
    from: `json:${path}`,
    table: "typed_big",
    key: "/id",
    typed: true,
    duplicates: "last-wins",
  });
  assert.equal(result.recordsLoaded, 2);
  const { rows } = await db().pool.query(
    "select id::text as id, count::text as count, meta->>'ref' as ref from typed_big order by id",
  );
  assert.deepEqual(rows, [
    { id: BIG_B, count: "1", ref: "2" },
    { id: BIG_A, count: ODD, ref: BIG_B },
  ]);
});

test("--column NAME=/path:jsonb keeps the digits, on the NDJSON fast path and the exact path alike", async () => {
  const line = `{"id": "a", "meta": {"ref": ${BIG_A}, "s": "1234567890123456789"}}`;
  const cases = [
    ["col_nd", `ndjson:${await writeTemp("col.ndjson", `${line}\n`)}`],
    ["col_js", `json:${await writeTemp("col.json", `[${line}]`)}`],
  ] as const;
  for (const [table, from] of cases) {
    await importDocuments({ pool: db().pool, from, table, key: "/id", columns: ["meta=/meta:jsonb"] });
    const { rows } = await db().pool.query(`select meta->>'ref' as ref, meta->>'s' as s from ${table}`);
    assert.deepEqual(rows, [{ ref: BIG_A, s: BIG_A }], table);
  }
});

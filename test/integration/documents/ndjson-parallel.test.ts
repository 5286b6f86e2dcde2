import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { test } from "node:test";
import { importDocuments } from "../../../src/documents/import-documents.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import { writeTemp } from "./fixtures.ts";

const db = useTestDatabase("docs_parallel");

/** About 1 KB per document, so that a few thousand make several COPY chunks (one chunk is 1 MB). */
function document(i: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    k: `K${String(i).padStart(6, "0")}`,
    n: i,
    text: `line ${i} "quoted" back\\slash tab\t newline\n é 😀 ${"x".repeat(800 + (i % 97))}`,
    nested: { list: [i, { deep: i % 3 === 0 }], at: "2024-01-02" },
    ...extra,
  };
}

/** The table's rows as comparable text, and how many transactions wrote them (one per COPY stream). */
async function snapshot(table: string) {
  const { rows } = await db().pool.query(
    `select k, doc::text as doc, source_file, content_hash from ${table} order by k`,
  );
  const { rows: writers } = await db().pool.query(
    `select count(distinct xmin::text)::int as n from ${table}`,
  );
  return { rows, writers: writers[0].n as number };
}

async function leftovers(): Promise<string[]> {
  const { rows } = await db().pool.query(
    "select relname from pg_class where relname like '%pgshift_new%' or relname like '%pgshift_stage%'",
  );
  return rows.map((r) => r.relname as string);
}

async function quarantined(runId: string) {
  const { rows } = await db().pool.query(
    "select location, column_name, reason, raw from pgshift.quarantine where run_id = $1 order by id",
    [runId],
  );
  return rows;
}

test("parallel COPY streams load exactly what one stream loads: docs, hashes, quarantine byte-exact", async () => {
  const lines: Buffer[] = [];
  for (let i = 1; i <= 6000; i++) lines.push(Buffer.from(JSON.stringify(document(i))));
  // bad lines spread over several chunks (and so over several streams)
  lines[10] = Buffer.from('{"k":"BAD-1","n":');
  lines[1500] = Buffer.from('{"n":"no key"}');
  lines[3000] = Buffer.concat([
    Buffer.from('{"k":"BAD-3","s":"'),
    Buffer.from([0xe2, 0x28, 0xa1]),
    Buffer.from('"}'),
  ]);
  lines[4500] = Buffer.from('{"k":"BAD-4","s":"a\\u0000b"}');
  lines[5999] = Buffer.from('{"k":"BAD-5","s":"\t"}');
  // and a few oddities the fast path leaves to the exact one, which load all the same
  lines[20] = Buffer.from('{"k":"ESC-1","k\\u0031":1}');
  lines[21] = Buffer.from('  {"k" : "SPACED" , "n" : 1 }  \r');
  lines[22] = Buffer.from('{"k":"PAIR","s":"\\ud83d\\ude00"}');
  const content = Buffer.concat(lines.flatMap((line) => [line, Buffer.from("\n")]));
  const path = await writeTemp("events.ndjson", content);

  const results = [];
  for (const [table, jobs] of [
    ["one_stream", 1],
    ["three_streams", 3],
  ] as const) {
    results.push(
      await importDocuments({
        pool: db().pool,
        from: `ndjson:${path}`,
        table,
        key: "/k",
        onBadValue: "quarantine",
        jobs,
      }),
    );
  }
  const [one, three] = results as [(typeof results)[0], (typeof results)[0]];
  for (const result of [one, three]) {
    assert.equal(result.recordsRead, 6000);
    assert.equal(result.recordsLoaded, 5995);
    assert.equal(result.quarantined, 5);
    assert.deepEqual(result.indexes, [`${result.target.table}_pkey`]);
  }
  const a = await snapshot("one_stream");
  const b = await snapshot("three_streams");
  assert.equal(a.rows.length, 5995);
  assert.deepEqual(b.rows, a.rows);
  assert.equal(a.writers, 1, "one stream: the import's own transaction");
  assert.ok(b.writers >= 2, `several streams wrote the parallel table (${b.writers})`);
  // content_hash is the sha256 of each line's exact bytes (without its newline)
  const byKey = new Map(
    lines.map((line) => {
      const text = line.toString("utf8");
      const key = /"k" ?: ?"([^"]*)"/.exec(text)?.[1];
      return [
        key,
        createHash("sha256")
          .update(line.subarray(0, line.at(-1) === 0x0d ? -1 : undefined))
          .digest("hex"),
      ];
    }),
  );
  for (const row of b.rows) assert.equal(row.content_hash, byKey.get(row.k), row.k);
  const { rows: pair } = await db().pool.query("select doc->>'s' as s from three_streams where k = 'PAIR'");
  assert.equal(pair[0].s, "😀");

  const qa = await quarantined(one.runId);
  const qb = await quarantined(three.runId);
  assert.deepEqual(
    qb.map((q) => q.location),
    [
      "events.ndjson:11",
      "events.ndjson:1501",
      "events.ndjson:3001",
      "events.ndjson:4501",
      "events.ndjson:6000",
    ],
  );
  assert.deepEqual(
    qb.map((q) => [q.location, q.column_name, q.reason]),
    qa.map((q) => [q.location, q.column_name, q.reason]),
  );
  for (const q of qb) {
    const line = Number(q.location.split(":")[1]);
    assert.deepEqual(q.raw, lines[line - 1], `raw of ${q.location} is byte-exact`);
  }
  assert.match(qb[4].reason, /malformed JSON on line 6000/, "a raw tab inside a string is not JSON");
  assert.deepEqual(await leftovers(), []);
});

test("duplicate keys across streams: fail names both lines and commits nothing; last-wins keeps the last", async () => {
  const docs = Array.from({ length: 5000 }, (_, i) => document(i));
  docs[4800] = document(7, { v: "last" });
  const path = await writeTemp("dups.ndjson", `${docs.map((d) => JSON.stringify(d)).join("\n")}\n`);
  await assert.rejects(
    importDocuments({ pool: db().pool, from: `ndjson:${path}`, key: "/k", jobs: 3 }),
    /duplicate key \["K000007"\] at dups\.ndjson:4801 \(first seen in dups\.ndjson\)/,
  );
  const { rows: none } = await db().pool.query("select to_regclass('public.dups') as t");
  assert.equal(none[0].t, null);
  assert.deepEqual(await leftovers(), []);

  for (const [table, jobs] of [
    ["dups_one", 1],
    ["dups_three", 3],
  ] as const) {
    const result = await importDocuments({
      pool: db().pool,
      from: `ndjson:${path}`,
      table,
      key: "/k",
      duplicates: "last-wins",
      jobs,
    });
    assert.equal(result.duplicates.count, 1);
    assert.deepEqual(
      result.duplicates.sample.map((d) => d.location),
      ["dups.ndjson:4801"],
    );
    assert.equal(result.inserted, 4999);
    const { rows } = await db().pool.query(`select doc->>'v' as v from ${table} where k = 'K000007'`);
    assert.equal(rows[0].v, "last");
  }
  assert.deepEqual((await snapshot("dups_three")).rows, (await snapshot("dups_one")).rows);

  // upsert + mirror re-run in parallel: counts like one stream's
  docs[100] = document(100, { changed: true });
  docs.splice(200, 1);
  await writeFile(path, `${docs.map((d) => JSON.stringify(d)).join("\n")}\n`);
  for (const table of ["dups_one", "dups_three"]) {
    const upserted = await importDocuments({
      pool: db().pool,
      from: `ndjson:${path}`,
      table,
      key: "/k",
      duplicates: "last-wins",
      mode: "upsert",
      mirror: true,
      jobs: table === "dups_one" ? 1 : 3,
    });
    assert.deepEqual(
      [upserted.inserted, upserted.updated, upserted.unchanged, upserted.deleted],
      [0, 1, 4997, 1],
      table,
    );
  }
  assert.deepEqual(
    (await snapshot("dups_three")).rows.map((r) => [r.k, r.doc]),
    (await snapshot("dups_one")).rows.map((r) => [r.k, r.doc]),
  );
  assert.deepEqual(await leftovers(), []);
});

test("parallel replace and append; a server-side failure drops the streams' table; iterables and new schemas load on one stream", async () => {
  const first = Array.from({ length: 4000 }, (_, i) => JSON.stringify(document(i)));
  const path = await writeTemp("orders.ndjson", `${first.join("\n")}\n`);
  await importDocuments({ pool: db().pool, from: `ndjson:${path}`, key: "/k", gin: true, jobs: 2 });
  const replacement = Array.from({ length: 4000 }, (_, i) => JSON.stringify(document(i + 10_000)));
  await writeFile(path, `${replacement.join("\n")}\n`);
  const replaced = await importDocuments({
    pool: db().pool,
    from: `ndjson:${path}`,
    key: "/k",
    mode: "replace",
    gin: true,
    jobs: 2,
  });
  assert.deepEqual([replaced.inserted, replaced.deleted], [4000, 4000]);
  const after = await snapshot("orders");
  assert.equal(after.rows[0].k, "K010000");
  assert.ok(after.writers >= 2);
  const { rows: indexes } = await db().pool.query(
    "select indexname from pg_indexes where tablename = 'orders' order by indexname",
  );
  assert.deepEqual(
    indexes.map((r) => r.indexname),
    ["orders_doc_gin", "orders_pkey"],
  );

  // append: new keys go in; a key the table has already is refused with the usual explanation
  await writeFile(path, `${[JSON.stringify(document(1)), ...replacement.slice(0, 3)].join("\n")}\n`);
  await assert.rejects(
    importDocuments({ pool: db().pool, from: `ndjson:${path}`, key: "/k", jobs: 2 }),
    /already has a row with that key .*\(k\)=\(K010000\).*--mode upsert/,
  );
  await writeFile(path, `${JSON.stringify(document(1))}\n`);
  const appended = await importDocuments({ pool: db().pool, from: `ndjson:${path}`, key: "/k", jobs: 2 });
  assert.deepEqual([appended.inserted, appended.tableCreated], [1, false]);
  assert.equal((await snapshot("orders")).rows.length, 4001);

  // a number jsonb cannot hold passes JSON.parse: the server refuses it, and nothing stays behind
  const overflow = [...first.slice(0, 3000), '{"k":"HUGE","n":1e1000000}', ...first.slice(3000)];
  const bad = await writeTemp("overflow.ndjson", `${overflow.join("\n")}\n`);
  await assert.rejects(
    importDocuments({ pool: db().pool, from: `ndjson:${bad}`, key: "/k", jobs: 3 }),
    /overflows numeric format/,
  );
  const { rows: gone } = await db().pool.query("select to_regclass('public.overflow') as t");
  assert.equal(gone[0].t, null);
  assert.deepEqual(await leftovers(), []);

  // an iterable loads on one stream unless asked for more
  const objects = Array.from({ length: 3000 }, (_, i) => document(i));
  for (const [table, jobs] of [
    ["from_iterable", undefined],
    ["from_iterable_parallel", 2],
  ] as const) {
    const result = await importDocuments({
      pool: db().pool,
      from: objects,
      table,
      key: "/k",
      ...(jobs ? { jobs } : {}),
    });
    assert.equal(result.recordsLoaded, 3000);
  }
  assert.equal((await snapshot("from_iterable")).writers, 1);
  assert.ok((await snapshot("from_iterable_parallel")).writers >= 2);
  assert.deepEqual((await snapshot("from_iterable_parallel")).rows, (await snapshot("from_iterable")).rows);

  // the streams' table must be committed before the import's transaction creates the schema: one stream
  const fresh = await importDocuments({
    pool: db().pool,
    from: `ndjson:${path}`,
    schema: "brand_new",
    key: "/k",
    jobs: 3,
  });
  assert.equal(fresh.recordsLoaded, 1);
  const { rows: loaded } = await db().pool.query("select count(*)::int as n from brand_new.orders");
  assert.equal(loaded[0].n, 1);
});

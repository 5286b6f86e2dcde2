import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { importDocuments } from "../../../src/documents/import-documents.ts";
import { jsonbText } from "../../../src/verify/canonical-json.ts";
import { documentJsonbText } from "../../../src/verify/canonical-document.ts";
import { verifyDocuments } from "../../../src/verify/document-verify.ts";
import { SourceDigests } from "../../../src/verify/source-digests.ts";
import { useTestDatabase } from "../../helpers/database.ts";

/** Document tables verified against their NDJSON / JSON sources, and tampered with after import. */
const db = useTestDatabase("vdoc");
let dir: string;

function record(i: number): Record<string, unknown> {
  return {
    id: `K${String(i).padStart(4, "0")}`,
    n: i,
    price: i % 3 === 0 ? 1.5e2 : 12.3,
    nested: { tags: ["a", `t${i % 5}`], deep: { level: i % 7, note: i % 11 === 0 ? 'é\u00e9 "q"' : null } },
  };
}

/** Lines written by hand so that number forms (1.5e2, 12.30) reach jsonb as written. */
function ndjsonLine(i: number): string {
  const r = record(i);
  return JSON.stringify(r).replace('"price":150', '"price":1.5e2').replace('"price":12.3', '"price":12.30');
}

describe("verify document tables", () => {
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "pgshift-vdoc-"));
    const lines = Array.from({ length: 600 }, (_, i) => ndjsonLine(i + 1));
    // a record without its key and a malformed line: quarantined by the import, left out by verify
    lines.splice(100, 0, '{"n": 1}', "{not json");
    writeFileSync(join(dir, "items.ndjson"), `${lines.join("\n")}\n`);
    mkdirSync(join(dir, "pages", "sub"), { recursive: true });
    for (let page = 0; page < 4; page++) {
      const results = Array.from({ length: 25 }, (_, i) => record(page * 25 + i + 1));
      writeFileSync(
        join(dir, page < 2 ? "pages" : join("pages", "sub"), `page-${page}.json`),
        JSON.stringify({ meta: { page }, results }, null, 2),
      );
    }
    // duplicates: the last one wins
    writeFileSync(
      join(dir, "dups.ndjson"),
      ['{"id": 1, "v": "first"}', '{"id": 2, "v": "x"}', '{"id": 1, "v": "last"}'].join("\n"),
    );
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("says identical for an NDJSON import, leaving out and counting quarantined records", async () => {
    const imported = await importDocuments({
      pool: db().pool,
      from: `ndjson:${join(dir, "items.ndjson")}`,
      key: "/id",
      onBadValue: "quarantine",
    });
    assert.equal(imported.quarantined, 2);
    const result = await verifyDocuments({
      pool: db().pool,
      from: `ndjson:${join(dir, "items.ndjson")}`,
      key: "/id",
      runId: imported.runId,
    });
    const t = result.tables[0]!;
    assert.equal(result.status, "identical", JSON.stringify(t));
    assert.equal(t.table, "items");
    assert.equal(t.sourceRows, 600);
    assert.equal(t.targetRows, 600);
    assert.equal(t.quarantinedRows, 2);
    assert.deepEqual(t.problems, []);
    assert.equal(result.summary.quarantinedRows, 2);
    assert.match(result.source.sha256, /^[0-9a-f]{64}$/);
  });

  it("gives the same jsonb text from a parsed document as the exact parser, and as the server", async () => {
    const texts = [
      ...Array.from({ length: 50 }, (_, i) => ndjsonLine(i + 1)),
      '{"b": 1, "a": [true, false, null, -3], "aa": {"\u00e9": "x", "z": "\\n\\t\\"", "ab": {}}, "a": 2}',
      '{"big": 123456789012345678, "neg": -0, "f": 0.1, "e": 1E+2, "s": "tab\\there \\ud83d\\ude00 and 😀"}',
      '{"\u00e9\u00e9": 1, "zz": 2, "é": 3, "": []}',
      '{"small": 0.0000001, "d": 3.25, "m": -12.5, "z": -0, "w": 1234567.1234567, "date": "2021-03-04", "t": "1.50"}',
      '{"d": 0.1, "x": 100, "y": -7, "q": 1.0, "big": 9007199254740993}',
    ];
    for (const text of texts) {
      const canonical = documentJsonbText(text, JSON.parse(text));
      assert.equal(canonical, jsonbText(text), text);
      const { rows } = await db().pool.query("select $1::jsonb::text as t", [text]);
      assert.equal(canonical, rows[0].t, text);
    }
  });

  it("names the key of a changed nested value, a deleted row, an added row and a changed key", async () => {
    const pool = db().pool;
    await pool.query(`update items set doc = jsonb_set(doc, '{nested,deep,level}', '99') where id = 'K0042'`);
    await pool.query(`delete from items where id = 'K0100'`);
    await pool.query(
      `insert into items (id, doc, source_file, content_hash) values ('K9999', '{"id": "K9999"}', 'x', 'y')`,
    );
    await pool.query(`update items set id = 'K0300x' where id = 'K0300'`);
    // small chunks (about 50 rows): only the chunks holding a fault differ and are narrowed
    const result = await verifyDocuments({
      pool,
      from: `ndjson:${join(dir, "items.ndjson")}`,
      key: "/id",
      chunkRows: 50,
    });
    const t = result.tables[0]!;
    assert.equal(result.status, "mismatch");
    assert.equal(t.changedRows, 1);
    assert.equal(t.missingRows, 2);
    assert.equal(t.extraRows, 2);
    assert.deepEqual(t.changed[0]!.key, { id: "K0042" });
    assert.deepEqual(t.changed[0]!.columns, [{ column: "doc/nested/deep/level", source: "0", target: "99" }]);
    assert.deepEqual(t.missing.map((k) => k.id).sort(), ["K0100", "K0300"]);
    assert.deepEqual(t.extra.map((k) => k.id).sort(), ["K0300x", "K9999"]);
    assert.equal(t.chunking.chunks, 12);
    assert.ok(t.chunking.mismatched >= 4 && t.chunking.mismatched <= 6, JSON.stringify(t.chunking));
  });

  it("says identical for a JSON directory with a records pointer, and catches a number change", async () => {
    const pool = db().pool;
    const from = `json:${join(dir, "pages")}`;
    await importDocuments({ pool, from, key: "/n:bigint", records: "/results" });
    const ok = await verifyDocuments({ pool, from, key: "/n:bigint", records: "/results" });
    assert.equal(ok.status, "identical", JSON.stringify(ok.tables[0]));
    assert.equal(ok.tables[0]!.table, "pages");
    assert.equal(ok.tables[0]!.sourceRows, 100);
    await pool.query(`update pages set doc = jsonb_set(doc, '{price}', '12.30') where n = 7`);
    const bad = await verifyDocuments({ pool, from, key: "/n:bigint", records: "/results" });
    const t = bad.tables[0]!;
    assert.equal(bad.status, "mismatch");
    assert.deepEqual(
      t.changed.map((c) => c.key),
      [{ n: "7" }],
    );
    // 12.3 and 12.30 are different jsonb texts, though equal as JavaScript numbers: the whole documents are shown
    assert.equal(t.changed[0]!.columns[0]!.column, "doc");
    assert.match(t.changed[0]!.columns[0]!.source ?? "", /"price": 12\.3,/);
    assert.match(t.changed[0]!.columns[0]!.target ?? "", /"price": 12\.30,/);
  });

  it("compares the last record of a duplicated key under last-wins", async () => {
    const pool = db().pool;
    const from = `ndjson:${join(dir, "dups.ndjson")}`;
    await importDocuments({ pool, from, key: "/id:bigint", duplicates: "last-wins" });
    const result = await verifyDocuments({ pool, from, key: "/id:bigint", duplicates: "last-wins" });
    assert.equal(result.status, "identical", JSON.stringify(result.tables[0]));
    assert.equal(result.tables[0]!.sourceRows, 2);
    await pool.query(`update dups set doc = '{"id": 1, "v": "first"}' where id = 1`);
    const bad = await verifyDocuments({ pool, from, key: "/id:bigint", duplicates: "last-wins" });
    assert.equal(bad.status, "mismatch");
    assert.deepEqual(bad.tables[0]!.changed[0]!.columns, [
      { column: "doc/v", source: '"last"', target: '"first"' },
    ]);
  });

  it("expects extra rows after an insert into a filled table only when told so", async () => {
    const pool = db().pool;
    const from = `ndjson:${join(dir, "dups.ndjson")}`;
    await pool.query(
      `insert into dups (id, doc, source_file, content_hash) values (77, '{"id": 77}', 'old', 'h')`,
    );
    const strict = await verifyDocuments({ pool, from, key: "/id:bigint", duplicates: "last-wins" });
    // the row updated in the previous test is still changed; repair it first
    assert.equal(strict.tables[0]!.extraRows, 1);
    await pool.query(`update dups set doc = '{"id": 1, "v": "last"}' where id = 1`);
    const relaxed = await verifyDocuments({
      pool,
      from,
      key: "/id:bigint",
      duplicates: "last-wins",
      allowExtra: true,
    });
    assert.equal(relaxed.status, "identical", JSON.stringify(relaxed.tables[0]));
    assert.equal(relaxed.tables[0]!.extraRows, 1);
    assert.deepEqual(relaxed.tables[0]!.extra, [{ id: "77" }]);
  });

  it("compares documents without a key as a multiset", async () => {
    const pool = db().pool;
    const from = `json:${join(dir, "pages", "sub")}`;
    await importDocuments({ pool, from, records: "/results" });
    const ok = await verifyDocuments({ pool, from, records: "/results" });
    assert.equal(ok.status, "identical", JSON.stringify(ok.tables[0]));
    await pool.query(`delete from sub where ctid = (select min(ctid) from sub)`);
    const bad = await verifyDocuments({ pool, from, records: "/results" });
    assert.equal(bad.status, "mismatch");
    assert.equal(bad.tables[0]!.missingRows, 1);
    assert.match(String(bad.tables[0]!.missing[0]!.doc_md5), /^[0-9a-f]{32}$/);
  });

  it("verifies a composite key after replace and after upsert --mirror, naming both key parts", async () => {
    const pool = db().pool;
    const file = join(dir, "regions.ndjson");
    const write = (n: number) =>
      writeFileSync(
        file,
        Array.from({ length: n }, (_, i) =>
          JSON.stringify({ country: i % 2 ? "DE" : "FR", id: i + 1, v: { w: [i, "x"] } }),
        ).join("\n"),
      );
    const options = { pool, from: `ndjson:${file}`, key: "/country,/id:bigint" };
    write(40);
    await importDocuments({ ...options, mode: "replace" });
    write(30);
    await importDocuments({ ...options, mode: "replace" });
    const replaced = await verifyDocuments(options);
    assert.equal(replaced.status, "identical", JSON.stringify(replaced.tables[0]));
    assert.equal(replaced.tables[0]!.sourceRows, 30);
    write(20);
    await importDocuments({ ...options, mode: "upsert", mirror: true });
    const mirrored = await verifyDocuments(options);
    assert.equal(mirrored.status, "identical", JSON.stringify(mirrored.tables[0]));
    assert.equal(mirrored.tables[0]!.targetRows, 20);
    await pool.query(
      `update regions set doc = jsonb_set(doc, '{v,w,1}', '"y"') where country = 'DE' and id = 4`,
    );
    const bad = await verifyDocuments(options);
    assert.deepEqual(bad.tables[0]!.changed[0]!.key, { country: "DE", id: "4" });
    assert.deepEqual(bad.tables[0]!.changed[0]!.columns, [
      { column: "doc/v/w/1", source: '"x"', target: '"y"' },
    ]);
  });
  it("verifies from the digests the import computed, and still names what differs after the load", async () => {
    const pool = db().pool;
    const file = join(dir, "digested.ndjson");
    // byte path and exact path: escapes, exponents, -0, deep nesting, composite keys, a bad line
    const lines = Array.from({ length: 3000 }, (_, i) =>
      i % 9 === 0
        ? `{"k": "D${i}", "part": ${i % 3}, "s": "tab\\t ${i}", "e": 1.5e2, "z": -0, "n": {"b": [1, {"y": null}], "a": "é"}}`
        : JSON.stringify({
            part: i % 3,
            k: `D${i}`,
            v: { w: [i, "x", i / 4], ok: i % 2 === 0 },
            k2: "dup",
            k2b: 1,
          }),
    );
    lines.splice(50, 0, '{"part": 1}');
    writeFileSync(file, `${lines.join("\n")}\n`);
    const options = { pool, from: `ndjson:${file}`, key: "/k,/part:int" };
    const digests = new SourceDigests(true);
    const imported = await importDocuments({
      ...options,
      onBadValue: "quarantine",
      loadedRecords: digests,
      jobs: 2,
    });
    const digested = await digests.result();
    assert.ok(digested.ok && digested.rows === 3000, JSON.stringify(digested));
    assert.equal(digests.leftOut, 1);
    const verify = () =>
      verifyDocuments({ ...options, runId: imported.runId, sourceDigests: digests, jobs: 2, chunkRows: 300 });
    const ok = await verify();
    const t = ok.tables[0]!;
    assert.equal(ok.status, "identical", JSON.stringify(t));
    assert.equal(t.sourceRows, 3000);
    assert.equal(t.targetRows, 3000);
    assert.equal(t.quarantinedRows, 1);
    assert.equal(t.chunking.chunks, 10);
    const { rows: pages } = await pool.query("select relpages from pg_class where relname = 'digested'");
    // large enough for the server-side hashing to be split among connections
    assert.ok(pages[0].relpages >= 16, JSON.stringify(pages));

    // the digests stand for the source as the import read it: a later change to the file is not re-read
    writeFileSync(file, `${lines.join("\n")}\n{"k": "late", "part": 0}\n`);
    assert.equal((await verify()).status, "identical");
    writeFileSync(file, `${lines.join("\n")}\n`);

    await pool.query(
      `update digested set doc = jsonb_set(doc, '{v,w,1}', '"y"') where k = 'D10' and part = 1`,
    );
    await pool.query(`delete from digested where k = 'D20' and part = 2`);
    await pool.query(
      `insert into digested (k, part, doc, source_file, content_hash) values ('D9999', 0, '{"k": "D9999"}', 'x', 'y')`,
    );
    const bad = await verify();
    const b = bad.tables[0]!;
    assert.equal(bad.status, "mismatch");
    assert.equal(b.changedRows, 1);
    assert.deepEqual(b.changed[0]!.key, { k: "D10", part: "1" });
    assert.deepEqual(b.changed[0]!.columns, [{ column: "doc/v/w/1", source: '"x"', target: '"y"' }]);
    assert.deepEqual(b.missing, [{ k: "D20", part: "2" }]);
    assert.deepEqual(b.extra, [{ k: "D9999", part: "0" }]);

    // repaired: identical again; then a quarantine row gone is a difference too
    await pool.query(`delete from digested where k = 'D9999'`);
    await pool.query(
      `update digested set doc = jsonb_set(doc, '{v,w,1}', '"x"') where k = 'D10' and part = 1`,
    );
    await pool.query(
      `insert into digested (k, part, doc, source_file, content_hash) values ('D20', 2, $1::jsonb, 'x', 'y')`,
      [lines[20]],
    );
    assert.equal((await verify()).status, "identical");
    await pool.query(`delete from pgshift.quarantine where run_id = $1`, [imported.runId]);
    const unrecorded = await verify();
    assert.equal(unrecorded.status, "mismatch");
    assert.match(unrecorded.tables[0]!.problems.join("; "), /quarantined 0 record/);
  });
  it("digests in the import's own thread too, without a key, and falls back on duplicate keys", async () => {
    const pool = db().pool;
    const file = join(dir, "unkeyed.ndjson");
    const lines = Array.from({ length: 200 }, (_, i) => JSON.stringify({ n: i % 50, e: "é", s: "\\" }));
    writeFileSync(file, `${lines.join("\n")}\n`);
    const digests = new SourceDigests(false, { thread: false });
    await importDocuments({ pool, from: `ndjson:${file}`, loadedRecords: digests });
    const options = { pool, from: `ndjson:${file}`, sourceDigests: digests };
    const ok = await verifyDocuments(options);
    assert.equal(ok.status, "identical", JSON.stringify(ok.tables[0]));
    assert.equal(ok.tables[0]!.sourceRows, 200);
    await pool.query(`delete from unkeyed where ctid = (select min(ctid) from unkeyed)`);
    const bad = await verifyDocuments(options);
    assert.equal(bad.status, "mismatch");
    assert.equal(bad.tables[0]!.missingRows, 1);

    const dups = new SourceDigests(true);
    const from = `ndjson:${join(dir, "dups.ndjson")}`;
    await importDocuments({
      pool,
      from,
      table: "dups2",
      key: "/id:bigint",
      duplicates: "last-wins",
      loadedRecords: dups,
    });
    assert.equal(dups.duplicates, 1);
    assert.deepEqual(await dups.result(), { ok: false, reason: "the source has duplicate keys" });
    const result = await verifyDocuments({
      pool,
      from,
      table: "dups2",
      key: "/id:bigint",
      duplicates: "last-wins",
      sourceDigests: dups,
    });
    assert.equal(result.status, "identical", JSON.stringify(result.tables[0]));
    assert.equal(result.tables[0]!.sourceRows, 2);
  });
});

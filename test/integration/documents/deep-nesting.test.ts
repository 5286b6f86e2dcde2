import assert from "node:assert/strict";
import { test } from "node:test";
import { MAX_DOCUMENT_DEPTH } from "../../../src/documents/json-depth.ts";
import { BadRecordError, importDocuments } from "../../../src/documents/import-documents.ts";
import { jsonFileSource } from "../../../src/sources/json/json-file-source.ts";
import { verifyDocuments } from "../../../src/verify/document-verify.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import { writeTemp } from "./fixtures.ts";

const db = useTestDatabase("docs_deep");

/** {"id": ID, "d": [[[...]]]} with `levels` levels of nesting in all. */
const deep = (id: string, levels: number) =>
  `{"id": "${id}", "d": ${"[".repeat(levels - 1)}${"]".repeat(levels - 1)}}`;

const DEPTHS = [4_000, 100_000];

test("ndjson: records nested 4,000 and 100,000 levels deep are quarantined with file:line, the rest loads, verify is identical", async () => {
  const lines = [
    deep("limit", MAX_DOCUMENT_DEPTH),
    ...DEPTHS.map((d) => deep(`d${d}`, d)),
    `{"id": "ok", "v": 1}`,
  ];
  const path = await writeTemp("deep.ndjson", `${lines.join("\n")}\n`);
  for (const jobs of [1, 2]) {
    const result = await importDocuments({
      pool: db().pool,
      from: `ndjson:${path}`,
      key: "/id",
      mode: "replace",
      onBadValue: "quarantine",
      jobs,
    });
    assert.deepEqual([result.recordsRead, result.recordsLoaded, result.quarantined], [4, 2, 2]);
    assert.deepEqual(
      result.problems.map((p) => p.location),
      ["deep.ndjson:2", "deep.ndjson:3"],
    );
    assert.match(result.problems[0]!.reason, /deep\.ndjson:2: record is nested deeper than 1000 levels/);
    const { rows } = await db().pool.query("select id from deep order by id");
    assert.deepEqual(
      rows.map((r) => r.id),
      ["limit", "ok"],
    );
    const verified = await verifyDocuments({
      pool: db().pool,
      from: `ndjson:${path}`,
      key: "/id",
      runId: result.runId,
    });
    assert.equal(verified.tables[0]!.status, "identical");
    assert.equal(verified.tables[0]!.quarantinedRows, 2);
  }
  // under --on-bad-value fail: a precise error naming the line, not a stack overflow or a server error
  await assert.rejects(
    importDocuments({ pool: db().pool, from: `ndjson:${path}`, key: "/id", table: "deep_fail" }),
    (error: unknown) =>
      error instanceof BadRecordError &&
      /deep\.ndjson:2: record is nested deeper than 1000 levels/.test(error.message),
  );
});

test("json arrays (whole and streamed): deep records are quarantined by their pointer, verify is identical", async () => {
  const array = `[${[...DEPTHS.map((d) => deep(`d${d}`, d)), `{"id": "ok"}`].join(",")}]`;
  const path = await writeTemp("deep.json", array);
  for (const wholeFileLimit of [Number.MAX_SAFE_INTEGER, 0]) {
    const result = await importDocuments({
      pool: db().pool,
      from: jsonFileSource(path, { wholeFileLimit }),
      table: "deep_json",
      key: "/id",
      mode: "replace",
      onBadValue: "quarantine",
    });
    assert.deepEqual([result.recordsRead, result.recordsLoaded, result.quarantined], [3, 1, 2]);
    assert.deepEqual(
      result.problems.map((p) => p.location),
      ["deep.json:/0", "deep.json:/1"],
    );
    const verified = await verifyDocuments({
      pool: db().pool,
      from: `json:${path}`,
      table: "deep_json",
      key: "/id",
      runId: result.runId,
    });
    assert.equal(verified.tables[0]!.status, "identical");
  }
  // the quarantine holds the record's own bytes (the whole-file read; streamed, its text re-spaced)
  const { rows } = await db().pool.query(
    "select convert_from(raw, 'UTF8') as raw from pgshift.quarantine where location = 'deep.json:/1' order by id",
  );
  assert.equal(rows[0].raw, deep("d100000", 100_000));
  assert.equal(rows[1].raw, deep("d100000", 100_000).replace(/ /g, ""));
});

test("an iterable's deep object is a bad record, not a crash", async () => {
  let node: unknown = [];
  for (let i = 1; i < 50_000; i++) node = [node];
  const result = await importDocuments({
    pool: db().pool,
    from: [{ id: "deep", d: node }, { id: "ok" }],
    table: "deep_iter",
    key: "/id",
    onBadValue: "quarantine",
  });
  assert.deepEqual([result.recordsLoaded, result.quarantined], [1, 1]);
  assert.match(result.problems[0]!.reason, /nested deeper than 1000 levels/);
});

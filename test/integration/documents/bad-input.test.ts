import assert from "node:assert/strict";
import { test } from "node:test";
import { importDocuments } from "../../../src/documents/import-documents.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import { writeTemp, writeTree } from "./fixtures.ts";

const db = useTestDatabase("docs_bad");

async function quarantined(runId: string) {
  const { rows } = await db().pool.query(
    "select location, column_name, reason, raw, raw_format from pgshift.quarantine where run_id = $1 order by id",
    [runId],
  );
  return rows as {
    location: string;
    column_name: string | null;
    reason: string;
    raw: Buffer;
    raw_format: string;
  }[];
}

test("ndjson: malformed line, missing key, non-object, invalid UTF-8, NUL, lone surrogate -> quarantined byte-exact, the rest loads", async () => {
  const lines: Buffer[] = [
    Buffer.from('{"id":"ok1","v":1}'),
    Buffer.from('{"id":"bad-json",'),
    Buffer.from('{"v":"no key"}'),
    Buffer.from('["an","array"]'),
    Buffer.concat([Buffer.from('{"id":"utf8","v":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]),
    Buffer.from('{"id":"nul","v":"a\\u0000b"}'),
    Buffer.from('{"id":"surrogate","nested":{"x":["\\ud800"]}}'),
    Buffer.from('{"id":"ok2","v":"\\\\u0000 is only text here"}\r'),
  ];
  const path = await writeTemp("mixed.ndjson", Buffer.concat(lines.flatMap((l) => [l, Buffer.from("\n")])));
  const result = await importDocuments({
    pool: db().pool,
    from: `ndjson:${path}`,
    key: "/id",
    onBadValue: "quarantine",
  });
  assert.equal(result.recordsRead, 8);
  assert.equal(result.recordsLoaded, 2);
  assert.equal(result.quarantined, 6);
  const { rows } = await db().pool.query("select id, doc->>'v' as v from mixed order by id");
  assert.deepEqual(
    rows.map((r) => [r.id, r.v]),
    [
      ["ok1", "1"],
      ["ok2", "\\u0000 is only text here"],
    ],
  );
  const entries = await quarantined(result.runId);
  assert.deepEqual(
    entries.map((e) => e.location),
    [
      "mixed.ndjson:2",
      "mixed.ndjson:3",
      "mixed.ndjson:4",
      "mixed.ndjson:5",
      "mixed.ndjson:6",
      "mixed.ndjson:7",
    ],
  );
  assert.match(entries[0]!.reason, /malformed JSON on line 2/);
  assert.match(entries[1]!.reason, /no key at \/id/);
  assert.match(entries[2]!.reason, /is an array, not a JSON object/);
  assert.match(entries[3]!.reason, /invalid UTF-8 at byte 19 of line 5/);
  assert.match(entries[4]!.reason, /NUL character .* at \/v/);
  assert.match(entries[5]!.reason, /unpaired UTF-16 surrogate .* at \/nested\/x\/0/);
  for (const [i, entry] of entries.entries()) {
    assert.deepEqual(entry.raw, lines[i + 1], `raw of ${entry.location} is byte-exact`);
    assert.equal(entry.raw_format, "ndjson-line");
  }
});

test("--on-bad-value fail stops at the first bad record with its location, and nothing is committed", async () => {
  const path = await writeTemp("strict.ndjson", '{"id":1}\n{"id":2,"v":"\\u0000"}\n{"id":3}\n');
  await assert.rejects(
    importDocuments({ pool: db().pool, from: `ndjson:${path}`, key: "/id" }),
    (error: Error) => {
      assert.match(
        error.message,
        /^strict\.ndjson:2: NUL character .* at \/v; pass --on-bad-value quarantine/,
      );
      return true;
    },
  );
  const { rows } = await db().pool.query("select to_regclass('public.strict') as t");
  assert.equal(rows[0].t, null);
});

test("json:DIR: a malformed file and an invalid UTF-8 file are quarantined whole; other files load", async () => {
  const broken = '{"id": "b", "v": [1, 2}\n';
  const badUtf8 = Buffer.concat([Buffer.from('{"id": "u", "v": "'), Buffer.from([0xff]), Buffer.from('"}')]);
  const root = await writeTree({
    "a.json": JSON.stringify({ id: "a" }),
    "b.json": broken,
    "c.json": JSON.stringify([{ id: "c1" }, 42, { id: "c3" }]),
    "d.json": badUtf8,
  });
  const result = await importDocuments({
    pool: db().pool,
    from: `json:${root}`,
    key: "/id",
    table: "dir_bad",
    onBadValue: "quarantine",
  });
  assert.equal(result.recordsRead, 6);
  assert.equal(result.recordsLoaded, 3);
  assert.equal(result.quarantined, 3);
  const entries = await quarantined(result.runId);
  assert.deepEqual(
    entries.map((e) => e.location),
    ["b.json", "c.json:/1", "d.json"],
  );
  assert.match(entries[0]!.reason, /malformed JSON in b\.json: .*\(line 1, column \d+\)/);
  assert.deepEqual(entries[0]!.raw, Buffer.from(broken));
  assert.equal(entries[1]!.raw.toString(), "42");
  assert.match(entries[2]!.reason, /invalid UTF-8 at line 1, byte 19 of d\.json/);
  assert.deepEqual(entries[2]!.raw, badUtf8);
});

test("json:FILE streamed: a syntax error midway keeps the records before it and names the first one lost", async () => {
  const good = Array.from({ length: 3000 }, (_, i) => JSON.stringify({ id: i, pad: "x".repeat(20) }));
  const text = `[${good.join(",\n")},\n{"id": 3000, oops}\n, {"id": 3001}]`;
  const { jsonFileSource } = await import("../../../src/sources/json/json-file-source.ts");
  const path = await writeTemp("midway.json", text);
  const result = await importDocuments({
    pool: db().pool,
    from: jsonFileSource(path, { wholeFileLimit: 0 }),
    key: "/id",
    table: "midway",
    onBadValue: "quarantine",
  });
  assert.equal(result.quarantined, 1);
  assert.ok(result.recordsLoaded > 2000, `most records before the error load (${result.recordsLoaded})`);
  const entries = await quarantined(result.runId);
  assert.match(
    entries[0]!.reason,
    new RegExp(
      `malformed JSON in midway\\.json near line \\d+: .*; records before /${result.recordsLoaded} were loaded`,
    ),
  );
  assert.deepEqual(entries[0]!.raw, Buffer.from(text));
  const { rows } = await db().pool.query("select count(*)::int as n, max(id::int) as top from midway");
  assert.deepEqual(rows[0], { n: result.recordsLoaded, top: result.recordsLoaded - 1 });
});

test("--column values that do not convert are quarantined with the column named", async () => {
  const path = await writeTemp(
    "dated.ndjson",
    '{"id":1,"d":"2024-02-29"}\n{"id":2,"d":"2023-02-29"}\n{"id":3,"d":"soon"}\n{"id":4}\n',
  );
  const result = await importDocuments({
    pool: db().pool,
    from: `ndjson:${path}`,
    key: "/id:bigint",
    columns: ["d=/d:date"],
    onBadValue: "quarantine",
  });
  assert.equal(result.recordsLoaded, 2);
  const entries = await quarantined(result.runId);
  assert.deepEqual(
    entries.map((e) => [e.location, e.column_name]),
    [
      ["dated.ndjson:2", "d"],
      ["dated.ndjson:3", "d"],
    ],
  );
  assert.match(entries[0]!.reason, /column d \(\/d\): string "2023-02-29" is not a date/);
});

test("csv: wrong field count and invalid UTF-8 are quarantined as csv-line; the rest loads typed", async () => {
  const content = Buffer.concat([
    Buffer.from('id,name,amount\n1,"Smith, J",10\n2,short\n3,'),
    Buffer.from([0xe9]),
    Buffer.from('t\xe9,5\n4,"multi\nline",7\n', "latin1"),
  ]);
  const path = await writeTemp("people.csv", content);
  const result = await importDocuments({ pool: db().pool, from: `csv:${path}`, onBadValue: "quarantine" });
  assert.equal(result.recordsRead, 4);
  assert.equal(result.recordsLoaded, 2);
  const entries = await quarantined(result.runId);
  assert.deepEqual(
    entries.map((e) => [e.location, e.raw_format]),
    [
      ["people.csv:3", "csv-line"],
      ["people.csv:4", "csv-line"],
    ],
  );
  assert.match(entries[0]!.reason, /line 3 has 2 fields, the header has 3/);
  assert.match(entries[1]!.reason, /invalid UTF-8 in field 2 \(name\) at line 4/);
  assert.deepEqual(
    entries[1]!.raw,
    Buffer.concat([Buffer.from("3,"), Buffer.from([0xe9]), Buffer.from("t\xe9,5", "latin1")]),
  );
  const { rows } = await db().pool.query("select id, name, amount from people order by id");
  assert.deepEqual(rows, [
    { id: "1", name: "Smith, J", amount: "10" },
    { id: "4", name: "multi\nline", amount: "7" },
  ]);
});

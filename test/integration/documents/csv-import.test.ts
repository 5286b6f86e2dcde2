import assert from "node:assert/strict";
import { test } from "node:test";
import { importDocuments } from "../../../src/documents/import-documents.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import { writeTemp } from "./fixtures.ts";

const db = useTestDatabase("docs_csv");

test("csv: a typed table whose types come from scanning every value, not the first row", async () => {
  const csv = [
    "id,code,amount,active,day,at,note,big",
    '1,007,10,true,2024-01-31,2024-01-31T10:00:00Z,"quoted, with comma",1',
    "2,8,10.5,false,2024-02-29,2024-02-01 09:30:00+02:00,,99999999999999999999",
    '3,9,,TRUE,,,"He said ""hi""",2',
  ].join("\r\n");
  const path = await writeTemp("ledger.csv", `${csv}\r\n`);
  const result = await importDocuments({ pool: db().pool, from: `csv:${path}`, key: "/id" });
  assert.equal(result.target.kind, "typed");
  assert.deepEqual(
    result.columns.map((c) => `${c.name} ${c.type}`),
    [
      "id bigint",
      "code text",
      "amount numeric",
      "active boolean",
      "day date",
      "at timestamptz",
      "note text",
      "big numeric",
      "_source_file text",
      "_content_hash text",
      "_loaded_at timestamptz",
    ],
  );
  const { rows } = await db().pool.query(
    `select id, code, amount::text, active, day::text, extract(epoch from at)::bigint as at, note, big::text from ledger order by id`,
  );
  assert.deepEqual(rows, [
    {
      id: "1",
      code: "007",
      amount: "10",
      active: true,
      day: "2024-01-31",
      at: "1706695200",
      note: "quoted, with comma",
      big: "1",
    },
    {
      id: "2",
      code: "8",
      amount: "10.5",
      active: false,
      day: "2024-02-29",
      at: "1706772600",
      note: null,
      big: "99999999999999999999",
    },
    { id: "3", code: "9", amount: null, active: true, day: null, at: null, note: 'He said "hi"', big: "2" },
  ]);
});

test("csv: delimiter, latin1 encoding, a document table on request", async () => {
  const path = await writeTemp(
    "cities.tsv",
    Buffer.from("name\tcountry\nMünchen\tDE\nSão Paulo\tBR\n", "latin1"),
  );
  const result = await importDocuments({
    pool: db().pool,
    from: `csv:${path}`,
    delimiter: "tab",
    encoding: "latin1",
    typed: false,
    key: "/name",
  });
  assert.equal(result.target.kind, "documents");
  const { rows } = await db().pool.query("select name, doc from cities order by name");
  assert.deepEqual(rows, [
    { name: "München", doc: { name: "München", country: "DE" } },
    { name: "São Paulo", doc: { name: "São Paulo", country: "BR" } },
  ]);
});

test("csv: semicolons, utf16le, no key (insert only)", async () => {
  const path = await writeTemp("semi.csv", Buffer.from("\ufeffa;b\n1;x\n2;y\n", "utf16le"));
  const result = await importDocuments({
    pool: db().pool,
    from: `csv:${path}`,
    delimiter: ";",
    encoding: "utf16le",
  });
  assert.equal(result.inserted, 2);
  const { rows } = await db().pool.query("select a, b from semi order by a");
  assert.deepEqual(rows, [
    { a: "1", b: "x" },
    { a: "2", b: "y" },
  ]);
  await assert.rejects(
    importDocuments({ pool: db().pool, from: `csv:${path}`, mode: "upsert" }),
    /--mode upsert needs --key/,
  );
});

import assert from "node:assert/strict";
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { gzipSync } from "node:zlib";
import type { DocumentSource, SourceItem } from "../../../src/documents/source-record.ts";
import { csvSource } from "../../../src/sources/csv/csv-source.ts";
import { jsonDirSource, walkJsonFiles } from "../../../src/sources/json/json-dir-source.ts";
import { jsonFileSource } from "../../../src/sources/json/json-file-source.ts";
import { ndjsonSource } from "../../../src/sources/ndjson/ndjson-source.ts";

async function file(name: string, content: string | Buffer): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "pgshift-src-"));
  await writeFile(join(dir, name), content);
  return join(dir, name);
}

async function items(source: DocumentSource): Promise<SourceItem[]> {
  const all: SourceItem[] = [];
  for await (const item of source.read()) all.push(item);
  return all;
}

const summary = (list: SourceItem[]) =>
  list.map((i) =>
    i.kind === "record"
      ? `${i.location} ${i.text ?? JSON.stringify(i.value)}`
      : `${i.location} ! ${i.reason}`,
  );

test("ndjson: BOM, CRLF, blank lines, no final newline, line numbers; gzip by magic bytes", async () => {
  const text = '\ufeff{"a":1}\r\n\r\n  \n{"a":2}\n{"a":3}';
  assert.deepEqual(summary(await items(ndjsonSource(await file("x.ndjson", text)))), [
    'x.ndjson:1 {"a":1}',
    'x.ndjson:4 {"a":2}',
    'x.ndjson:5 {"a":3}',
  ]);
  const gz = ndjsonSource(await file("y.jsonl.gz", gzipSync(text)));
  assert.equal(gz.defaultTable, "y");
  assert.equal((await items(gz)).length, 3);
});

test("ndjson: lines split across read chunks keep their numbers", async () => {
  const lines = Array.from({ length: 5000 }, (_, i) => JSON.stringify({ i, pad: "é".repeat(i % 300) }));
  const list = await items(ndjsonSource(await file("big.ndjson", `${lines.join("\n")}\n`)));
  assert.equal(list.length, 5000);
  assert.ok(list.every((item, i) => item.kind === "record" && (item.value as { i: number }).i === i));
  assert.equal(list[4321]!.location, "big.ndjson:4322");
});

test("json:DIR walks depth-first in sorted order, .json only, hidden entries skipped", async () => {
  const root = await mkdtemp(join(tmpdir(), "pgshift-walk-"));
  for (const path of ["b/2.json", "b/10.json", "a.json", "c.JSON", ".git/x.json", "d.txt"]) {
    await mkdir(join(root, path, ".."), { recursive: true });
    await writeFile(join(root, path), "{}");
  }
  const seen: string[] = [];
  for await (const path of walkJsonFiles(root)) seen.push(path.slice(root.length + 1));
  assert.deepEqual(seen, ["a.json", "b/10.json", "b/2.json", "c.JSON"]);
  assert.equal(jsonDirSource(`${root}/`).defaultTable, root.split("/").pop());
});

test("json:FILE: whole-file and streamed reads give the same records and locations", async () => {
  const path = await file("env.json", JSON.stringify({ data: { items: [{ a: 1 }, [2], "three"] } }));
  for (const wholeFileLimit of [Number.MAX_SAFE_INTEGER, 0]) {
    const list = await items(jsonFileSource(path, { recordsPointer: ["data", "items"], wholeFileLimit }));
    assert.deepEqual(
      list.map((i) => (i.kind === "record" ? [i.location, i.value] : [i.location, i.reason])),
      [
        ["env.json:/data/items/0", { a: 1 }],
        ["env.json:/data/items/1", [2]],
        ["env.json:/data/items/2", "three"],
      ],
    );
  }
  const missing = await items(jsonFileSource(path, { recordsPointer: ["results"] }));
  assert.match(summary(missing)[0]!, /no records at \/results in env\.json/);
});

test("csv: quoted fields, embedded newlines and quotes, duplicate and empty headers", async () => {
  const path = await file("t.csv", 'a,a,,b\n1,"x,y","line1\nline2","he said ""hi"""\n');
  const list = await items(csvSource(path));
  assert.equal(list.length, 1);
  const record = list[0]!;
  assert.equal(record.kind, "record");
  assert.deepEqual(record.kind === "record" && record.value, {
    a: "1",
    a_2: "x,y",
    column_3: "line1\nline2",
    b: 'he said "hi"',
  });
  assert.deepEqual(Buffer.from(record.raw()!).toString(), '1,"x,y","line1\nline2","he said ""hi"""');
  assert.throws(() => csvSource(path, { encoding: "ebcdic" }), /unsupported CSV encoding/);
  assert.throws(() => csvSource(path, { delimiter: ";;" }), /one character/);
});

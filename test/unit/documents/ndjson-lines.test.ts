import assert from "node:assert/strict";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { gzipSync } from "node:zlib";
import type { DocumentSource, SourceItem } from "../../../src/documents/source-record.ts";
import { ndjsonSource } from "../../../src/sources/ndjson/ndjson-source.ts";

async function file(name: string, content: string | Buffer): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "pgshift-ndjson-lines-"));
  const path = join(dir, name);
  await writeFile(path, content);
  return path;
}

interface Entry {
  line: number;
  /** The entry's text bytes (fast path), or undefined for a problem entry. */
  text: string | undefined;
  item: SourceItem | undefined;
}

async function entries(source: DocumentSource): Promise<Entry[]> {
  const out: Entry[] = [];
  for await (const batch of source.readLines!()) {
    for (let i = 0; i < batch.count; i++) {
      out.push({
        line: batch.line[i]!,
        text: batch.text[i] === 1 ? batch.bytes.toString("utf8", batch.start[i], batch.end[i]) : undefined,
        item: batch.item(i),
      });
    }
  }
  return out;
}

async function items(source: DocumentSource): Promise<SourceItem[]> {
  const out: SourceItem[] = [];
  for await (const item of source.read()) out.push(item);
  return out;
}

test("ndjson lines: byte ranges without BOM, newline and carriage return; blank lines are no entries", async () => {
  const content = Buffer.concat([
    Buffer.from([0xef, 0xbb, 0xbf]),
    Buffer.from('{"a":1}\r\n\n  \n\r\n{"a":"é"}\n'),
    Buffer.from([0x7b, 0xff, 0x7d, 0x0a]),
    Buffer.from('{"a":3}\r\r\n[1]'),
  ]);
  const source = ndjsonSource(await file("x.ndjson", content));
  const list = await entries(source);
  assert.deepEqual(
    list.map((e) => [e.line, e.text]),
    [
      [1, '{"a":1}'],
      [3, "  "],
      [5, '{"a":"é"}'],
      [6, undefined],
      [7, '{"a":3}\r'],
      [8, "[1]"],
    ],
  );
  // the whitespace line is blank for the exact path too; the rest are what read() yields
  assert.equal(list[1]!.item, undefined);
  const read = await items(source);
  assert.deepEqual(
    read.map((i) => i.location),
    list.filter((e) => e.item).map((e) => e.item!.location),
  );
  assert.equal(list[0]!.item!.kind, "record");
  assert.deepEqual(list[0]!.item!.raw(), Buffer.from('{"a":1}\r'), "raw keeps the carriage return");
  assert.equal(list[3]!.item!.kind, "problem");
  assert.match((list[3]!.item as { reason: string }).reason, /invalid UTF-8 at byte 2 of line 6/);
  assert.deepEqual(list[3]!.item!.raw(), Buffer.from([0x7b, 0xff, 0x7d]));
  // only one carriage return belongs to the line end; the other is JSON whitespace, kept in the text
  assert.equal(list[4]!.item!.kind, "record");
  assert.deepEqual(list[4]!.item!.raw(), Buffer.from('{"a":3}\r\r'));
});

test("ndjson lines: many batches (plain and gzip) number every line once and agree with read()", async () => {
  const lines: string[] = [];
  for (let i = 1; i <= 30_000; i++)
    lines.push(i % 1000 === 0 ? "" : JSON.stringify({ i, pad: "x".repeat(i % 150) }));
  const text = `${lines.join("\n")}\n`;
  assert.ok(text.length > 2 * 1024 * 1024, "more than one read chunk");
  for (const [name, content] of [
    ["big.ndjson", text],
    ["big.ndjson.gz", gzipSync(text)],
  ] as const) {
    const source = ndjsonSource(await file(name, content));
    const list = await entries(source);
    assert.equal(list.length, 30_000 - 30);
    for (const entry of list) {
      assert.equal(entry.text, lines[entry.line - 1], `line ${entry.line}`);
      assert.equal(entry.item!.location, `${name}:${entry.line}`);
    }
    assert.equal((await items(source)).length, list.length);
  }
});

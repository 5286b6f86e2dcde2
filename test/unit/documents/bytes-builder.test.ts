import assert from "node:assert/strict";
import { test } from "node:test";
import { parseColumnSpec, parseKeySpecs } from "../../../src/documents/document-table.ts";
import {
  contentHash,
  contentHashBytes,
  DocumentBytesBuilder,
  DocumentRowBuilder,
} from "../../../src/documents/row-builder.ts";
import type { SourceRecord } from "../../../src/documents/source-record.ts";
import {
  BINARY_COPY_HEADER,
  BinaryCopyBuffer,
  type CopyBuffer,
  TextCopyBuffer,
} from "../../../src/pg/copy-buffer.ts";
import { type CopyValue, encodeCopyRow } from "../../../src/pg/copy-writer.ts";

function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    return state / 0x7fffffff;
  };
}

function record(text: string): SourceRecord {
  return {
    kind: "record",
    value: JSON.parse(text),
    text,
    file: "f.ndjson",
    location: "f.ndjson:1",
    raw: () => Buffer.from(text),
    rawFormat: "ndjson-line",
  };
}

/** The row the exact path builds, written into `out` the way the record loader writes it. */
function slowRow(
  builder: DocumentRowBuilder,
  types: readonly string[],
  text: string,
  out: CopyBuffer,
  ordinal: number,
) {
  const built = builder.build(record(text));
  if (!built.ok) return built;
  const values = [...built.values, ordinal];
  out.beginRow(values.length);
  values.forEach((value, i) => out.value(value, types[i]!));
  out.endRow();
  return built;
}

test("the bytes fast path appends exactly the row DocumentRowBuilder builds, or declines", () => {
  const keys = parseKeySpecs(["/id", "/meta/code:bigint"]);
  const binaryExtras = [
    parseColumnSpec("second=/list/1"),
    parseColumnSpec("flag=/flag:boolean"),
    parseColumnSpec("meta=/meta:jsonb"),
    parseColumnSpec("n=/n:integer"),
  ];
  // a date column makes the loader use COPY text
  const textExtras = [parseColumnSpec("day=/day:date"), ...binaryExtras];
  const rnd = random(7);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rnd() * items.length)]!;
  // mostly values that convert, sometimes ones that do not (the exact path must then have its say)
  const either = (good: readonly string[], odd: readonly string[]) => () =>
    rnd() < 0.88 ? pick(good) : pick(odd);
  const id = either(
    ['"K1"', '"K\\"2\\""', '"ü😀"', "17", "1.0", "1e21", '"\\u0041"', '"tab\\t"'],
    ['""', "null", "true", "{}"],
  );
  const code = either(["1", '"42"', '" 7 "', "-3"], ["1.5", '"x"', "null", "9223372036854775808"]);
  const day = either(['"2024-02-29"', '"20240301"', "null"], ['"2023-02-29"', "5"]);
  const flag = either(["true", "false", '"yes"', "null"], ['"maybe"']);
  const n = either(["1", '"-5"', "null"], ["2147483648", "0.5"]);
  const spaces = () => pick(["", " ", "\t", "\r"]);
  const texts: string[] = [];
  for (let i = 0; i < 4000; i++) {
    const members = [
      `"id":${id()}`,
      `"meta":{"code":${code()}${rnd() < 0.2 ? `,"code":${code()}` : ""},"x":[1,{"y":"\\n"}]}`,
      `"day":${day()}`,
      `"list":[${pick(['"a"', "0", "[]"])},${pick(['"b"', "{}", "null", '"\\\\"'])}]`,
      `"flag":${flag()}`,
      `"n":${n()}`,
    ].filter(() => rnd() < 0.93);
    if (rnd() < 0.1) members.push(`"id":${id()}`);
    if (rnd() < 0.05) members.push(`"me\\u0074a":{"code":5}`);
    members.sort(() => rnd() - 0.5);
    texts.push(`${spaces()}{${members.map((m) => `${spaces()}${m}`).join(",")}}${spaces()}`);
  }
  texts.push('["not an object"]', '{"id":"x"', '"text"', '{"id":"a","meta":{"code":1},"s":"\\u0000"}');
  let fastRows = 0;
  for (const format of ["text", "binary"] as const) {
    const make = () => (format === "text" ? new TextCopyBuffer() : new BinaryCopyBuffer());
    const extras = format === "text" ? textExtras : binaryExtras;
    const types = [
      ...keys.map((k) => k.type),
      "jsonb",
      ...extras.map((e) => e.type),
      "text",
      "text",
      "bigint",
    ];
    const fast = new DocumentBytesBuilder(keys, extras);
    const slow = new DocumentRowBuilder(keys, extras);
    texts.forEach((text, ordinal) => {
      const bytes = Buffer.from(`xx${text}yy`);
      const fastOut = make();
      const slowOut = make();
      const key = fast.append(bytes, 2, bytes.length - 2, "f.ndjson", fastOut, ordinal);
      let built: ReturnType<DocumentRowBuilder["build"]> | undefined;
      try {
        built = slowRow(slow, types, text, slowOut, ordinal);
      } catch {
        built = undefined; // JSON.parse refused it
      }
      if (key === undefined) {
        assert.equal(fastOut.size, 0, text);
        return;
      }
      fastRows++;
      assert.ok(built?.ok, `declined by the exact path but taken by the fast one: ${text}`);
      assert.equal(key, built.key, text);
      assert.deepEqual(fastOut.take(), slowOut.take(), text);
    });
  }
  assert.ok(fastRows > 2000, `fast rows: ${fastRows}`);
  assert.ok(fastRows < 7000, `the generator makes records the fast path declines too: ${fastRows}`);
});

test("a record without its text (an array element): jsonb problems still found, through JSON.stringify's escapes", () => {
  const builder = new DocumentRowBuilder(parseKeySpecs("/id"), []);
  const build = (value: unknown) =>
    builder.build({ ...record("{}"), value, text: undefined, location: "a.json:/results/3" });
  assert.deepEqual(build({ id: "a", deep: [{ s: "x\u0000" }] }), {
    ok: false,
    reason: "a.json:/results/3: NUL character (\\u0000), which PostgreSQL jsonb cannot store at /deep/0/s",
    column: "doc",
  });
  assert.match(
    (build({ id: "a", ["k\udc00"]: 1 }) as { reason: string }).reason,
    /surrogate .* in a key at \/k/,
  );
  const ok = build({ id: "a", s: "😀 \\u0000 é" });
  assert.ok(ok.ok);
  assert.equal(ok.values[1], '{"id":"a","s":"😀 \\\\u0000 é"}');
  assert.equal(ok.values[3], contentHash('{"id":"a","s":"😀 \\\\u0000 é"}'));
});

test("content hash of the bytes is the content hash of the text", () => {
  const text = '{"city":"Reykjavík","emoji":"😀","esc":"\\u00e9"}';
  assert.equal(contentHashBytes(Buffer.from(text, "utf8")), contentHash(text));
});

test("COPY text buffer encodes like encodeCopyRow; jsonBytes escapes only when told", () => {
  const values: CopyValue[] = ["a\tb\\c\nd\re", null, 42, 1.5, true, 10n, "ü😀", { x: "y\n" }];
  const text = new TextCopyBuffer();
  text.beginRow(values.length + 1);
  for (const value of values) text.value(value, "text");
  const json = Buffer.from('{"a":"\\n"}\t');
  text.jsonBytes(json, 0, json.length, true);
  text.endRow();
  text.beginRow(1);
  text.jsonBytes(json, 0, 4, false);
  text.endRow();
  assert.equal(text.rows, 2);
  assert.equal(text.take().toString("utf8"), `${encodeCopyRow([...values, '{"a":"\\n"}\t'])}{"a"\n`);
  text.beginRow(1);
  assert.throws(() => text.value("nul\u0000", "text"), /NUL/);
});

test("COPY binary buffer: field lengths, jsonb version byte, big-endian integers, NULL", () => {
  const binary = new BinaryCopyBuffer();
  binary.beginRow(6);
  binary.value("é", "text");
  binary.value('{"a":1}', "jsonb");
  binary.value("-2", "integer");
  binary.value(5, "bigint");
  binary.value(true, "boolean");
  binary.value(null, "text");
  binary.endRow();
  const expected = Buffer.concat([
    Buffer.from([0, 6]),
    Buffer.from([0, 0, 0, 2, 0xc3, 0xa9]),
    Buffer.from([0, 0, 0, 8, 1]),
    Buffer.from('{"a":1}'),
    Buffer.from([0, 0, 0, 4, 0xff, 0xff, 0xff, 0xfe]),
    Buffer.from([0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 5]),
    Buffer.from([0, 0, 0, 1, 1]),
    Buffer.from([0xff, 0xff, 0xff, 0xff]),
  ]);
  assert.deepEqual(binary.take(), expected);
  assert.equal(BINARY_COPY_HEADER.length, 19);
  binary.beginRow(1);
  assert.throws(() => binary.value("2147483648", "integer"), /not an integer/);
  assert.throws(() => binary.value("2024-01-01", "date"), /COPY binary does not carry date/);
  binary.dropRow();
  assert.equal(binary.size, 0);
});

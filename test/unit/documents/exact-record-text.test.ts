import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type { SourceItem } from "../../../src/documents/source-record.ts";
import { jsonFileSource } from "../../../src/sources/json/json-file-source.ts";

async function records(text: string, options: { recordsPointer?: string[] } = {}) {
  const path = join(tmpdir(), `pgshift-exact-${process.pid}-${Math.random().toString(36).slice(2)}.json`);
  await writeFile(path, text);
  const out: { text: string | undefined; value: unknown; location: string }[] = [];
  for (const wholeFileLimit of [Number.MAX_SAFE_INTEGER, 0]) {
    const items: SourceItem[] = [];
    for await (const item of jsonFileSource(path, { ...options, wholeFileLimit }).read()) items.push(item);
    out.push(
      ...items.map((item) => ({
        text: item.kind === "record" ? item.text : undefined,
        value: item.kind === "record" ? item.value : item.reason,
        location: item.location,
      })),
    );
  }
  return out;
}

test("streamed and whole JSON files give every record its text with the source's digits", async () => {
  const text = ` {"results": [ {"a": 12345678901234567890, "b": [1.50, -0, 1e2, "x\\"y\\u00e9"], "c": {}, "d": []}, 7, null ] }`;
  const got = await records(text, { recordsPointer: ["results"] });
  const whole = got.slice(0, 3);
  const streamed = got.slice(3);
  assert.deepEqual(
    whole.map((r) => r.text),
    ['{"a": 12345678901234567890, "b": [1.50, -0, 1e2, "x\\"y\\u00e9"], "c": {}, "d": []}', "7", "null"],
  );
  // streamed: the same values, numbers as written, strings re-escaped, no spaces
  assert.deepEqual(
    streamed.map((r) => r.text),
    ['{"a":12345678901234567890,"b":[1.50,-0,1e2,"x\\"yé"],"c":{},"d":[]}', "7", "null"],
  );
  assert.deepEqual(
    streamed.map((r) => r.location),
    whole.map((r) => r.location),
  );
  for (let i = 0; i < 3; i++) assert.deepEqual(JSON.parse(streamed[i]!.text!), whole[i]!.value);
});

test("a streamed file that is one object is one record with its digits", async () => {
  const got = await records(`{"id": 9007199254740993, "nested": {"list": [[], [{}]]}}`);
  assert.equal(got.length, 2);
  assert.equal(got[1]!.text, '{"id":9007199254740993,"nested":{"list":[[],[{}]]}}');
  assert.equal(got[0]!.text, `{"id": 9007199254740993, "nested": {"list": [[], [{}]]}}`);
});

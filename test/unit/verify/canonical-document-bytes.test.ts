import assert from "node:assert/strict";
import { test } from "node:test";
import { CanonicalBytesWriter } from "../../../src/verify/canonical-document-bytes.ts";
import { jsonbText } from "../../../src/verify/canonical-json.ts";

function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    return state / 0x7fffffff;
  };
}

/** The writer's text for `text` embedded in other bytes (as a line of a batch is), or undefined when it declines. */
function canonical(writer: CanonicalBytesWriter, text: string, prefix = ""): string | undefined {
  const bytes = Buffer.from(`0e1"x ${text} 9"}`, "utf8");
  const start = Buffer.byteLength('0e1"x ', "utf8");
  const end = start + Buffer.byteLength(text, "utf8");
  writer.reserve(Buffer.byteLength(prefix, "utf8"), end - start);
  const at = writer.out.write(prefix, 0, "utf8");
  const length = writer.write(bytes, start, end, at);
  return length < 0 ? undefined : writer.out.toString("utf8", 0, length);
}

test("writes jsonb's text: key order by length then bytes, last duplicate kept, spacing", () => {
  const writer = new CanonicalBytesWriter();
  const cases: [string, string][] = [
    [
      '{"b":1,"a":[true,false,null,-3],"aa":{"é":"x","ab":{}},"a":2}',
      '{"a": 2, "b": 1, "aa": {"ab": {}, "é": "x"}}',
    ],
    ['{ "id" : "E1" , "n" : 12.50 , "z" : [ ] , "e" : { } }', '{"e": {}, "n": 12.50, "z": [], "id": "E1"}'],
    ['{"x":[1,[2,{"b":0,"a":-0.5}],"s"]}', '{"x": [1, [2, {"a": -0.5, "b": 0}], "s"]}'],
    [
      '{"big":123456789012345678901234567890,"t":"日本 😀"}',
      '{"t": "日本 😀", "big": 123456789012345678901234567890}',
    ],
    ["{}", "{}"],
    ['{"a":1,"a":2,"a":3}', '{"a": 3}'],
  ];
  for (const [input, expected] of cases) {
    assert.equal(canonical(writer, input), expected, input);
    assert.equal(canonical(writer, input), jsonbText(input), input);
    assert.equal(canonical(writer, input, "2:K1"), `2:K1${expected}`, input);
  }
});

test("declines what jsonb prints otherwise, and what is not JSON", () => {
  const writer = new CanonicalBytesWriter();
  for (const input of [
    '{"a":"tab\\there"}',
    '{"a\\"b":1}',
    '{"a":1e2}',
    '{"a":1.5E-3}',
    '{"a":-0}',
    '{"a":-0.00}',
    '{"a":01}',
    '{"a":1.}',
    '{"a":.5}',
    '{"a":tru}',
    '{"a":1,}',
    '{"a" 1}',
    '{"a":1} x',
    '{"a":[1 2]}',
    '{"a":"unterminated}',
    `${"[".repeat(70)}${"]".repeat(70)}`,
    '{"a":1',
  ]) {
    assert.equal(canonical(writer, input), undefined, input);
  }
});

test("agrees with the exact parser on 3000 random documents, or declines", () => {
  const next = random(42);
  const writer = new CanonicalBytesWriter();
  const names = ["a", "b", "aa", "ab", "é", "id", "kind", "B", "", "zz", "a b", "日"];
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
  const number = (): string =>
    pick([
      () => String(Math.floor(next() * 1e6) - 5e5),
      () => (next() * 1000 - 500).toFixed(Math.floor(next() * 4) + 1),
      () => "0",
      () => "-0",
      () => `${Math.floor(next() * 9) + 1}e${Math.floor(next() * 5)}`,
      () => "12345678901234567890.10",
    ])();
  const value = (depth: number): string => {
    const r = next();
    if (depth > 3 || r < 0.3) return number();
    if (r < 0.45) return pick(["true", "false", "null"]);
    if (r < 0.65) return JSON.stringify(pick(["x", "y z", "é", "a\tb", 'q"', "", "😀"]));
    const space = pick(["", " ", "\t", " \r "]);
    if (r < 0.8) {
      const items = Array.from({ length: Math.floor(next() * 4) }, () => value(depth + 1));
      return `[${space}${items.join(`${space},${space}`)}${space}]`;
    }
    const members = Array.from(
      { length: Math.floor(next() * 6) },
      () => `${JSON.stringify(pick(names))}${space}:${space}${value(depth + 1)}`,
    );
    return `{${space}${members.join(`,${space}`)}${space}}`;
  };
  let written = 0;
  for (let i = 0; i < 3000; i++) {
    const text = value(0);
    const got = canonical(writer, text);
    if (got === undefined) continue;
    written++;
    assert.equal(got, jsonbText(text), text);
  }
  // most documents take the byte path (declined: an exponent, -0, an escape somewhere in them)
  assert.ok(written > 1000, `only ${written} of 3000 written`);
});

test("grows for a large document and keeps the caller's prefix", () => {
  const writer = new CanonicalBytesWriter();
  const members = Array.from({ length: 5000 }, (_, i) => `"k${5000 - i}":[${i},"v${i}"]`);
  const text = `{${members.join(",")}}`;
  assert.equal(canonical(writer, text, "5:ABCDE"), `5:ABCDE${jsonbText(text)}`);
});

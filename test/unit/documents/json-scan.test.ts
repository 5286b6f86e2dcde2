import { MAX_DOCUMENT_DEPTH } from "../../../src/documents/json-depth.ts";
import assert from "node:assert/strict";
import { test } from "node:test";
import { JsonScanner } from "../../../src/documents/json-scan.ts";
import { findJsonbProblem } from "../../../src/documents/jsonb-check.ts";

/** A small deterministic generator (the same cases on every run). */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    return state / 0x7fffffff;
  };
}

function scanText(scanner: JsonScanner, text: string): boolean {
  const bytes = Buffer.from(text, "utf8");
  return scanner.scan(bytes, 0, bytes.length);
}

test("json scan accepts what JSON.parse accepts and refuses the rest (fixed cases)", () => {
  const scanner = new JsonScanner([]);
  const valid = [
    "{}",
    "[]",
    ' { "a" : [ 1 , -0.5e+3 , true , false , null , "x" ] } ',
    '"\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00"',
    "0",
    "-0",
    "1E400",
    "123456789012345678901234567890",
    '{"a":{"b":{"c":[[[]]]}}}',
    "\t\n\r {}\r\n",
    '{"é😀":"raw UTF-8 ü"}',
  ];
  for (const text of valid) {
    assert.doesNotThrow(() => JSON.parse(text), text);
    assert.equal(scanText(scanner, text), true, text);
  }
  const invalid = [
    "",
    " ",
    "{",
    '{"a":1,}',
    "[1,]",
    "[,1]",
    "01",
    "1.",
    ".5",
    "+1",
    "1e",
    "-",
    "tru",
    "nulll",
    "NaN",
    '{"a" 1}',
    "{a:1}",
    "'a'",
    '"\\x"',
    '"\\u12g4"',
    '"tab\there"',
    '"a',
    "{} {}",
    "[1 2]",
    '{"a":1 "b":2}',
    "\u000b{}",
    "\u00a0{}",
  ];
  for (const text of invalid) {
    assert.throws(() => JSON.parse(text), text);
    assert.equal(scanText(scanner, text), false, text);
    assert.equal(scanner.refusal, "invalid", text);
  }
});

test("json scan refuses strings jsonb cannot store: U+0000 and unpaired surrogates", () => {
  const scanner = new JsonScanner([]);
  for (const text of ['"\\u0000"', '["\\ud800"]', '{"k":"\\udc00x"}', '"\\ud800\\u0041"', '{"\\u0000":1}']) {
    assert.equal(scanText(scanner, text), false, text);
    assert.equal(scanner.refusal, "jsonb", text);
    assert.ok(findJsonbProblem(JSON.parse(text)), text);
  }
  assert.equal(scanText(scanner, '"\\ud83d\\ude00 \\\\u0000 is text"'), true);
  // nesting beyond the document limit is left to the exact path, which rejects it with the location
  const over = MAX_DOCUMENT_DEPTH + 1;
  assert.equal(scanText(scanner, `${"[".repeat(over)}${"]".repeat(over)}`), false);
  assert.equal(scanner.refusal, "too-deep");
  const limit = MAX_DOCUMENT_DEPTH;
  assert.equal(scanText(scanner, `${"[".repeat(limit)}${"]".repeat(limit)}`), true);
});

test("json scan finds the last of equal member names, as JSON.parse keeps it, and only at the top level", () => {
  const scanner = new JsonScanner(["id", "k"]);
  const text = '{"id":1,"x":{"id":2,"k":"inner"},"id" : [3, {"id":4}] ,"s":"\\"id\\":5"}';
  const bytes = Buffer.from(text);
  assert.equal(scanner.scan(bytes, 0, bytes.length), true);
  assert.equal(scanner.first, 0x7b);
  assert.equal(bytes.toString("utf8", scanner.valueStart[0], scanner.valueEnd[0]), '[3, {"id":4}]');
  assert.equal(scanner.found(1), false);
  assert.equal(scanner.copyEscapes, true, "a backslash escape");
  // an escaped member name at the top level might spell a wanted one: the exact path decides
  assert.equal(scanText(scanner, '{"id":1,"i\\u0064":2}'), false);
  assert.equal(scanner.refusal, "escaped-name");
  assert.equal(scanText(new JsonScanner([]), '{"id":1,"i\\u0064":2}'), true);
  // the element of an array by index
  const elements = new JsonScanner([], 2);
  const array = Buffer.from('[0, {"a":[1]}, "two" ,3]');
  assert.equal(elements.scan(array, 0, array.length), true);
  assert.equal(array.toString("utf8", elements.valueStart[0], elements.valueEnd[0]), '"two"');
  assert.equal(scanText(scanner, '{"a":1}\t'), true);
  assert.equal(scanner.copyEscapes, true, "a tab between tokens");
  assert.equal(scanText(scanner, '{"a":"plain"}'), true);
  assert.equal(scanner.copyEscapes, false);
});

test("json scan agrees with JSON.parse on 50,000 generated and mutated texts", () => {
  const rnd = random(20261122);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rnd() * items.length)]!;
  const space = () => pick(["", "", "", " ", "\t", "\n", "\r", "  "]);
  const string = () => {
    const parts = ["a", "k", "é", "😀", "\\n", '\\"', "\\\\", "\\/", "\\u0041", "\\u00e9", "x y", ""];
    const rare = ["\\u0000", "\\ud83d\\ude00", "\\ud800", "\\udc00"];
    let out = "";
    const n = Math.floor(rnd() * 4);
    for (let i = 0; i < n; i++) out += rnd() < 0.05 ? pick(rare) : pick(parts);
    return `"${out}"`;
  };
  const value = (depth: number): string => {
    const r = rnd();
    if (depth > 3 || r < 0.3)
      return pick([
        "0",
        "-1",
        "1.5",
        "1e5",
        "-0.0E-2",
        "true",
        "false",
        "null",
        "12345678901234567890",
        string(),
      ]);
    const n = Math.floor(rnd() * 4);
    const parts: string[] = [];
    if (r < 0.65) {
      for (let i = 0; i < n; i++)
        parts.push(
          `${space()}${pick([string(), '"id"', '"id"', '"k"'])}${space()}:${space()}${value(depth + 1)}${space()}`,
        );
      return `{${parts.join(",")}${n ? "" : space()}}`;
    }
    for (let i = 0; i < n; i++) parts.push(`${space()}${value(depth + 1)}${space()}`);
    return `[${parts.join(",")}]`;
  };
  const noise = [
    '"',
    "\\",
    ",",
    ":",
    "{",
    "}",
    "[",
    "]",
    "0",
    "-",
    ".",
    "e",
    "t",
    " ",
    "\u0001",
    "x",
    "u",
    "é",
  ];
  const mutate = (text: string) => {
    const chars = [...text];
    for (let k = Math.floor(rnd() * 3); k > 0; k--) {
      const at = Math.floor(rnd() * (chars.length + 1));
      const op = rnd();
      if (op < 0.33) chars.splice(at, 1);
      else if (op < 0.66) chars.splice(at, 0, pick(noise));
      else chars[at] = pick(noise);
    }
    return chars.join("");
  };
  const scanner = new JsonScanner(["id", "k"]);
  const seen = { accepted: 0, invalid: 0, jsonb: 0 };
  for (let n = 0; n < 50_000; n++) {
    let text = `${space()}${value(0)}${space()}`;
    if (rnd() < 0.5) text = mutate(text);
    const bytes = Buffer.from(text, "utf8");
    const accepted = scanner.scan(bytes, 0, bytes.length);
    let parsed: unknown;
    let parses = true;
    try {
      parsed = JSON.parse(text);
    } catch {
      parses = false;
    }
    const context = JSON.stringify(text);
    if (accepted) {
      seen.accepted++;
      assert.ok(parses, context);
      assert.equal(findJsonbProblem(parsed), undefined, context);
      assert.equal(scanner.copyEscapes, /[\\\t\n\r]/.test(text), context);
      const object = parsed !== null && typeof parsed === "object" && !Array.isArray(parsed);
      ["id", "k"].forEach((name, i) => {
        const expected =
          object && Object.hasOwn(parsed as object, name)
            ? (parsed as Record<string, unknown>)[name]
            : undefined;
        if (expected === undefined) assert.equal(scanner.found(i), false, context);
        else
          assert.deepEqual(
            JSON.parse(bytes.toString("utf8", scanner.valueStart[i], scanner.valueEnd[i])),
            expected,
            context,
          );
      });
    } else if (scanner.refusal === "invalid") {
      seen.invalid++;
      assert.equal(parses, false, context);
    } else if (scanner.refusal === "jsonb") {
      seen.jsonb++;
    }
    if (!parses) assert.equal(accepted, false, context);
  }
  // the generator covers all three outcomes in quantity
  assert.ok(seen.accepted > 10_000 && seen.invalid > 5_000 && seen.jsonb > 1_000, JSON.stringify(seen));
});

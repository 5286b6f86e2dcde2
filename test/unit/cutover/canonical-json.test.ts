import assert from "node:assert/strict";
import { test } from "node:test";
import { canonicalEqual, canonicalJson, diffValues } from "../../../src/cutover/canonical-json.ts";

test("canonical JSON sorts keys, drops undefined members, and normalizes dates, bigints and maps", () => {
  assert.equal(
    canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: undefined } }),
    '{"a":{"d":[3,{"y":2,"z":1}]},"b":1}',
  );
  assert.equal(canonicalJson(new Date("2026-01-02T03:04:05Z")), '"2026-01-02T03:04:05.000Z"');
  assert.equal(canonicalJson({ n: 12345678901234567890n }), '{"n":"12345678901234567890"}');
  assert.equal(
    canonicalJson(
      new Map([
        ["b", 1],
        ["a", 2],
      ]),
    ),
    '{"a":2,"b":1}',
  );
  assert.equal(canonicalJson(undefined), "null");
  assert.equal(canonicalJson(Number.NaN), '"NaN"');
});

test("canonical equality ignores key order and absent-vs-undefined, not values or types", () => {
  assert.ok(canonicalEqual({ a: 1, b: [1, 2] }, { b: [1, 2], a: 1, c: undefined }));
  assert.ok(canonicalEqual(new Date("2026-01-01T00:00:00Z"), "2026-01-01T00:00:00.000Z"));
  assert.ok(!canonicalEqual({ a: 1 }, { a: "1" }));
  assert.ok(!canonicalEqual([1, 2], [2, 1]));
  assert.ok(!canonicalEqual({ a: null }, {}));
});

test("diffs name the differing members as JSON pointers", () => {
  assert.deepEqual(
    diffValues(
      { status: "done", tags: ["a", "b"], meta: { "x/y": 1 } },
      { status: "open", tags: ["a"], meta: { "x/y": 2 } },
    ),
    [
      { path: "/meta/x~1y", legacy: 1, next: 2 },
      { path: "/status", legacy: "done", next: "open" },
      { path: "/tags/1", legacy: "b", next: "(absent)" },
    ],
  );
  assert.deepEqual(diffValues({ a: 1 }, null), [{ path: "", legacy: { a: 1 }, next: null }]);
  assert.deepEqual(diffValues({ a: 1 }, { a: 1 }), []);
  const many = diffValues(Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`k${i}`, i])), {}, 5);
  assert.equal(many.length, 5);
});

test("values with reference cycles are refused rather than looping", () => {
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  assert.throws(() => canonicalJson(cyclic), /reference cycle/);
  const shared = { x: 1 };
  assert.equal(canonicalJson({ a: shared, b: shared }), '{"a":{"x":1},"b":{"x":1}}');
});

test("the in-place fast path of canonical equality agrees with comparing canonical JSON texts", () => {
  const hidden = { a: 1 };
  Object.defineProperty(hidden, "b", { value: 2, enumerable: false });
  const nullPrototype = Object.assign(Object.create(null) as Record<string, unknown>, { a: 1 });
  const deep = (n: number): unknown => (n === 0 ? { leaf: [1, "x"] } : { n, child: deep(n - 1) });
  const pairs: [unknown, unknown][] = [
    [
      { a: 1, b: [1, { c: "x" }] },
      { b: [1, { c: "x" }], a: 1 },
    ],
    [
      { a: 1, b: [1, { c: "x" }] },
      { a: 1, b: [1, { c: "y" }] },
    ],
    [{ a: 1, b: undefined }, { a: 1 }],
    [
      { a: 1, b: undefined },
      { a: 1, c: undefined },
    ],
    [{ a: 1 }, { a: 1, b: null }],
    [hidden, { a: 1 }],
    [{ a: 1, c: 3 }, Object.assign(Object.create({ c: 3 }) as object, { a: 1, d: 4 })],
    // Same number of enumerable keys, and b has a's key, but not as an enumerable one.
    [{ k: 1 }, Object.defineProperty({ j: 1 }, "k", { value: 1, enumerable: false })],
    [nullPrototype, { a: 1 }],
    [0, -0],
    [Number.NaN, Number.NaN],
    [Number.POSITIVE_INFINITY, "Infinity"],
    [
      [1, undefined],
      [1, null],
    ],
    [[1, 2], { 0: 1, 1: 2 }],
    [null, undefined],
    [new Date("2026-01-01T00:00:00Z"), "2026-01-01T00:00:00.000Z"],
    [{ at: new Date("2026-01-01T00:00:00Z") }, { at: new Date("2026-01-01T00:00:00Z") }],
    [{ n: 1n }, { n: "1" }],
    [new Map([["a", 1]]), { a: 1 }],
    [new Set([1]), [1]],
    [{ f: () => 1 }, { f: null }],
    ["1", 1],
    [true, "true"],
    [deep(100), deep(100)],
    [deep(100), deep(99)],
  ];
  for (const [a, b] of pairs) {
    const expected = canonicalJson(a) === canonicalJson(b);
    assert.equal(canonicalEqual(a, b), expected, `${canonicalJson(a)} vs ${canonicalJson(b)}`);
    assert.equal(canonicalEqual(b, a), expected, `${canonicalJson(b)} vs ${canonicalJson(a)}`);
  }
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  assert.throws(() => canonicalEqual(cyclic, cyclic), /reference cycle/);
});

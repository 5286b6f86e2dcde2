import assert from "node:assert/strict";
import { test } from "node:test";
import { importDocuments } from "../../../src/documents/import-documents.ts";
import { MAX_DOCUMENT_DEPTH } from "../../../src/documents/json-depth.ts";
import { jsonFileSource } from "../../../src/sources/json/json-file-source.ts";
import { verifyDocuments } from "../../../src/verify/document-verify.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import { writeTemp } from "./fixtures.ts";

const db = useTestDatabase("docs_fuzz");

/** mulberry32: a small seeded PRNG, so that a failure reproduces from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Generated {
  bytes: Buffer;
  /** undefined: a bad record (quarantined); else its key as the key column prints it, and field n's digits. */
  good?: { key: string; n: string };
}

function generator(seed: number, allowInvalidUtf8: boolean) {
  const random = prng(seed);
  const int = (n: number) => Math.floor(random() * n);
  const digits = (n: number) => `${1 + int(9)}${Array.from({ length: n - 1 }, () => int(10)).join("")}`;
  const keys: string[] = [];
  /** A key: a fresh or repeated (duplicate) string or integer beyond 2^53. */
  const key = (): { json: string; text: string } => {
    if (keys.length > 0 && random() < 0.15) {
      const text = keys[int(keys.length)]!;
      return { json: /^\d+$/.test(text) ? text : JSON.stringify(text), text };
    }
    const text = random() < 0.5 ? digits(16 + int(4)) : `k${digits(6)}`;
    keys.push(text);
    return { json: /^\d+$/.test(text) ? text : JSON.stringify(text), text };
  };
  const number = () =>
    [digits(17 + int(6)), `-${digits(19)}`, `${digits(3)}.${digits(20)}0`, `${int(100)}`][int(4)]!;
  return (): Generated => {
    const k = key();
    const n = number();
    const roll = random();
    if (roll < 0.06) {
      // nested around the limit: fine up to MAX_DOCUMENT_DEPTH levels (the object counts as one)
      const arrays = MAX_DOCUMENT_DEPTH - 3 + int(6);
      const text = `{"id":${k.json},"n":${n},"d":${"[".repeat(arrays)}${"]".repeat(arrays)}}`;
      return {
        bytes: Buffer.from(text),
        ...(arrays + 1 <= MAX_DOCUMENT_DEPTH ? { good: { key: k.text, n } } : {}),
      };
    }
    if (roll < 0.08) {
      const arrays = 5_000 + int(20_000);
      return { bytes: Buffer.from(`{"id":${k.json},"d":${"[".repeat(arrays)}${"]".repeat(arrays)}}`) };
    }
    if (roll < 0.11 && allowInvalidUtf8)
      return {
        bytes: Buffer.concat([
          Buffer.from(`{"id":${k.json},"s":"`),
          Buffer.from([0xc3, 0x28]),
          Buffer.from('"}'),
        ]),
      };
    if (roll < 0.13) return { bytes: Buffer.from(`{"id":${k.json},"n":${n},"s":"a\\u0000b"}`) };
    if (roll < 0.16) {
      // duplicate member names: the last one counts, for the key too
      const first = key();
      return {
        bytes: Buffer.from(`{"id":${first.json},"n":0,"x":{"y":${n}},"id":${k.json},"n":${n}}`),
        good: { key: k.text, n },
      };
    }
    const text = `{"id":${k.json},"n":${n},"nested":{"list":[${number()},${JSON.stringify("\u00e9\ud83d\ude00")},null,true],"big":${digits(25)}}}`;
    return { bytes: Buffer.from(text), good: { key: k.text, n } };
  };
}

/** What the table must hold afterwards: the last good record of each key. */
function expectation(records: Generated[]) {
  const last = new Map<string, string>();
  for (const r of records) if (r.good) last.set(r.good.key, r.good.n);
  return {
    good: records.filter((r) => r.good).length,
    bad: records.filter((r) => !r.good).length,
    rows: [...last.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  };
}

async function assertTable(table: string, expected: ReturnType<typeof expectation>) {
  const { rows } = await db().pool.query(`select id, doc->>'n' as n from ${table} order by id collate "C"`);
  assert.deepEqual(
    rows.map((r) => [r.id, r.n]),
    expected.rows,
  );
}

for (const seed of [1, 2, 3]) {
  test(`fuzz (seed ${seed}): NDJSON with huge integers, deep nesting, invalid UTF-8, duplicate keys: read = loaded + quarantined, verify identical`, async () => {
    const next = generator(seed, true);
    const records = Array.from({ length: 300 }, next);
    const path = await writeTemp(
      `fuzz${seed}.ndjson`,
      Buffer.concat(records.flatMap((r) => [r.bytes, Buffer.from("\n")])),
    );
    const expected = expectation(records);
    for (const jobs of [1, 2]) {
      const result = await importDocuments({
        pool: db().pool,
        from: `ndjson:${path}`,
        table: `fuzz_nd_${seed}`,
        key: "/id",
        mode: "replace",
        duplicates: "last-wins",
        onBadValue: "quarantine",
        jobs,
      });
      assert.equal(result.recordsRead, records.length);
      assert.equal(result.recordsRead, result.recordsLoaded + result.quarantined);
      assert.deepEqual([result.recordsLoaded, result.quarantined], [expected.good, expected.bad]);
      assert.equal(result.duplicates.count, expected.good - expected.rows.length);
      await assertTable(`fuzz_nd_${seed}`, expected);
      const verified = await verifyDocuments({
        pool: db().pool,
        from: `ndjson:${path}`,
        table: `fuzz_nd_${seed}`,
        key: "/id",
        duplicates: "last-wins",
        runId: result.runId,
      });
      assert.equal(verified.tables[0]!.status, "identical", JSON.stringify(verified.tables[0]!.problems));
      assert.equal(verified.tables[0]!.sourceRows, expected.rows.length);
    }
  });

  test(`fuzz (seed ${seed}): a JSON array, whole and streamed: read = loaded + quarantined, verify identical`, async () => {
    const next = generator(seed + 100, false);
    const records = Array.from({ length: 200 }, next);
    const path = await writeTemp(
      `fuzz${seed}.json`,
      `[${records.map((r) => r.bytes.toString()).join(",\n")}]`,
    );
    const expected = expectation(records);
    for (const wholeFileLimit of [Number.MAX_SAFE_INTEGER, 0]) {
      const result = await importDocuments({
        pool: db().pool,
        from: jsonFileSource(path, { wholeFileLimit }),
        table: `fuzz_js_${seed}`,
        key: "/id",
        mode: "replace",
        duplicates: "last-wins",
        onBadValue: "quarantine",
      });
      assert.equal(result.recordsRead, result.recordsLoaded + result.quarantined);
      assert.deepEqual(
        [result.recordsRead, result.recordsLoaded, result.quarantined],
        [records.length, expected.good, expected.bad],
      );
      await assertTable(`fuzz_js_${seed}`, expected);
      const verified = await verifyDocuments({
        pool: db().pool,
        from: `json:${path}`,
        table: `fuzz_js_${seed}`,
        key: "/id",
        duplicates: "last-wins",
        runId: result.runId,
      });
      assert.equal(verified.tables[0]!.status, "identical", JSON.stringify(verified.tables[0]!.problems));
    }
  });
}

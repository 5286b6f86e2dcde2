import assert from "node:assert/strict";
import { test } from "node:test";
import { RotationRefusedError } from "../../../src/crypto/crypto-errors.ts";
import { addKeyToJson, keyringFromJson } from "../../../src/crypto/keyring.ts";
import { rotateKeys } from "../../../src/crypto/rotate-keys.ts";
import { verifyIntegrity } from "../../../src/crypto/verify-integrity.ts";
import { DocumentStore } from "../../../src/documents/document-store.ts";
import { importDocuments } from "../../../src/documents/import-documents.ts";
import { InterruptedError } from "../../../src/pg/abort.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import { writeTemp } from "../documents/fixtures.ts";
import { keyFile, patients } from "./fixtures.ts";

const db = useTestDatabase("crypt_rotate");

/** Rows with anything (a field or the MAC) under key `kid`. */
async function rowsUnder(table: string, kid: string): Promise<number> {
  const { rows } = await db().pool.query(
    `select count(*)::int as n from ${table}
     where doc->'ssn'->>'kid' = $1 or doc->'patient'->'name'->>'kid' = $1 or split_part(record_mac, ':', 1) = $1`,
    [kid],
  );
  return rows[0].n;
}

async function importWithK1(table: string, count: number) {
  const k1 = await keyFile();
  const records = patients(count);
  const path = await writeTemp(`${table}.ndjson`, records.map((r) => JSON.stringify(r)).join("\n"));
  await importDocuments({
    pool: db().pool,
    from: `ndjson:${path}`,
    table,
    key: "/id",
    keyring: k1.keyring,
    encryptedPaths: ["/ssn", "/patient/name"],
    blindIndexPaths: ["/ssn"],
    integrity: true,
  });
  // the same file with a new key k2 made active; and k2 alone, once k1 is retired
  const json = addKeyToJson(k1.json, "k2");
  const both = keyringFromJson(json, "key file keys.json");
  const k2 = (JSON.parse(json) as { keys: { k2: unknown } }).keys.k2;
  const k2only = keyringFromJson(JSON.stringify({ keys: { k2 } }), "k2 alone");
  return { records, k1: k1.keyring, both, k2only };
}

test("rotation 1 -> 2, interrupted and resumed: every value readable, none under key 1", async () => {
  const { records, both } = await importWithK1("rotated", 23);
  assert.equal(await rowsUnder("rotated", "k1"), 23);
  const controller = new AbortController();
  const events: number[] = [];
  await assert.rejects(
    rotateKeys({
      pool: db().pool,
      table: "rotated",
      keyring: both,
      batchSize: 5,
      signal: controller.signal,
      onProgress: (event) => {
        if (event.finished) return;
        events.push(event.done);
        // stop after the second batch has committed
        if (events.length === 2) controller.abort("test interruption");
      },
    }),
    InterruptedError,
  );
  assert.deepEqual(events, [5, 10]);
  assert.equal(await rowsUnder("rotated", "k1"), 13);
  assert.equal(await rowsUnder("rotated", "k2"), 10);
  // mid-rotation, the store with both keys reads everything and finds by blind index under either key
  const store = new DocumentStore(db().pool, { table: "rotated", keyring: both });
  assert.deepEqual(
    (await store.page({ limit: 100 })).rows.map((r) => r.doc),
    records,
  );
  assert.deepEqual(
    (await store.wherePath("/ssn", "900-00-0003")).map((r) => r.key),
    ["P003", "P007"],
  );

  const resumed = await rotateKeys({ pool: db().pool, table: "rotated", keyring: both, batchSize: 5 });
  assert.equal(resumed.rowsRotated, 13, "rows already under k2 are skipped");
  assert.deepEqual(resumed.refused, []);
  assert.equal(await rowsUnder("rotated", "k1"), 0);
  assert.equal(await rowsUnder("rotated", "k2"), 23);
  const again = await rotateKeys({ pool: db().pool, table: "rotated", keyring: both });
  assert.equal(again.rowsRotated, 0);
});

test("after rotation key 1 can go: key 2 alone reads, looks up and verifies every row", async () => {
  const { records, both, k2only } = await importWithK1("retired", 9);
  await rotateKeys({ pool: db().pool, table: "retired", keyring: both, batchSize: 4 });
  const store = new DocumentStore(db().pool, { table: "retired", keyring: k2only });
  for (const record of records) assert.deepEqual(await store.get(record.id as string), record);
  assert.deepEqual(
    (await store.wherePath("/ssn", "900-00-0003")).map((r) => r.key),
    ["P003", "P007"],
  );
  const check = await verifyIntegrity({ pool: db().pool, table: "retired", keyring: k2only });
  assert.equal(check.status, "intact");
  assert.deepEqual(check.macKeyIds, { k2: 9 });
});

test("rotation does not launder a tampered row: it stays under key 1 and is named", async () => {
  const { both } = await importWithK1("guarded", 6);
  await db().pool.query(`update guarded set doc = jsonb_set(doc, '{city}', '"Nowhere"') where id = 'P004'`);
  await assert.rejects(rotateKeys({ pool: db().pool, table: "guarded", keyring: both }), (error: unknown) => {
    assert.ok(error instanceof RotationRefusedError);
    assert.match(
      error.message,
      /1 row\(s\) of public\.guarded were left under their old key .* \(first: P004: mac_mismatch\).* 5 row\(s\) were rotated to k2/,
    );
    return true;
  });
  assert.equal(await rowsUnder("guarded", "k1"), 1);
  const check = await verifyIntegrity({ pool: db().pool, table: "guarded", keyring: both });
  assert.deepEqual(check.problems, [{ key: ["P004"], problem: "mac_mismatch" }]);
});

import assert from "node:assert/strict";
import { test } from "node:test";
import { EncryptedTableError } from "../../../src/crypto/crypto-errors.ts";
import { rotateKeys } from "../../../src/crypto/rotate-keys.ts";
import { addKeyToJson, keyringFromJson } from "../../../src/crypto/keyring.ts";
import { verifyIntegrity } from "../../../src/crypto/verify-integrity.ts";
import { DocumentStore } from "../../../src/documents/document-store.ts";
import { importDocuments } from "../../../src/documents/import-documents.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import { keyFile } from "./fixtures.ts";

const db = useTestDatabase("crypt_store");

test("a store opened with explicit options creates its table, blind index and registry entry", async () => {
  const { keyring } = await keyFile();
  const store = new DocumentStore(db().pool, {
    table: "accounts",
    keyColumns: ["id"],
    keyTypes: ["bigint"],
    keyring,
    encryptedPaths: ["/iban"],
    blindIndexPaths: ["/iban"],
    integrity: true,
  });
  await store.ensureTable();
  const { rows: columns } = await db().pool.query(
    "select column_name from information_schema.columns where table_name = 'accounts' order by ordinal_position",
  );
  assert.deepEqual(
    columns.map((c) => c.column_name),
    ["id", "doc", "source_file", "content_hash", "record_mac", "loaded_at"],
  );
  const { rows: indexes } = await db().pool.query(
    "select indexname from pg_indexes where tablename = 'accounts' order by indexname",
  );
  assert.deepEqual(
    indexes.map((i) => i.indexname),
    ["accounts_iban_bi", "accounts_pkey"],
  );
  for (let i = 1; i <= 5; i++) await store.put(i, { owner: `o${i}`, iban: i % 2 ? "DE01" : "FR02" });
  assert.deepEqual(await store.get(3), { owner: "o3", iban: "DE01" });
  await assert.rejects(store.put(9, { owner: "x", iban: "DE\ud800" }), /put\(\): .*surrogate.* at \/iban/);
  assert.deepEqual(
    (await store.wherePath("/iban", "FR02")).map((r) => r.key),
    ["2", "4"],
  );
  // bigint keys: the MAC's key text is the server's id::text
  assert.equal((await verifyIntegrity({ pool: db().pool, table: "accounts", keyring })).status, "intact");
  // the registry entry refuses a store without keys
  await assert.rejects(
    new DocumentStore(db().pool, { table: "accounts", keyColumns: ["id"] }).count(),
    EncryptedTableError,
  );
  // and lets a store with only the keyring learn the paths
  const learned = new DocumentStore(db().pool, { table: "accounts", keyColumns: ["id"], keyring });
  assert.deepEqual(await learned.get(4), { owner: "o4", iban: "FR02" });
});

test("composite keys: MACs over both key columns, rotation pages through them", async () => {
  const k1 = await keyFile();
  const records = Array.from({ length: 14 }, (_, i) => ({
    country: i % 2 ? "AT" : "FR",
    n: i,
    tax_id: `T-${i}`,
    note: "kept",
  }));
  await importDocuments({
    pool: db().pool,
    from: records,
    table: "taxpayers",
    key: ["/country", "/n:bigint"],
    keyring: k1.keyring,
    encryptedPaths: ["/tax_id"],
    integrity: true,
  });
  assert.equal(
    (await verifyIntegrity({ pool: db().pool, table: "taxpayers", keyring: k1.keyring })).status,
    "intact",
  );
  // a document moved to another key is named by its new key
  await db().pool.query(
    `update taxpayers set doc = (select doc from taxpayers where country = 'FR' and n = 0), record_mac = (select record_mac from taxpayers where country = 'FR' and n = 0) where country = 'FR' and n = 2`,
  );
  const moved = await verifyIntegrity({ pool: db().pool, table: "taxpayers", keyring: k1.keyring });
  assert.deepEqual(moved.problems, [{ key: ["FR", "2"], problem: "mac_mismatch" }]);
  await db().pool.query(
    `update taxpayers set doc = jsonb_set(doc, '{n}', '2'), record_mac = null where country = 'FR' and n = 2`,
  );
  const both = keyringFromJson(addKeyToJson(k1.json, "k2"), "keys");
  const rotated = await rotateKeys({
    pool: db().pool,
    table: "taxpayers",
    keyring: both,
    batchSize: 3,
  }).catch((e) => e);
  // the row without a MAC is not selected (nothing under k1 in its MAC), but its field is: refused, named
  assert.match(String(rotated.message), /FR, 2: mac_missing/);
  const check = await verifyIntegrity({ pool: db().pool, table: "taxpayers", keyring: both });
  assert.deepEqual(check.problems, [{ key: ["FR", "2"], problem: "mac_missing" }]);
  assert.deepEqual(check.macKeyIds, { k2: 13, none: 1 });
  const store = new DocumentStore(db().pool, {
    table: "taxpayers",
    keyColumns: ["country", "n"],
    keyring: both,
  });
  assert.deepEqual(await store.get(["AT", 13]), records[13]);
});

import assert from "node:assert/strict";
import { test } from "node:test";
import pg from "pg";
import {
  EncryptedTableError,
  DecryptionError,
  EncryptionKeyError,
} from "../../../src/crypto/crypto-errors.ts";
import { isEnvelope } from "../../../src/crypto/field-cipher.ts";
import { Keyring, keyringFromJson } from "../../../src/crypto/keyring.ts";
import { verifyIntegrity } from "../../../src/crypto/verify-integrity.ts";
import { verifyDocuments } from "../../../src/verify/document-verify.ts";
import { DocumentStore } from "../../../src/documents/document-store.ts";
import { importDocuments } from "../../../src/documents/import-documents.ts";
import { UsageError } from "../../../src/errors.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import { writeTemp } from "../documents/fixtures.ts";
import { keyFile, patients } from "./fixtures.ts";

const db = useTestDatabase("crypt_docs");

async function importPatients(table: string, keyring: Keyring, records = patients()) {
  const path = await writeTemp(`${table}.ndjson`, records.map((r) => JSON.stringify(r)).join("\n"));
  return importDocuments({
    pool: db().pool,
    from: `ndjson:${path}`,
    table,
    key: "/id",
    keyring,
    encryptedPaths: ["/ssn", "/patient/name"],
    blindIndexPaths: ["/ssn"],
    integrity: true,
  });
}

test("import encrypts the fields: a role that can read the table but has no key sees only ciphertext", async () => {
  const { keyring } = await keyFile();
  const records = patients();
  const result = await importPatients("patients", keyring, records);
  assert.equal(result.recordsLoaded, records.length);
  assert.deepEqual(result.encryption, {
    keyId: "k1",
    encryptedPaths: ["/ssn", "/patient/name"],
    blindIndexPaths: ["/ssn"],
    integrity: true,
  });
  assert.ok(result.indexes.includes("patients_ssn_bi"));

  // least privilege: select on this one table, nothing else
  const pool = db().pool;
  await pool.query("create role crypt_reader login password 'reader-pw'");
  await pool.query("grant usage on schema public to crypt_reader");
  await pool.query("grant select on public.patients to crypt_reader");
  const url = new URL(db().url);
  url.username = "crypt_reader";
  url.password = "reader-pw";
  const reader = new pg.Pool({ connectionString: url.toString(), max: 2 });
  try {
    const { rows } = await reader.query(
      "select id, doc::text as doc, content_hash, record_mac from public.patients order by id",
    );
    assert.equal(rows.length, records.length);
    const everything = JSON.stringify(rows);
    for (const record of records) {
      assert.ok(!everything.includes(record.ssn as string), `plaintext ssn of ${record.id} visible`);
      assert.ok(
        !everything.includes((record.patient as { name: string }).name),
        `plaintext name of ${record.id} visible`,
      );
    }
    const first = JSON.parse(rows[0].doc);
    assert.ok(isEnvelope(first.ssn) && isEnvelope(first.patient.name));
    assert.equal(first.city, "Lyon");
    assert.equal(first.patient.born, 1950);
    assert.match(rows[0].record_mac, /^k1:/);
    // the same role through the library, without keys: refused, not handed ciphertext
    const keyless = new DocumentStore(reader, { table: "patients" });
    await assert.rejects(keyless.get("P001"), (error: unknown) => {
      assert.ok(error instanceof EncryptedTableError);
      assert.match(
        error.message,
        /public\.patients has encrypted fields \(\/ssn, \/patient\/name\); open the DocumentStore with its keys/,
      );
      return true;
    });
    await assert.rejects(keyless.page(), EncryptedTableError);
    await assert.rejects(keyless.put("P999", { id: "P999" }), EncryptedTableError);
  } finally {
    await reader.end();
  }
});

test("DocumentStore with the key: transparent reads, sealed writes, blind-index lookups that find exactly the matches", async () => {
  const { keyring } = await keyFile();
  const records = patients();
  await importPatients("clinic", keyring, records);
  const store = new DocumentStore(db().pool, { table: "clinic", keyring });
  assert.deepEqual(await store.get("P004"), records[4]);
  const many = await store.getMany(["P001", "P002"]);
  assert.deepEqual(many.get("P002"), records[2]);
  const page = await store.page({ limit: 5 });
  assert.deepEqual(
    page.rows.map((r) => r.doc),
    records.slice(0, 5),
  );

  // two records share an SSN, one has its own, one none
  assert.deepEqual(
    (await store.wherePath("/ssn", "900-00-0003")).map((r) => r.key),
    ["P003", "P007"],
  );
  assert.deepEqual(
    (await store.wherePath("/ssn", "900-00-0005")).map((r) => r.key),
    ["P005"],
  );
  assert.deepEqual(await store.wherePath("/ssn", "123-45-6789"), []);
  // plain paths keep working beside encrypted ones
  assert.equal((await store.wherePath("/city", "Graz")).length, 6);
  assert.equal((await store.containing({ city: "Lyon" })).length, 6);
  await assert.rejects(store.containing({ ssn: "900-00-0005" }), (error: unknown) => {
    assert.ok(error instanceof UsageError);
    assert.match(error.message, /containing\(\) cannot match inside the encrypted \/ssn; use wherePath/);
    return true;
  });
  await assert.rejects(store.wherePath("/patient/name", "Patient Name 1"), /encrypted without a blind index/);
  await assert.rejects(
    store.search("Name", { path: "/patient/name" }),
    /cannot match inside the encrypted \/patient\/name/,
  );

  // a write through the store: encrypted, MACed, found by its blind index
  const added = { id: "P100", ssn: "900-00-0003", patient: { name: "New Person", born: 2001 }, city: "Oslo" };
  await store.put("P100", added);
  const { rows } = await db().pool.query("select doc::text as doc, record_mac from clinic where id = 'P100'");
  assert.ok(!rows[0].doc.includes("New Person") && !rows[0].doc.includes("900-00-0003"));
  assert.match(rows[0].record_mac, /^k1:/);
  assert.deepEqual(await store.get("P100"), added);
  assert.deepEqual(
    (await store.wherePath("/ssn", "900-00-0003")).map((r) => r.key),
    ["P003", "P007", "P100"],
  );
  const check = await verifyIntegrity({ pool: db().pool, table: "clinic", keyring });
  assert.equal(check.status, "intact");
  assert.equal(check.rowsChecked, records.length + 1);

  // a blind index copied onto another row does not make that row match
  await db().pool.query(
    `update clinic set doc = jsonb_set(doc, '{ssn,bi}', (select doc->'ssn'->'bi' from clinic where id = 'P005')) where id = 'P006'`,
  );
  assert.deepEqual(
    (await store.wherePath("/ssn", "900-00-0005")).map((r) => r.key),
    ["P005"],
  );
});

test("wrong or missing key: clear errors naming the key id, never plaintext from the wrong key", async () => {
  const { keyring } = await keyFile();
  await importPatients("wards", keyring);
  const other = await keyFile(); // another k1
  const wrong = new DocumentStore(db().pool, { table: "wards", keyring: other.keyring });
  await assert.rejects(wrong.get("P001"), (error: unknown) => {
    assert.ok(error instanceof DecryptionError);
    assert.match(
      error.message,
      /does not decrypt under key "k1": it was changed, or key file .* holds another key under that id/,
    );
    return true;
  });
  const onlyK2 = keyringFromJson(
    JSON.stringify({
      keys: {
        k2: {
          encryption: Buffer.alloc(32, 1).toString("base64"),
          index: Buffer.alloc(32, 2).toString("base64"),
          mac: Buffer.alloc(32, 3).toString("base64"),
        },
      },
    }),
    "env PGSHIFT_KEYS",
  );
  await assert.rejects(
    new DocumentStore(db().pool, { table: "wards", keyring: onlyK2 }).get("P001"),
    (error: unknown) => {
      assert.ok(error instanceof EncryptionKeyError);
      assert.match(
        error.message,
        /encrypted under key "k1", which env PGSHIFT_KEYS does not hold \(it has k2\)/,
      );
      return true;
    },
  );
  await assert.rejects(
    importDocuments({
      pool: db().pool,
      from: [{ id: 1 }],
      table: "nokeys",
      key: "/id",
      encryptedPaths: ["/ssn"],
    }),
    /need keys: pass --keys FILE or --keys env:VAR/,
  );
  await assert.rejects(
    importDocuments({
      pool: db().pool,
      from: [{ id: 1, ssn: "x" }],
      table: "exposed",
      key: "/id",
      keyring,
      encryptedPaths: ["/ssn"],
      columns: ["ssn_copy=/ssn"],
    }),
    /--column ssn_copy reads \/ssn, which overlaps the encrypted \/ssn/,
  );
  await assert.rejects(
    importDocuments({
      pool: db().pool,
      from: [{ id: 1, ssn: "x" }],
      table: "quarantined",
      key: "/id",
      keyring,
      encryptedPaths: ["/ssn"],
      onBadValue: "quarantine",
    }),
    /would keep bad records, plaintext and all, in pgshift\.quarantine/,
  );
});

test("verify --integrity (library): a changed ciphertext and a changed plaintext field are named, nothing else", async () => {
  const { keyring } = await keyFile();
  const records = patients();
  await importPatients("audited", keyring, records);
  assert.equal((await verifyIntegrity({ pool: db().pool, table: "audited", keyring })).status, "intact");
  const pool = db().pool;
  // someone with write access but no key: flips a ciphertext, edits a plain field, swaps two documents
  await pool.query(
    `update audited set doc = jsonb_set(doc, '{ssn,ct}', to_jsonb(overlay(doc->'ssn'->>'ct' placing (case when left(doc->'ssn'->>'ct', 1) = 'A' then 'B' else 'A' end) from 1 for 1))) where id = 'P002'`,
  );
  await pool.query(`update audited set doc = jsonb_set(doc, '{city}', '"Paris"') where id = 'P005'`);
  await pool.query(
    `update audited a set doc = b.doc, record_mac = b.record_mac from audited b where a.id = 'P008' and b.id = 'P009'`,
  );
  const result = await verifyIntegrity({ pool, table: "audited", keyring, batchSize: 4 });
  assert.equal(result.status, "tampered");
  assert.equal(result.rowsChecked, records.length);
  assert.equal(result.rowsWithProblems, 3);
  assert.deepEqual(
    result.problems.map((p) => `${p.key.join(",")} ${p.problem}${p.pointer ? ` ${p.pointer}` : ""}`),
    ["P002 mac_mismatch", "P002 decrypt_failed /ssn", "P005 mac_mismatch", "P008 mac_mismatch"],
  );
  assert.equal(result.listedAll, true);
  assert.deepEqual(result.macKeyIds, { k1: records.length });
});

test("--integrity alone keeps documents as the source has them (source verification still identical); upserts re-seal and stay intact", async () => {
  const { keyring } = await keyFile();
  const records = patients(6);
  const path = await writeTemp("plainmac.ndjson", records.map((r) => JSON.stringify(r)).join("\n"));
  const base = {
    pool: db().pool,
    from: `ndjson:${path}`,
    table: "plainmac",
    key: "/id",
    keyring,
    integrity: true,
  };
  await importDocuments(base);
  const verified = await verifyDocuments({
    pool: db().pool,
    from: `ndjson:${path}`,
    table: "plainmac",
    key: "/id",
  });
  assert.equal(verified.status, "identical");
  assert.equal((await verifyIntegrity({ pool: db().pool, table: "plainmac", keyring })).status, "intact");

  await importPatients("resealed", keyring, records);
  const before = await db().pool.query("select doc::text as doc from resealed where id = 'P001'");
  const upserted = await importDocuments({
    pool: db().pool,
    from: `ndjson:${path}`,
    table: "resealed",
    key: "/id",
    mode: "upsert",
    keyring,
    encryptedPaths: ["/ssn", "/patient/name"],
    blindIndexPaths: ["/ssn"],
    integrity: true,
  });
  // fresh IVs: the sealed text differs each time, so every row is rewritten (documented)
  assert.equal(upserted.updated, records.length);
  const after = await db().pool.query("select doc::text as doc from resealed where id = 'P001'");
  assert.notEqual(after.rows[0].doc, before.rows[0].doc);
  assert.equal((await verifyIntegrity({ pool: db().pool, table: "resealed", keyring })).status, "intact");
  const store = new DocumentStore(db().pool, { table: "resealed", keyring });
  assert.deepEqual(await store.get("P001"), records[1]);
});

test("a value jsonb cannot store is rejected in an encrypted field too, with its location", async () => {
  const { keyring } = await keyFile();
  const path = await writeTemp("bad.ndjson", '{"id": "A", "ssn": "ok"}\n{"id": "B", "ssn": "bad\\ud800"}\n');
  await assert.rejects(
    importDocuments({
      pool: db().pool,
      from: `ndjson:${path}`,
      table: "badvalues",
      key: "/id",
      keyring,
      encryptedPaths: ["/ssn"],
    }),
    /bad\.ndjson:2: .*surrogate.* at \/ssn/,
  );
  const { rows } = await db().pool.query("select to_regclass('public.badvalues') as t");
  assert.equal(rows[0].t, null);
});

import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { addKeyToJson, keyringFromJson } from "../../../src/crypto/keyring.ts";
import { rotateKeys } from "../../../src/crypto/rotate-keys.ts";
import { verifyIntegrity } from "../../../src/crypto/verify-integrity.ts";
import { findByBlindIndex } from "../../../src/crypto/encrypted-rows.ts";
import { DocumentStore } from "../../../src/documents/document-store.ts";
import { importSqlite } from "../../../src/load/import-sqlite.ts";
import { importDocuments } from "../../../src/documents/import-documents.ts";
import { createPool } from "../../../src/pg/pool.ts";
import { quoteIdent } from "../../../src/pg/quote.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import { fixtureDir, makeSqlite } from "../import/sqlite-fixtures.ts";
import { keyFile, keyMaterial, patients } from "./fixtures.ts";

const db = useTestDatabase("crypt_log");

/** The server's log file: the managed test instance's (beside its data directory), or the logging collector's. */
async function serverLog(): Promise<string> {
  const { rows } = await db().pool.query(
    "select current_setting('data_directory') as data, pg_current_logfile() as collector",
  );
  return rows[0].collector
    ? join(rows[0].data, rows[0].collector)
    : join(dirname(rows[0].data), "log", "postgres.log");
}

async function logSize(path: string): Promise<number> {
  const { rows } = await db().pool.query("select (pg_stat_file($1)).size::bigint as size", [path]);
  return Number(rows[0].size);
}

test("keys and plaintext never reach the server: every statement logged with its parameters shows neither", async () => {
  const log = await serverLog();
  // every statement of this database's new sessions, with its bind parameters, goes to the log
  await db().pool.query(`alter database ${quoteIdent(db().name)} set log_statement = 'all'`);
  await db().pool.query(`alter database ${quoteIdent(db().name)} set log_parameter_max_length = -1`);
  const pool = createPool({ url: db().url, max: 6 });
  const start = await logSize(log);
  const { json, keyring } = await keyFile();
  const records = patients(8);
  const plaintext = records.flatMap((r) => [r.ssn as string, (r.patient as { name: string }).name]);
  try {
    await importDocuments({
      pool,
      from: records,
      table: "logged_patients",
      key: "/id",
      keyring,
      encryptedPaths: ["/ssn", "/patient/name"],
      blindIndexPaths: ["/ssn"],
      integrity: true,
    });
    const store = new DocumentStore(pool, { table: "logged_patients", keyring });
    const secret = { id: "P900", ssn: "777-66-5555", patient: { name: "Logged Nobody" } };
    await store.put("P900", secret);
    plaintext.push(secret.ssn, secret.patient.name);
    assert.deepEqual(
      (await store.wherePath("/ssn", "777-66-5555")).map((r) => r.key),
      ["P900"],
    );
    assert.equal((await verifyIntegrity({ pool, table: "logged_patients", keyring })).status, "intact");
    const both = keyringFromJson(addKeyToJson(json, "k2"), "keys");
    await rotateKeys({ pool, table: "logged_patients", keyring: both, batchSize: 3 });
    const material = [
      ...keyMaterial(json),
      ...both
        .all()
        .flatMap((k) => [k.encryption, k.index, k.mac])
        .flatMap((b) => [b.toString("base64"), b.toString("hex")]),
    ];
    await pool.end();
    const { rows } = await db().pool.query("select pg_read_file($1, $2, $3) as text", [
      log,
      start,
      (await logSize(log)) - start,
    ]);
    const text: string = rows[0].text;
    // the log holds this test's statements and their parameters (so the assertions below can fail)
    assert.match(text, /insert into "public"\."logged_patients"/);
    // "parameters:" on PostgreSQL 15, "Parameters:" on 18
    assert.match(text, /parameters: \$1 = 'P900'/i);
    assert.match(text, /"\$pgshift_enc": 1/);
    for (const value of [...plaintext, ...material])
      assert.ok(!text.includes(value), `the server log shows ${value}`);
  } finally {
    await pool.end().catch(() => undefined);
  }
});

test("encrypted columns: neither keys nor plaintext reach the server through import, verification, lookups, integrity checks or rotation", async () => {
  const log = await serverLog();
  await db().pool.query(`alter database ${quoteIdent(db().name)} set log_statement = 'all'`);
  await db().pool.query(`alter database ${quoteIdent(db().name)} set log_parameter_max_length = -1`);
  const pool = createPool({ url: db().url, max: 6 });
  const start = await logSize(log);
  const { json, keyring } = await keyFile();
  const path = makeSqlite(
    join(fixtureDir(), "logged.db"),
    "CREATE TABLE people (id INTEGER PRIMARY KEY, ssn TEXT, name TEXT, city TEXT);",
    (d) => {
      for (let i = 1; i <= 8; i++)
        d.prepare("insert into people values (?, ?, ?, ?)").run(
          i,
          `555-44-${1000 + i}`,
          `Hidden Person ${i}`,
          "Lyon",
        );
    },
  );
  const plaintext = Array.from({ length: 8 }, (_, i) => [
    `555-44-${1001 + i}`,
    `Hidden Person ${i + 1}`,
  ]).flat();
  try {
    const result = await importSqlite({
      path,
      pool,
      schema: "logged",
      keyring,
      encryptedColumns: ["people.ssn", "people.name"],
      blindIndexColumns: ["people.ssn"],
      integrity: true,
    });
    assert.equal(result.ok, true, JSON.stringify(result.error));
    assert.equal(result.verification?.identical, true);
    const found = await findByBlindIndex({
      pool,
      schema: "logged",
      table: "people",
      keyring,
      column: "ssn",
      value: "555-44-1003",
    });
    assert.deepEqual(
      found.map((r) => r.name),
      ["Hidden Person 3"],
    );
    assert.equal(
      (await verifyIntegrity({ pool, schema: "logged", table: "people", keyring })).status,
      "intact",
    );
    const both = keyringFromJson(addKeyToJson(json, "k2"), "keys");
    assert.equal(
      (await rotateKeys({ pool, schema: "logged", table: "people", keyring: both })).rowsRotated,
      8,
    );
    const material = both
      .all()
      .flatMap((k) => [k.encryption, k.index, k.mac])
      .flatMap((b) => [b.toString("base64"), b.toString("hex")]);
    await pool.end();
    const { rows } = await db().pool.query("select pg_read_file($1, $2, $3) as text", [
      log,
      start,
      (await logSize(log)) - start,
    ]);
    const text: string = rows[0].text;
    assert.match(text, /update "logged"\."people" set "ssn" = \$1::jsonb/);
    assert.match(text, /"\$pgshift_enc": 1/);
    for (const value of [...plaintext, ...material])
      assert.ok(!text.includes(value), `the server log shows ${value}`);
  } finally {
    await pool.end().catch(() => undefined);
  }
});

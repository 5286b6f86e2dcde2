import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import pg from "pg";
import { EncryptedTableError, UsageError } from "../../../src/index.ts";
import { decryptRow, findByBlindIndex } from "../../../src/crypto/encrypted-rows.ts";
import { readEncryptedTable } from "../../../src/crypto/encryption-registry.ts";
import { addKeyToJson, keyringFromJson } from "../../../src/crypto/keyring.ts";
import { rotateKeys } from "../../../src/crypto/rotate-keys.ts";
import { verifyIntegrity } from "../../../src/crypto/verify-integrity.ts";
import { importSqlite } from "../../../src/load/import-sqlite.ts";
import { verifySqlite } from "../../../src/verify/verify-import.ts";
import { runCli, stderrText } from "../../helpers/cli.ts";
import { useTestDatabase, withDatabase } from "../../helpers/database.ts";
import { fixtureDir, makeSqlite } from "../import/sqlite-fixtures.ts";
import { keyFile, keyMaterial } from "./fixtures.ts";

const db = useTestDatabase("crypt_cols");

const SCHEMA_SQL = `
CREATE TABLE doctors (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE patients (
  id INTEGER PRIMARY KEY,
  ssn TEXT NOT NULL,
  name TEXT COLLATE NOCASE,
  born DATE,
  balance DECIMAL(10,2) DEFAULT 0,
  photo BLOB,
  visits INTEGER,
  city TEXT,
  doctor_id INTEGER REFERENCES doctors(id),
  code TEXT UNIQUE,
  CHECK (visits >= 0)
);
CREATE INDEX patients_city ON patients(city);
`;

/** 12 patients; P3 and P7 share an SSN; P5 has NULLs in every encrypted column it may. */
function fill(database: import("better-sqlite3").Database): void {
  database.prepare("insert into doctors values (1, 'Dr One'), (2, 'Dr Two')").run();
  const insert = database.prepare("insert into patients values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  for (let i = 0; i < 12; i++)
    insert.run(
      i,
      i === 7 ? "900-00-0003" : `900-00-${String(i).padStart(4, "0")}`,
      i === 5 ? null : `Patient Name ${i}`,
      i === 5 ? null : `19${50 + i}-0${(i % 9) + 1}-1${i % 10}`,
      i === 5 ? null : 100.5 + i,
      i === 5 ? null : Buffer.from([i, 0, 255, 10]),
      i,
      i % 2 ? "Graz" : "Lyon",
      (i % 2) + 1,
      `C${i}`,
    );
}

const ENCRYPTED = ["patients.ssn", "patients.name", "patients.born", "patients.balance", "patients.photo"];

async function importEncrypted(path: string, keyring: ReturnType<typeof keyringFromJson>, schema = "public") {
  return importSqlite({
    path,
    pool: db().pool,
    schema,
    encryptedColumns: ENCRYPTED,
    blindIndexColumns: ["patients.ssn"],
    integrity: true,
    keyring,
  });
}

test("encrypted columns: stored as envelopes, the type change reported, verified against the source by decrypting; key holders read the plain import's values; a role without keys sees ciphertext only; blind-index lookups", async () => {
  const dir = fixtureDir();
  const path = makeSqlite(join(dir, "clinic.db"), SCHEMA_SQL, fill);
  const keys = await keyFile(1);
  const result = await importEncrypted(path, keys.keyring);
  assert.equal(result.ok, true, JSON.stringify(result.error));
  assert.equal(result.verification?.identical, true, JSON.stringify(result.verification));
  assert.deepEqual(
    result.encryption?.columns.map(
      (c) => `${c.column}:${c.originalType}->${c.storedType}${c.blindIndex ? "+bi" : ""}`,
    ),
    [
      "ssn:text->jsonb+bi",
      "name:text->jsonb",
      "born:date->jsonb",
      "balance:numeric(10,2)->jsonb",
      "photo:bytea->jsonb",
    ],
  );
  assert.deepEqual(result.encryption?.recordMacs, ["patients"]);
  const ssnNote = result.notes.find((n) => n.object === "patients.ssn" && n.kind === "type");
  assert.match(ssnNote!.message, /^encrypted: text became jsonb holding an AES-256-GCM envelope/);
  assert.match(
    result.notes.find((n) => n.object === "patients.balance" && n.kind === "type")!.message,
    /numeric\(10,2\) became jsonb.*its DEFAULT 0 is dropped/,
  );
  assert.match(
    result.notes.find((n) => n.object === "patients.name" && n.kind === "type")!.message,
    /COLLATE NOCASE no longer applies/,
  );

  // the same file imported plainly, to compare what key holders read back with what it stores
  const plain = await importSqlite({ path, pool: db().pool, schema: "plain" });
  assert.equal(plain.ok, true);
  const { rows: plainRows } = await db().pool.query("select * from plain.patients order by id");

  const { rows: types } = await db().pool.query(
    `select column_name, data_type from information_schema.columns where table_schema = 'public' and table_name = 'patients' order by ordinal_position`,
  );
  assert.deepEqual(
    types.map((t) => `${t.column_name}:${t.data_type}`),
    [
      "id:bigint",
      "ssn:jsonb",
      "name:jsonb",
      "born:jsonb",
      "balance:jsonb",
      "photo:jsonb",
      "visits:integer",
      "city:text",
      "doctor_id:bigint",
      "code:text",
      "record_mac:text",
    ],
  );
  const { rows: text } = await db().pool.query("select p::text as t from patients p");
  const all = text.map((r) => r.t).join("\n");
  for (const secret of ["900-00-0001", "Patient Name 2", "1952-03-12", "102.5", "0200ff0a"])
    assert.ok(!all.includes(secret), `stored rows show ${secret}`);

  const info = (await readEncryptedTable(db().pool, "public", "patients"))!;
  assert.deepEqual(
    info.encryptedColumns.map((c) => [c.name, c.originalType, c.blindIndex]),
    [
      ["ssn", "text", true],
      ["name", "text", false],
      ["born", "date", false],
      ["balance", "numeric(10,2)", false],
      ["photo", "bytea", false],
    ],
  );
  const { rows: stored } = await db().pool.query("select * from patients order by id");
  assert.equal(stored.length, 12);
  stored.forEach((row, i) => {
    const opened = decryptRow(keys.keyring, info, row);
    delete opened.record_mac;
    assert.deepEqual(opened, plainRows[i], `row ${i}`);
  });
  assert.equal(stored[5].name, null);
  assert.equal(stored[1].ssn.$pgshift_enc, 1);

  // a role that may read the table but holds no key
  const role = `crypt_cols_reader_${randomBytes(4).toString("hex")}`;
  await db().pool.query(`create role ${role} login password 'reader-pw'`);
  await db().pool.query(`grant usage on schema public to ${role}`);
  await db().pool.query(`grant select on patients to ${role}`);
  const url = new URL(withDatabase(db().url, db().name));
  url.username = role;
  url.password = "reader-pw";
  const reader = new pg.Client({ connectionString: url.toString() });
  await reader.connect();
  try {
    const { rows } = await reader.query("select * from patients order by id");
    assert.equal(rows.length, 12);
    for (const row of rows) {
      for (const column of ["ssn", "name", "born", "balance", "photo"])
        if (row[column] !== null)
          assert.deepEqual(
            Object.keys(row[column]).sort(),
            ["$pgshift_enc", "ct", "iv", "kid", "tag", ...(column === "ssn" ? ["bi"] : [])].sort(),
          );
      assert.ok(!JSON.stringify(row).includes("900-00-"));
    }
    const readerInfo = await readEncryptedTable(reader, "public", "patients");
    assert.throws(() => decryptRow(undefined, readerInfo!, rows[0]), EncryptedTableError);
    assert.throws(
      () => decryptRow(undefined, readerInfo!, rows[0]),
      /public\.patients has encrypted columns \(ssn, name, born, balance, photo\)/,
    );
  } finally {
    await reader.end();
    await db().pool.query(`drop owned by ${role}`);
    await db().pool.query(`drop role ${role}`);
  }

  // the blind index: exactly the rows with that SSN, through an index on the envelope's bi
  const found = await findByBlindIndex({
    pool: db().pool,
    table: "patients",
    keyring: keys.keyring,
    column: "ssn",
    value: "900-00-0003",
  });
  assert.deepEqual(found.map((r) => r.id).sort(), ["3", "7"]);
  assert.equal(found[0]!.ssn, "900-00-0003");
  assert.deepEqual(
    await findByBlindIndex({
      pool: db().pool,
      table: "patients",
      keyring: keys.keyring,
      column: "ssn",
      value: "900-00-9999",
    }),
    [],
  );
  const { rows: indexes } = await db().pool.query(
    "select indexdef from pg_indexes where schemaname = 'public' and tablename = 'patients' and indexdef like '%bi%'",
  );
  assert.match(indexes[0].indexdef, /\(\(ssn ->> 'bi'::text\)\)/);
  await assert.rejects(
    findByBlindIndex({
      pool: db().pool,
      table: "patients",
      keyring: keys.keyring,
      column: "name",
      value: "x",
    }),
    /encrypted without a blind index/,
  );
  await assert.rejects(
    findByBlindIndex({ pool: db().pool, table: "patients", keyring: undefined, column: "ssn", value: "x" }),
    EncryptedTableError,
  );

  // a later source verification decrypts as well, and needs the keys for it
  const again = await verifySqlite({
    sourcePath: path,
    pool: db().pool,
    keyring: keys.keyring,
    tables: ["patients"],
    schema: "public",
  });
  assert.equal(again.identical, true);
  const withoutKeys = await verifySqlite({
    sourcePath: path,
    pool: db().pool,
    tables: ["patients"],
    schema: "public",
  });
  assert.equal(withoutKeys.identical, false);
  assert.match(JSON.stringify(withoutKeys.tables[0]), /verifying their values needs the keys/);
  // a changed ciphertext is a difference the source verification names
  await db().pool.query(
    `update patients set name = jsonb_set(name, '{ct}', to_jsonb(overlay(name->>'ct' placing (case when left(name->>'ct', 1) = 'A' then 'B' else 'A' end) from 1 for 1))) where id = 4`,
  );
  const changed = await verifySqlite({
    sourcePath: path,
    pool: db().pool,
    keyring: keys.keyring,
    tables: ["patients"],
    schema: "public",
  });
  assert.equal(changed.identical, false);
  assert.equal(changed.tables[0]!.changedRows, 1);
  assert.deepEqual(changed.tables[0]!.changed[0]!.key, { id: "4" });
  assert.deepEqual(changed.tables[0]!.changed[0]!.columns, [
    { column: "name", source: "(encrypted: value not shown)", target: "(encrypted: value not shown)" },
  ]);
});

test("encrypted columns: verify --integrity names a changed ciphertext, a changed plain column and swapped values; rotation k1 -> k2 leaves every value readable and none under k1", async () => {
  const dir = fixtureDir();
  const path = makeSqlite(join(dir, "clinic.db"), SCHEMA_SQL, fill);
  const k1Json = addKeyToJson(undefined, "k1");
  const k1 = keyringFromJson(k1Json, "k1 only");
  const result = await importEncrypted(path, k1, "rot");
  assert.equal(result.ok, true, JSON.stringify(result.error));
  const pool = db().pool;
  const intact = await verifyIntegrity({ pool, schema: "rot", table: "patients", keyring: k1 });
  assert.equal(intact.status, "intact");
  assert.equal(intact.rowsChecked, 12);
  assert.deepEqual(intact.macKeyIds, { k1: 12 });
  assert.deepEqual(intact.encryptedColumns, ["ssn", "name", "born", "balance", "photo"]);

  const { rows: before } = await pool.query("select * from rot.patients order by id");
  const info = (await readEncryptedTable(pool, "rot", "patients"))!;
  const plainBefore = before.map((r) => decryptRow(k1, info, r));

  // rotation to k2 with a batch size that needs several batches
  const bothJson = addKeyToJson(k1Json, "k2");
  const both = keyringFromJson(bothJson, "k1 and k2");
  const rotated = await rotateKeys({ pool, schema: "rot", table: "patients", keyring: both, batchSize: 5 });
  assert.equal(rotated.rowsRotated, 12);
  assert.equal(rotated.batches, 3);
  const { rows: underK1 } = await pool.query(
    `select count(*)::int as n from rot.patients where ssn->>'kid' = 'k1' or name->>'kid' = 'k1' or born->>'kid' = 'k1'
       or balance->>'kid' = 'k1' or photo->>'kid' = 'k1' or record_mac like 'k1:%'`,
  );
  assert.equal(underK1[0].n, 0);
  const { rows: after } = await pool.query("select * from rot.patients order by id");
  assert.deepEqual(
    after.map((r) => decryptRow(both, info, r)).map(({ record_mac: _, ...rest }) => rest),
    plainBefore.map(({ record_mac: _, ...rest }) => rest),
  );
  // the old key alone reads nothing any more; the new one alone reads everything
  const k2Only = keyringFromJson(
    JSON.stringify({ active: "k2", keys: { k2: JSON.parse(bothJson).keys.k2 } }),
    "k2 only",
  );
  assert.throws(() => decryptRow(k1, info, after[0]), /key "k2", which k1 only does not hold/);
  assert.equal(decryptRow(k2Only, info, after[1]).ssn, "900-00-0001");
  const afterRotation = await verifyIntegrity({ pool, schema: "rot", table: "patients", keyring: k2Only });
  assert.equal(afterRotation.status, "intact");
  assert.deepEqual(afterRotation.macKeyIds, { k2: 12 });
  // rerun: nothing left to rotate
  assert.equal((await rotateKeys({ pool, schema: "rot", table: "patients", keyring: both })).rowsRotated, 0);
  // blind index recomputed under k2: still found with the k2 keyring alone
  const found = await findByBlindIndex({
    pool,
    schema: "rot",
    table: "patients",
    keyring: k2Only,
    column: "ssn",
    value: "900-00-0003",
  });
  assert.deepEqual(found.map((r) => r.id).sort(), ["3", "7"]);

  // tampering, without the keys
  await pool.query(
    `update rot.patients set ssn = jsonb_set(ssn, '{ct}', to_jsonb(overlay(ssn->>'ct' placing (case when left(ssn->>'ct', 1) = 'A' then 'B' else 'A' end) from 1 for 1))) where id = 2`,
  );
  await pool.query("update rot.patients set visits = 99 where id = 6");
  await pool.query(
    "update rot.patients p set name = q.name from rot.patients q where (p.id, q.id) in ((8, 9), (9, 8))",
  );
  const tampered = await verifyIntegrity({ pool, schema: "rot", table: "patients", keyring: k2Only });
  assert.equal(tampered.status, "tampered");
  assert.deepEqual(
    tampered.problems.map((p) => `${p.key.join(",")}:${p.problem}${p.pointer ? `@${p.pointer}` : ""}`),
    ["2:mac_mismatch", "2:decrypt_failed@ssn", "6:mac_mismatch", "8:mac_mismatch", "9:mac_mismatch"],
  );
  // rotation refuses to re-seal what does not check
  const k3 = keyringFromJson(addKeyToJson(bothJson, "k3"), "k1-k3");
  await assert.rejects(
    rotateKeys({ pool, schema: "rot", table: "patients", keyring: k3 }),
    /row\(s\) of rot\.patients were left under their old key/,
  );
});

test("encrypted columns: keys, foreign keys, UNIQUE, indexed and CHECKed columns are refused with the reason; other misuse named", async () => {
  const dir = fixtureDir();
  const path = makeSqlite(join(dir, "clinic.db"), SCHEMA_SQL, fill);
  const keyring = (await keyFile(1)).keyring;
  const refused = async (column: string, why: RegExp) => {
    await assert.rejects(
      importSqlite({ path, pool: db().pool, schema: "refused", encryptedColumns: [column], keyring }),
      (error: unknown) => error instanceof UsageError && why.test(error.message),
      column,
    );
  };
  await refused("patients.id", /patients\.id cannot be encrypted: it is \(part of\) the primary key/);
  await refused(
    "patients.doctor_id",
    /patients\.doctor_id cannot be encrypted: it is in a FOREIGN KEY to doctors/,
  );
  await refused("doctors.name", /doctors\.name cannot be encrypted: it is in UNIQUE constraint/);
  await refused("patients.code", /patients\.code cannot be encrypted: it is in UNIQUE constraint/);
  await refused("patients.city", /index patients_city orders or filters by it/);
  await refused("patients.visits", /CHECK \(visits >= 0\) reads it/);
  await refused("patients.nope", /table patients has no column nope; its columns are: id, ssn/);
  await refused("nope.ssn", /no table nope is imported/);
  await refused("ssn", /name a column as TABLE\.COLUMN/);
  await assert.rejects(
    importSqlite({
      path,
      pool: db().pool,
      schema: "refused",
      encryptedColumns: ["patients.ssn"],
      blindIndexColumns: ["patients.name"],
      keyring,
    }),
    /--blind-index patients\.name: a blind index is for an encrypted column/,
  );
  await assert.rejects(
    importSqlite({ path, pool: db().pool, schema: "refused", encryptedColumns: ["patients.ssn"] }),
    /need keys: pass --keys FILE/,
  );
  await assert.rejects(
    importSqlite({
      path,
      pool: db().pool,
      schema: "refused",
      encryptedColumns: ["patients.ssn"],
      keyring,
      onBadValue: "quarantine",
    }),
    /plaintext and all, in pgshift\.quarantine/,
  );
  await assert.rejects(
    importSqlite({ path, pool: db().pool, schema: "refused", integrity: true, keyring }),
    /name them with --encrypt-columns/,
  );
  // nothing was created by the refused imports
  const { rows } = await db().pool.query(
    "select count(*)::int as n from pg_tables where schemaname = 'refused'",
  );
  assert.equal(rows[0].n, 0);
});

test("CLI: import --encrypt-columns --blind-index --integrity --keys lists the type change (terminal and report), verify (source and --integrity) and keys rotate work on the table, nothing secret printed", async () => {
  const dir = fixtureDir();
  const path = makeSqlite(join(dir, "clinic.db"), SCHEMA_SQL, fill);
  const keys = join(dir, "keys.json");
  assert.equal((await runCli(["keys", "new", keys], { cwd: dir })).code, 0);
  const k1Json = await readFile(keys, "utf8");
  const to = ["--to", db().url, "--schema", "cli"];
  const imported = await runCli(
    [
      "import",
      path,
      ...to,
      "--encrypt-columns",
      "patients.ssn,patients.name",
      "--encrypt-columns",
      "patients.born",
      "--blind-index",
      "patients.ssn",
      "--integrity",
      "--keys",
      keys,
    ],
    { cwd: dir },
  );
  assert.equal(imported.code, 0, imported.stderr);
  assert.match(
    imported.stdout,
    /encrypted under key "k1": patients\.ssn \(text -> jsonb envelope, blind index\), patients\.name \(text -> jsonb envelope\), patients\.born \(date -> jsonb envelope\); record MACs in record_mac of patients/,
  );
  assert.match(
    imported.stdout,
    /verified: identical \(counts and per-row checksums, encrypted values decrypted and compared\)/,
  );
  const reportPath = /report: (\S+)/.exec(imported.stdout)![1]!;
  const reportText = await readFile(reportPath, "utf8");
  const report = JSON.parse(reportText);
  assert.deepEqual(
    report.encryption.columns.map(
      (c: { column: string; originalType: string }) => `${c.column}:${c.originalType}`,
    ),
    ["ssn:text", "name:text", "born:date"],
  );
  assert.ok(
    report.notes.some(
      (n: { object: string; message: string }) =>
        n.object === "patients.born" && /^encrypted: date became jsonb/.test(n.message),
    ),
  );
  for (const secret of [...keyMaterial(k1Json), "900-00-0001", "Patient Name 3"])
    assert.ok(!(imported.stdout + imported.stderr + reportText).includes(secret), `output shows ${secret}`);

  const sourceCheck = await runCli(["verify", path, ...to, "--keys", keys], { cwd: dir });
  assert.equal(sourceCheck.code, 0, sourceCheck.stdout + sourceCheck.stderr);
  const integrity = await runCli(["verify", "--integrity", "--table", "patients", ...to, "--keys", keys], {
    cwd: dir,
  });
  assert.equal(integrity.code, 0, integrity.stderr);
  assert.match(
    integrity.stdout,
    /intact: 12 record\(s\) of cli\.patients checked \(record MACs, encrypted columns ssn, name, born\)/,
  );
  assert.equal((await runCli(["keys", "new", keys], { cwd: dir })).code, 0);
  const rotated = await runCli(["keys", "rotate", "--table", "patients", ...to, "--keys", keys], {
    cwd: dir,
  });
  assert.equal(rotated.code, 0, rotated.stderr);
  assert.match(rotated.stdout, /rotated 12 row\(s\) of cli\.patients to key "k2"/);
  await db().pool.query("update cli.patients set city = 'Elsewhere' where id = 3");
  const tampered = await runCli(["verify", "--integrity", "--table", "patients", ...to, "--keys", keys], {
    cwd: dir,
  });
  assert.equal(tampered.code, 3);
  assert.match(
    tampered.stdout,
    /TAMPERED: 1 of 12 record\(s\) of cli\.patients do not check:\n {2}3: mac_mismatch/,
  );

  const refused = await runCli(["import", path, ...to, "--encrypt-columns", "patients.id", "--keys", keys], {
    cwd: dir,
  });
  assert.equal(refused.code, 2);
  assert.match(
    stderrText(refused.stderr),
    /patients\.id cannot be encrypted: it is \(part of\) the primary key/,
  );
  const pointers = await runCli(["import", path, ...to, "--encrypt", "/ssn", "--keys", keys], { cwd: dir });
  assert.equal(pointers.code, 2);
  assert.match(stderrText(pointers.stderr), /for a SQLite import name columns with --encrypt-columns/);
});

test("encrypted columns: a value PostgreSQL cannot store fails the import at its row, without showing the value", async () => {
  const dir = fixtureDir();
  const path = makeSqlite(
    join(dir, "bad.db"),
    "CREATE TABLE people (id INTEGER PRIMARY KEY, ssn TEXT);",
    (d) => {
      d.prepare("insert into people values (1, '900-00-0001'), (2, ?)").run("900-00\u0000-secret");
    },
  );
  const keyring = (await keyFile(1)).keyring;
  const result = await importSqlite({
    path,
    pool: db().pool,
    schema: "bad",
    encryptedColumns: ["people.ssn"],
    keyring,
  });
  assert.equal(result.ok, false);
  assert.match(
    result.error!.message,
    /table people, rowid 2, column ssn: .*\(value not shown: encrypted column\)/,
  );
  assert.ok(!JSON.stringify(result).includes("secret"));
});

test("encrypted columns: an interrupted import resumes only with the keys, and ends verified", async () => {
  const dir = fixtureDir();
  const path = makeSqlite(join(dir, "clinic.db"), SCHEMA_SQL, fill);
  const keyring = (await keyFile(1)).keyring;
  const controller = new AbortController();
  const options = {
    path,
    pool: db().pool,
    schema: "resumed",
    encryptedColumns: ["patients.ssn"],
    integrity: true,
    chunkRows: 4,
    jobs: 1,
  };
  const first = await importSqlite({
    ...options,
    keyring,
    signal: controller.signal,
    onProgress: (event) => {
      if (event.task === "patients" && event.done > 0) controller.abort();
    },
  }).catch((error: unknown) => error);
  const interrupted =
    first instanceof Error ? undefined : (first as Awaited<ReturnType<typeof importSqlite>>);
  assert.notEqual(interrupted?.ok, true, "the first run was to stop early");
  // as `pgshift import clinic.db --resume` runs it: the plan (and what it encrypts) comes from the run
  const again = { path, pool: db().pool, schema: "resumed", resume: true };
  await assert.rejects(
    importSqlite(again),
    /encrypts columns \(patients\.ssn\): resume it with the same keys/,
  );
  const resumed = await importSqlite({ ...again, keyring });
  assert.equal(resumed.ok, true, JSON.stringify(resumed.error));
  assert.equal(resumed.resumed, true);
  assert.equal(resumed.verification?.identical, true);
  const integrity = await verifyIntegrity({ pool: db().pool, schema: "resumed", table: "patients", keyring });
  assert.equal(integrity.status, "intact");
  assert.equal(integrity.rowsChecked, 12);
});

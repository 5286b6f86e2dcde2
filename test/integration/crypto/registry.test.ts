import assert from "node:assert/strict";
import { test } from "node:test";
import pg from "pg";
import { DocumentStore } from "../../../src/documents/document-store.ts";
import { importDocuments } from "../../../src/documents/import-documents.ts";
import { UsageError } from "../../../src/errors.ts";
import { quarantinePart } from "../../../src/load/quarantine.ts";
import { ensureInternalSchema } from "../../../src/pg/internal-schema.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import { keyFile, patients } from "./fixtures.ts";

const db = useTestDatabase("crypt_registry");

test("a plain store for a role without access to the pgshift schema works as before (first test: no registry yet)", async () => {
  const pool = db().pool;
  await ensureInternalSchema(pool, [quarantinePart]);
  await importDocuments({ pool, from: [{ id: "a", v: 1 }], table: "plain_docs", key: "/id" });
  await pool.query("create role crypt_plain login password 'plain-pw'");
  await pool.query("grant usage on schema public to crypt_plain");
  await pool.query("grant select on public.plain_docs to crypt_plain");
  const url = new URL(db().url);
  url.username = "crypt_plain";
  url.password = "plain-pw";
  const reader = new pg.Pool({ connectionString: url.toString(), max: 1 });
  try {
    assert.deepEqual(await new DocumentStore(reader, { table: "plain_docs" }).get("a"), { id: "a", v: 1 });
  } finally {
    await reader.end();
  }
});

test("imports do not mix protection levels in one table; --mode replace starts afresh", async () => {
  const pool = db().pool;
  const { keyring } = await keyFile();
  const records = patients(4);
  const protectedImport = {
    pool,
    from: records,
    table: "mixed",
    key: "/id",
    keyring,
    encryptedPaths: ["/ssn"],
    blindIndexPaths: ["/ssn"],
    integrity: true,
  };
  await importDocuments(protectedImport);
  // plaintext into it: refused, nothing written
  await assert.rejects(
    importDocuments({
      pool,
      from: [{ id: "P100", ssn: "plain" }],
      table: "mixed",
      key: "/id",
      mode: "upsert",
    }),
    (error: unknown) => {
      assert.ok(error instanceof UsageError);
      assert.match(
        error.message,
        /public\.mixed holds fields encrypted at \/ssn and record MACs; import into it with the same --encrypt \/ssn --blind-index \/ssn --integrity --keys FILE/,
      );
      return true;
    },
  );
  // other paths: refused as well
  await assert.rejects(
    importDocuments({ ...protectedImport, mode: "upsert", encryptedPaths: ["/ssn", "/city"] }),
    /holds fields encrypted at \/ssn/,
  );
  const { rows } = await pool.query("select count(*)::int as n from mixed where doc->>'ssn' = 'plain'");
  assert.equal(rows[0].n, 0);
  // the same protection: fine
  await importDocuments({ ...protectedImport, mode: "upsert" });
  // a plain replace swaps the table and forgets its registry entry: a store without keys reads it
  await importDocuments({ pool, from: records, table: "mixed", key: "/id", mode: "replace" });
  assert.deepEqual(await new DocumentStore(pool, { table: "mixed" }).get("P002"), records[2]);
});

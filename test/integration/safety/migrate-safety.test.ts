import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import pg from "pg";
import { migrate } from "../../../src/migrate/index.ts";
import { runCli } from "../../helpers/cli.ts";
import { createTestDatabase, type TestDatabase } from "../../helpers/database.ts";
import { migrationDir } from "../migrate/migration-dir.ts";

async function withDatabase(fn: (db: TestDatabase) => Promise<void>): Promise<void> {
  const db = await createTestDatabase("migsafe");
  try {
    await fn(db);
  } finally {
    await db.drop();
  }
}

const threeStatements =
  "-- migrate:no-transaction\n-- migrate:up\ncreate table a (id int);\ncreate table b (id int);\ncreate table c (id int);\n";

describe("migrate: versions, attempts, BOM", () => {
  it("a version that is not a UTC time in the past is refused, naming the file; nothing runs", async () => {
    await withDatabase(async (db) => {
      for (const version of ["99999999999999", "20241341000000", "29990101000000"]) {
        const dir = migrationDir({
          "20240101000000_first.sql": "-- migrate:up\ncreate table first (id int);\n",
          [`${version}_bad.sql`]: "-- migrate:up\ncreate table bad (id int);\n",
        });
        for (const sub of ["up", "status"]) {
          const result = await runCli(["--json", "migrate", sub, "--dir", dir, "--to", db.url]);
          assert.equal(result.code, 1, result.stderr);
          assert.equal(JSON.parse(result.stdout).error, "migration_file_invalid");
          assert.match(
            result.stderr,
            new RegExp(`${version}_bad\\.sql: version ${version} is (not a valid UTC|in the future)`),
          );
        }
      }
      const { rows } = await db.pool.query("select to_regclass('public.first') as t");
      assert.equal(rows[0].t, null);
    });
  });

  it("attempts counts attempts: a clean three-statement no-transaction migration took one", async () => {
    await withDatabase(async (db) => {
      const dir = migrationDir({ "20240101000000_three.sql": threeStatements });
      const result = await runCli(["--json", "migrate", "up", "--dir", dir, "--to", db.url]);
      assert.equal(result.code, 0, result.stderr);
      const parsed = JSON.parse(result.stdout);
      assert.equal(parsed.migrations[0].attempts, 1);
      assert.equal(parsed.migrations[0].transaction, false);
    });
  });

  it("attempts counts attempts: one lock_timeout retry of the second statement makes two", async () => {
    await withDatabase(async (db) => {
      await db.pool.query("create table busy (id int)");
      const dir = migrationDir({
        "20240101000000_three.sql":
          "-- migrate:no-transaction\n-- migrate:up\ncreate table a (id int);\nalter table busy add column note text;\ncreate table c (id int);\n",
      });
      const holder = new pg.Client({ connectionString: db.url });
      await holder.connect();
      try {
        await holder.query("begin; lock table busy in access share mode");
        let retries = 0;
        const result = await migrate({
          pool: db.pool,
          dir,
          lockTimeoutMs: 100,
          retries: 10,
          retryBaseDelayMs: 20,
          retryMaxDelayMs: 50,
          logger: {
            info: () => undefined,
            warn: () => {
              if (++retries === 1) void holder.query("commit");
            },
          },
        });
        assert.equal(result.ok, true);
        assert.equal(result.migrations[0]!.attempts, 1 + retries);
        assert.ok(retries >= 1);
      } finally {
        await holder.end();
      }
    });
  });

  it("a byte order mark before the first marker is fine", async () => {
    await withDatabase(async (db) => {
      const dir = migrationDir({});
      writeFileSync(join(dir, "20240101000000_bom.sql"), "\uFEFF-- migrate:up\ncreate table bom (id int);\n");
      const result = await runCli(["migrate", "up", "--dir", dir, "--to", db.url]);
      assert.equal(result.code, 0, result.stderr);
      const { rows } = await db.pool.query("select to_regclass('public.bom')::text as t");
      assert.equal(rows[0].t, "bom");
    });
  });
});

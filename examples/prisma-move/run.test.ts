// The prisma-move example, end to end as the README runs it: dev.db as Prisma writes it, the schema
// `prisma migrate dev` creates, then pgshift's check (--dry-run), the data-only import with
// verification, and the undo, which leaves the ORM's tables empty and intact.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { runCli } from "../../test/helpers/cli.ts";
import { useTestDatabase } from "../../test/helpers/database.ts";
import { fixtureDir } from "../../test/integration/import/sqlite-fixtures.ts";
import { makeDevDb } from "./make-dev-db.ts";

const db = useTestDatabase("prismamove");
const schemaSql = readFileSync(fileURLToPath(new URL("./schema.sql", import.meta.url)), "utf8");

async function count(table: string): Promise<number> {
  return (await db().pool.query(`select count(*)::int as n from ${table}`)).rows[0].n;
}

test("check, import --data-only, verify identical, undo", async () => {
  const dir = fixtureDir();
  const devDb = makeDevDb(join(dir, "dev.db"), 300, 4);
  await db().pool.query(schemaSql);
  await db().pool.query(
    `insert into "_prisma_migrations" (id, checksum, migration_name, finished_at) values ('m1', 'x', '20240601000000_init', now())`,
  );
  const to = ["--to", db().url];

  const check = await runCli(["import", devDb, "--data-only", "--dry-run", ...to], { cwd: dir });
  assert.equal(check.code, 0, check.stdout + check.stderr);
  assert.match(check.stdout, /compatibility: ok/);
  assert.match(check.stdout, /load order: User, Post/);
  assert.doesNotMatch(check.stdout, /_prisma_migrations/);
  assert.equal(await count('"User"'), 0);

  const loaded = await runCli(["import", devDb, "--data-only", ...to], { cwd: dir });
  assert.equal(loaded.code, 0, loaded.stdout + loaded.stderr);
  assert.match(loaded.stdout, /verification: identical/);
  assert.equal(await count('"User"'), 300);
  assert.equal(await count('"Post"'), 1200);
  const { rows } = await db().pool.query(
    `select to_char("createdAt", 'YYYY-MM-DD HH24:MI:SS.MS') as created, verified, role::text, settings->>'theme' as theme
       from "User" where id = 7`,
  );
  assert.deepEqual(rows[0], {
    created: "2024-06-01 00:04:19.861",
    verified: true,
    role: "USER",
    theme: "dark",
  });
  // the application's next insert gets the next id
  const next = await db().pool.query(`insert into "User" (email) values ('new@example.com') returning id`);
  assert.equal(next.rows[0].id, 301);
  await db().pool.query(`delete from "User" where id = 301`);

  // a later verify reads the run's stored data-only plan: the target's types
  const verified = await runCli(["verify", devDb, ...to], { cwd: dir });
  assert.equal(verified.code, 0, verified.stdout + verified.stderr);

  const runId = /pgshift import --undo (\S+)/.exec(loaded.stdout)?.[1];
  assert.ok(runId, loaded.stdout);
  const undone = await runCli(["import", "--undo", runId, ...to], { cwd: dir });
  assert.equal(undone.code, 0, undone.stdout + undone.stderr);
  assert.equal(await count('"User"'), 0);
  assert.equal(await count('"Post"'), 0);
  assert.equal(await count('"_prisma_migrations"'), 1);
  const again = await db().pool.query(`insert into "User" (email) values ('first@example.com') returning id`);
  assert.equal(again.rows[0].id, 1);
});

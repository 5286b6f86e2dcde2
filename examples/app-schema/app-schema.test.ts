// The app-schema example, end to end: lint the migrations, apply them all, check that the schema
// behaves (generated UUIDs, timestamp triggers, case-insensitive unique email, cascades, row-level
// security for a non-owner role), then roll everything back and check that nothing is left.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import {
  assertSchemaVersion,
  lintMigrations,
  loadMigrations,
  migrate,
  migrateDown,
  migrationStatus,
} from "../../src/migrate/index.ts";
import { quoteIdent } from "../../src/pg/quote.ts";
import { useTestDatabase } from "../../test/helpers/database.ts";

const dir = fileURLToPath(new URL("./migrations", import.meta.url));
const db = useTestDatabase("appschema");

test("the example migrations pass pgshift's own lint, each file as if the earlier ones were in production", async () => {
  const migrations = await loadMigrations(dir);
  assert.equal(migrations.length, 6);
  for (const migration of migrations) {
    const result = lintMigrations([migration]);
    assert.deepEqual(result.findings, [], migration.file);
  }
  assert.ok(
    migrations.every((m) => m.down !== null),
    "every migration can be rolled back",
  );
});

test("apply, use, and roll back the application schema", async () => {
  const pool = db().pool;
  const up = await migrate({ pool, dir });
  assert.equal(up.ok, true);
  assert.equal(up.applied, 6);
  assert.equal(up.migrations.at(-1)?.transaction, false, "the concurrent index runs outside a transaction");
  assert.deepEqual(await assertSchemaVersion(pool, { dir }), { current: "20250101090500", applied: 6 });
  assert.equal((await migrationStatus({ pool, dir })).upToDate, true);

  const tables = await pool.query(
    "select table_name from information_schema.tables where table_schema = 'app' order by 1",
  );
  assert.deepEqual(
    tables.rows.map((r) => r.table_name),
    ["agent_executions", "document_versions", "documents", "exports", "projects", "users"],
  );

  // UUID keys come from the database; created_at is forced by the trigger.
  const ada = (
    await pool.query(
      "insert into app.users (email, display_name, created_at) values ('Ada@example.com', 'Ada', '2000-01-01') returning *",
    )
  ).rows[0];
  assert.match(ada.id, /^[0-9a-f-]{36}$/);
  assert.notEqual(ada.created_at.getUTCFullYear(), 2000, "created_at is set by the trigger, not the client");
  const updated = (
    await pool.query(
      "update app.users set display_name = 'Ada L.', created_at = '2001-01-01', updated_at = '2001-01-01' where id = $1 returning *",
      [ada.id],
    )
  ).rows[0];
  assert.equal(updated.created_at.getTime(), ada.created_at.getTime(), "created_at cannot be changed");
  assert.notEqual(updated.updated_at.getUTCFullYear(), 2001, "updated_at is maintained by the trigger");
  assert.ok(updated.updated_at.getTime() >= ada.created_at.getTime());

  await assert.rejects(
    () => pool.query("insert into app.users (email, display_name) values ('ada@EXAMPLE.com', 'Copy')"),
    (error: unknown) => (error as { code?: string }).code === "23505",
    "email is unique whatever the case",
  );

  const bob = (
    await pool.query(
      "insert into app.users (email, display_name) values ('bob@example.com', 'Bob') returning id",
    )
  ).rows[0].id;
  const project = (
    await pool.query("insert into app.projects (owner_id, name) values ($1, 'Thesis') returning id", [ada.id])
  ).rows[0].id;
  await pool.query("insert into app.projects (owner_id, name) values ($1, 'Bob''s'), ($1, 'Bob''s other')", [
    bob,
  ]);
  const document = (
    await pool.query("insert into app.documents (project_id, title) values ($1, 'Chapter 1') returning id", [
      project,
    ])
  ).rows[0].id;
  const version = (
    await pool.query(
      "insert into app.document_versions (document_id, version, body) values ($1, 1, 'Once upon a time') returning id",
      [document],
    )
  ).rows[0].id;
  await pool.query(
    "insert into app.agent_executions (project_id, document_version_id, agent, input) values ($1, $2, 'summarizer', '{\"max_words\": 50}')",
    [project, version],
  );
  await pool.query("insert into app.exports (project_id, requested_by, format) values ($1, $2, 'pdf')", [
    project,
    ada.id,
  ]);
  await assert.rejects(
    () => pool.query("insert into app.exports (project_id, format) values ($1, 'rtf')", [project]),
    (error: unknown) => (error as { code?: string }).code === "23514",
  );
  const index = await pool.query(
    "select i.indisvalid from pg_index i where i.indexrelid = 'app.exports_open'::regclass",
  );
  assert.deepEqual(index.rows, [{ indisvalid: true }]);

  // Row-level security: a non-owner role sees only the projects of the user it acts for.
  const role = `pgshift_app_${randomBytes(4).toString("hex")}`;
  await pool.query(`create role ${quoteIdent(role)} nologin`);
  const client = await pool.connect();
  try {
    await client.query(`grant usage on schema app to ${quoteIdent(role)}`);
    await client.query(`grant select, insert on app.projects to ${quoteIdent(role)}`);
    await client.query("begin");
    await client.query(`set local role ${quoteIdent(role)}`);
    await client.query("select set_config('app.user_id', $1, true)", [bob]);
    const visible = await client.query("select name from app.projects order by name");
    assert.deepEqual(
      visible.rows.map((r) => r.name),
      ["Bob's", "Bob's other"],
    );
    await assert.rejects(
      () => client.query("insert into app.projects (owner_id, name) values ($1, 'not mine')", [ada.id]),
      (error: unknown) => (error as { code?: string }).code === "42501",
      "cannot create a project for someone else",
    );
    await client.query("rollback");
    await client.query("begin");
    await client.query(`set local role ${quoteIdent(role)}`);
    const none = await client.query("select count(*)::int as n from app.projects");
    assert.equal(none.rows[0].n, 0, "no user set: nothing visible");
    await client.query("rollback");
  } finally {
    await client.query("rollback").catch(() => undefined);
    await client.query(`drop owned by ${quoteIdent(role)}`);
    client.release();
    await pool.query(`drop role ${quoteIdent(role)}`);
  }

  // Cascades: deleting a user removes their projects and everything under them.
  await pool.query("delete from app.users where id = $1", [ada.id]);
  const left = await pool.query(
    `select (select count(*) from app.projects where owner_id = $1)::int as projects,
            (select count(*) from app.documents)::int as documents,
            (select count(*) from app.document_versions)::int as versions,
            (select count(*) from app.agent_executions)::int as executions,
            (select count(*) from app.exports)::int as exports`,
    [ada.id],
  );
  assert.deepEqual(left.rows[0], { projects: 0, documents: 0, versions: 0, executions: 0, exports: 0 });

  // Roll everything back: nothing of the application schema remains.
  const down = await migrateDown({ pool, dir, target: "0" });
  assert.equal(down.ok, true);
  assert.equal(down.reverted, 6);
  const remaining = await pool.query(
    `select (select count(*) from pg_namespace where nspname = 'app')::int as schemas,
            (select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast', 'pgshift'))::int as relations,
            (select count(*) from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname not in ('pg_catalog', 'information_schema'))::int as functions,
            (select count(*) from pg_policy)::int as policies,
            (select count(*) from pg_trigger where not tgisinternal)::int as triggers,
            (select count(*) from pgshift.migrations)::int as applied`,
  );
  assert.deepEqual(remaining.rows[0], {
    schemas: 0,
    relations: 0,
    functions: 0,
    policies: 0,
    triggers: 0,
    applied: 0,
  });

  // And it applies again cleanly after the rollback.
  const again = await migrate({ pool, dir });
  assert.equal(again.applied, 6);
});

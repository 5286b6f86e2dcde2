import assert from "node:assert/strict";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import type pg from "pg";
import {
  assertSchemaVersion,
  baselineMigrations,
  IrreversibleMigrationError,
  MigrationDriftError,
  migrate,
  migrateDown,
  migrationStatus,
  OutOfOrderError,
  SchemaVersionError,
  verifyMigrations,
} from "../../../src/migrate/index.ts";
import { createTestDatabase, type TestDatabase } from "../../helpers/database.ts";
import { migration, migrationDir, writeMigrations } from "./migration-dir.ts";

async function withDatabase(fn: (db: TestDatabase) => Promise<void>): Promise<void> {
  const db = await createTestDatabase("mig");
  try {
    await fn(db);
  } finally {
    await db.drop();
  }
}

async function tables(pool: pg.Pool): Promise<string[]> {
  const { rows } = await pool.query(
    "select table_name from information_schema.tables where table_schema = 'public' order by 1",
  );
  return rows.map((r) => r.table_name);
}

async function appliedVersions(pool: pg.Pool): Promise<string[]> {
  const { rows } = await pool.query("select version from pgshift.migrations order by version");
  return rows.map((r) => r.version);
}

const three = {
  "20240101000000_accounts.sql": migration(
    "create table accounts (id bigint primary key, email text not null);",
    "drop table accounts;",
  ),
  "20240102000000_invoices.sql": migration(
    "create table invoices (id bigint primary key, account_id bigint references accounts (id));\ninsert into invoices values (1, null);",
    "drop table invoices;",
  ),
  "20240103000000_notes.sql": migration("create table notes (id int);", "drop table notes;"),
};

test("up applies every pending migration in order; down and redo revert and reapply", async () => {
  await withDatabase(async (db) => {
    const dir = migrationDir(three);
    const up = await migrate({ pool: db.pool, dir });
    assert.equal(up.ok, true);
    assert.deepEqual(
      up.migrations.map((m) => [m.version, m.status]),
      [
        ["20240101000000", "applied"],
        ["20240102000000", "applied"],
        ["20240103000000", "applied"],
      ],
    );
    assert.equal(up.versionAfter, "20240103000000");
    assert.deepEqual(await tables(db.pool), ["accounts", "invoices", "notes"]);
    const { rows } = await db.pool.query(
      "select name, sha256, applied_by, duration_ms, outcome from pgshift.migrations order by version",
    );
    assert.equal(rows.length, 3);
    assert.equal(rows[0].outcome, "applied");
    assert.match(rows[0].sha256, /^[0-9a-f]{64}$/);
    assert.match(rows[0].applied_by, / as /);

    const again = await migrate({ pool: db.pool, dir });
    assert.equal(again.migrations.length, 0, "nothing pending the second time");

    const down = await migrateDown({ pool: db.pool, dir });
    assert.deepEqual(
      down.migrations.map((m) => [m.version, m.status]),
      [["20240103000000", "reverted"]],
    );
    assert.deepEqual(await tables(db.pool), ["accounts", "invoices"]);

    const redo = await migrate({ pool: db.pool, dir });
    assert.deepEqual(
      redo.migrations.map((m) => m.status),
      ["applied"],
    );
    const two = await migrateDown({ pool: db.pool, dir, steps: 2 });
    assert.deepEqual(
      two.migrations.map((m) => m.version),
      ["20240103000000", "20240102000000"],
    );
    assert.deepEqual(await appliedVersions(db.pool), ["20240101000000"]);

    const partial = await migrate({ pool: db.pool, dir, target: "20240102000000" });
    assert.deepEqual(
      partial.migrations.map((m) => m.version),
      ["20240102000000"],
    );
    const all = await migrateDown({ pool: db.pool, dir, target: "0" });
    assert.equal(all.reverted, 2);
    assert.deepEqual(await tables(db.pool), []);
    assert.deepEqual(await appliedVersions(db.pool), []);
    const log = await db.pool.query(
      "select action, count(*)::int as n from pgshift.migration_log group by 1 order by 1",
    );
    assert.deepEqual(
      log.rows.map((r) => [r.action, r.n]),
      [
        ["applied", 5],
        ["reverted", 5],
      ],
    );
  });
});

test("a failing migration in the middle: earlier ones stay applied, it leaves no trace, later ones are skipped", async () => {
  await withDatabase(async (db) => {
    const dir = migrationDir({
      "20240101000000_a.sql": migration("create table a (id int);", "drop table a;"),
      "20240102000000_b.sql": migration(
        "create table b (id int);\ninsert into b values (1);\n\nselect 1 / 0 from b;",
        "drop table b;",
      ),
      "20240103000000_c.sql": migration("create table c (id int);", "drop table c;"),
    });
    const result = await migrate({ pool: db.pool, dir });
    assert.equal(result.ok, false);
    assert.deepEqual(
      result.migrations.map((m) => m.status),
      ["applied", "failed", "skipped"],
    );
    const failed = result.migrations[1]!;
    assert.equal(failed.error?.sqlstate, "22012");
    assert.equal(failed.error?.line, 5, "line of the failing statement in the file");
    assert.match(failed.error?.message ?? "", /20240102000000_b\.sql:5: division by zero/);
    assert.deepEqual(await tables(db.pool), ["a"], "b was rolled back, c never ran");
    assert.deepEqual(await appliedVersions(db.pool), ["20240101000000"]);
    const log = await db.pool.query(
      "select version, action, error from pgshift.migration_log where action = 'failed'",
    );
    assert.equal(log.rows.length, 1);
    assert.equal(log.rows[0].version, "20240102000000");
  });
});

test("drift and missing files: up and verify refuse naming the file; --allow-drift records the decision", async () => {
  await withDatabase(async (db) => {
    const dir = migrationDir(three);
    await migrate({ pool: db.pool, dir, target: "20240102000000" });
    const file = join(dir, "20240101000000_accounts.sql");
    writeFileSync(
      file,
      migration("create table accounts (id bigint primary key, email text);", "drop table accounts;"),
    );

    await assert.rejects(
      () => migrate({ pool: db.pool, dir }),
      (error: unknown) => {
        assert.ok(error instanceof MigrationDriftError);
        assert.match(error.message, /20240101000000_accounts\.sql: changed since it was applied/);
        return true;
      },
    );
    assert.deepEqual(await appliedVersions(db.pool), ["20240101000000", "20240102000000"], "nothing applied");
    const verify = await verifyMigrations({ pool: db.pool, dir });
    assert.equal(verify.ok, false);
    assert.equal(verify.drift[0]?.file, file);
    assert.equal(verify.verified, 1);

    const accepted = await migrate({ pool: db.pool, dir, allowDrift: true });
    assert.equal(accepted.applied, 1);
    assert.equal(accepted.driftAccepted.length, 1);
    const decision = await db.pool.query(
      "select version, sha256, previous_sha256 from pgshift.migration_log where action = 'drift_accepted'",
    );
    assert.equal(decision.rows.length, 1);
    assert.notEqual(decision.rows[0].sha256, decision.rows[0].previous_sha256);
    assert.equal(
      (await verifyMigrations({ pool: db.pool, dir })).ok,
      true,
      "the accepted checksum is recorded",
    );

    rmSync(join(dir, "20240102000000_invoices.sql"));
    await assert.rejects(
      () => migrate({ pool: db.pool, dir }),
      /20240102000000_invoices: applied, but its file is missing/,
    );
    const status = await migrationStatus({ pool: db.pool, dir });
    assert.equal(status.entries.find((e) => e.version === "20240102000000")?.state, "missing");
    assert.equal(status.upToDate, false);
    await assert.rejects(
      () => migrateDown({ pool: db.pool, dir, steps: 2, allowDrift: true }),
      (error: unknown) => error instanceof IrreversibleMigrationError && /is missing/.test(error.message),
    );
  });
});

test("out-of-order files are refused by default and applied with allowOutOfOrder", async () => {
  await withDatabase(async (db) => {
    const dir = migrationDir({
      "20240101000000_a.sql": migration("create table a (id int);", "drop table a;"),
      "20240103000000_c.sql": migration("create table c (id int);", "drop table c;"),
    });
    await migrate({ pool: db.pool, dir });
    writeMigrations(dir, {
      "20240102000000_b_from_branch.sql": migration("create table b (id int);", "drop table b;"),
      "20240104000000_d.sql": migration("create table d (id int);", "drop table d;"),
    });
    await assert.rejects(
      () => migrate({ pool: db.pool, dir }),
      (error: unknown) => {
        assert.ok(error instanceof OutOfOrderError);
        assert.match(error.message, /20240102000000_b_from_branch\.sql/);
        assert.match(error.message, /newest applied one \(20240103000000\)/);
        return true;
      },
    );
    assert.deepEqual(await tables(db.pool), ["a", "c"], "nothing applied after the refusal");
    assert.deepEqual((await verifyMigrations({ pool: db.pool, dir })).outOfOrder.length, 1);
    const result = await migrate({ pool: db.pool, dir, allowOutOfOrder: true });
    assert.deepEqual(
      result.migrations.map((m) => [m.version, m.outOfOrder ?? false]),
      [
        ["20240102000000", true],
        ["20240104000000", false],
      ],
    );
    assert.deepEqual(await tables(db.pool), ["a", "b", "c", "d"]);
    const logged = await db.pool.query(
      "select version from pgshift.migration_log where action = 'out_of_order_applied'",
    );
    assert.deepEqual(
      logged.rows.map((r) => r.version),
      ["20240102000000"],
    );
  });
});

test("down refuses a migration without a down section, before changing anything", async () => {
  await withDatabase(async (db) => {
    const dir = migrationDir({
      "20240101000000_a.sql": migration("create table a (id int);"),
      "20240102000000_b.sql": migration("create table b (id int);", "drop table b;"),
    });
    await migrate({ pool: db.pool, dir });
    await assert.rejects(
      () => migrateDown({ pool: db.pool, dir, steps: 2 }),
      /cannot revert .*20240101000000_a\.sql: it has no "-- migrate:down" section/,
    );
    assert.deepEqual(await tables(db.pool), ["a", "b"], "b was not reverted either");
  });
});

test("dry run returns the plan with lint hazards and changes nothing", async () => {
  await withDatabase(async (db) => {
    await db.pool.query("create table existing (id int, note text)");
    const dir = migrationDir({
      "20240101000000_new_table.sql": migration(
        "create table fresh (id int);\ncreate index on fresh (id);",
        "drop table fresh;",
      ),
      "20240102000000_index_existing.sql": migration("create index on existing (note);", "select 1;"),
    });
    const result = await migrate({ pool: db.pool, dir, dryRun: true });
    assert.deepEqual(
      result.migrations.map((m) => [m.version, m.status, (m.hazards ?? []).map((h) => h.rule)]),
      [
        ["20240101000000", "planned", []],
        ["20240102000000", "planned", ["index-not-concurrent"]],
      ],
    );
    assert.deepEqual(await tables(db.pool), ["existing"]);
    const schema = await db.pool.query("select 1 from pg_namespace where nspname = 'pgshift'");
    assert.equal(schema.rowCount, 0, "a dry run does not even create pgshift's schema");
  });
});

test("baseline records existing migrations without running them; assertSchemaVersion names what is missing", async () => {
  await withDatabase(async (db) => {
    const dir = migrationDir(three);
    await assert.rejects(
      () => assertSchemaVersion(db.pool, { atLeast: "20240102000000" }),
      (error: unknown) => error instanceof SchemaVersionError && /no migrations applied/.test(error.message),
    );
    const baseline = await baselineMigrations({ pool: db.pool, dir, version: "20240102000000" });
    assert.deepEqual(
      baseline.recorded.map((r) => r.version),
      ["20240101000000", "20240102000000"],
    );
    assert.deepEqual(await tables(db.pool), [], "baseline runs nothing");
    const { rows } = await db.pool.query("select outcome from pgshift.migrations");
    assert.deepEqual(
      rows.map((r) => r.outcome),
      ["baseline", "baseline"],
    );
    assert.deepEqual(await assertSchemaVersion(db.pool, { atLeast: "20240102000000" }), {
      current: "20240102000000",
      applied: 2,
    });
    await assert.rejects(
      () => assertSchemaVersion(db.pool, { dir }),
      (error: unknown) =>
        error instanceof SchemaVersionError && /missing: 20240103000000_notes/.test(error.message),
    );
    await assert.rejects(
      () => baselineMigrations({ pool: db.pool, dir, version: "20240101000000" }),
      /newer migrations are already applied/,
    );
  });
});

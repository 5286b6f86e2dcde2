import assert from "node:assert/strict";
import { test } from "node:test";
import pg from "pg";
import { type MigrateResult, migrate, withMigrationLock } from "../../../src/migrate/index.ts";
import { ensureInternalSchema } from "../../../src/pg/internal-schema.ts";
import { createPool } from "../../../src/pg/pool.ts";
import { migratePart } from "../../../src/migrate/history.ts";
import { createTestDatabase, type TestDatabase } from "../../helpers/database.ts";
import { migration, migrationDir } from "./migration-dir.ts";

async function withDatabase(fn: (db: TestDatabase) => Promise<void>): Promise<void> {
  const db = await createTestDatabase("miglock");
  try {
    await fn(db);
  } finally {
    await db.drop();
  }
}

const slowMigrations = {
  "20240101000000_slow.sql": migration(
    "create table slow (id int);\nselect pg_sleep(1);",
    "drop table slow;",
  ),
  "20240102000000_after.sql": migration("create table after_slow (id int);", "drop table after_slow;"),
};

async function twoRunners(db: TestDatabase, lockMode: "advisory" | "row", lockWaitMs: number) {
  const dir = migrationDir(slowMigrations);
  const pools = [createPool({ url: db.url, max: 3 }), createPool({ url: db.url, max: 3 })];
  try {
    const results = await Promise.allSettled(
      pools.map((pool) => migrate({ pool, dir, lockMode, lockWaitMs })),
    );
    const { rows } = await db.pool.query(
      "select version, count(*)::int as n from pgshift.migrations group by 1 order by 1",
    );
    assert.deepEqual(
      rows.map((r) => [r.version, r.n]),
      [
        ["20240101000000", 1],
        ["20240102000000", 1],
      ],
      "each migration applied exactly once",
    );
    const applied = results.map((r) => (r.status === "fulfilled" ? r.value.applied : 0));
    assert.deepEqual([...applied].sort(), [0, 2], "one runner applied everything, the other nothing");
    return results;
  } finally {
    await Promise.all(pools.map((p) => p.end()));
  }
}

function assertBusyOrIdle(results: PromiseSettledResult<MigrateResult>[], holderPattern: RegExp): void {
  const loser = results.find((r) => r.status === "rejected" || r.value.applied === 0)!;
  if (loser.status === "rejected") {
    const error = loser.reason as { code?: string; message?: string };
    assert.equal(error.code, "lock_busy");
    assert.match(error.message ?? "", holderPattern);
  } else {
    // The machine was slow enough that the second runner came after the first had finished.
    assert.equal(loser.value.migrations.length, 0);
  }
}

test("two runners started at once (advisory lock, no wait): one applies, the other fails naming the holder", async () => {
  await withDatabase(async (db) => {
    const results = await twoRunners(db, "advisory", 0);
    assertBusyOrIdle(results, /database pgshift_\w+ \(migrations\) is locked by pid \d+/);
  });
});

test("two runners started at once (advisory lock, waiting): the second waits, then finds nothing to do", async () => {
  await withDatabase(async (db) => {
    const results = await twoRunners(db, "advisory", 30_000);
    assert.ok(results.every((r) => r.status === "fulfilled"));
  });
});

test("two runners started at once (row lock): one applies, the other fails or waits, never both", async () => {
  await withDatabase(async (db) => {
    const busy = await twoRunners(db, "row", 0);
    assertBusyOrIdle(busy, /schema migrations are locked by .* pid \d+/);
  });
});

test("the lock row names its holder, is released after use, and a crashed runner's expired row is taken over", async () => {
  await withDatabase(async (db) => {
    await ensureInternalSchema(db.pool, [migratePart]);
    await withMigrationLock(db.pool, { mode: "row", owner: "runner-one" }, async () => {
      const { rows } = await db.pool.query("select owner from pgshift.migration_lock");
      assert.match(rows[0].owner, /^runner-one /);
      await assert.rejects(
        () => withMigrationLock(db.pool, { mode: "row", owner: "runner-two" }, async () => "no"),
        /locked by runner-one .*last heartbeat/,
      );
    });
    const after = await db.pool.query("select count(*)::int as n from pgshift.migration_lock");
    assert.equal(after.rows[0].n, 0, "released");
    await db.pool.query(
      "insert into pgshift.migration_lock values (true, 'crashed-runner', now() - interval '1 hour', now() - interval '1 hour', now() - interval '1 minute')",
    );
    const value = await withMigrationLock(db.pool, { mode: "row", owner: "runner-three" }, async (lock) => {
      await lock.assertHeld();
      const { rows } = await db.pool.query("select owner from pgshift.migration_lock");
      return rows[0].owner as string;
    });
    assert.match(value, /^runner-three /);
  });
});

test("a lost lock row stops the runner before the next migration", async () => {
  await withDatabase(async (db) => {
    await ensureInternalSchema(db.pool, [migratePart]);
    await assert.rejects(
      () =>
        withMigrationLock(db.pool, { mode: "row", owner: "slow", rowTtlMs: 300 }, async (lock) => {
          await db.pool.query("update pgshift.migration_lock set owner = 'someone else'");
          await new Promise((resolve) => setTimeout(resolve, 400));
          await lock.assertHeld();
        }),
      (error: unknown) => (error as { code?: string }).code === "migration_lock_lost",
    );
  });
});

test("lock_timeout: a migration blocked by another session times out, retries with backoff, then applies", async () => {
  await withDatabase(async (db) => {
    await db.pool.query("create table busy (id int)");
    const dir = migrationDir({
      "20240101000000_alter_busy.sql": migration(
        "alter table busy add column note text;",
        "alter table busy drop column note;",
      ),
    });
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    try {
      await holder.query("begin; lock table busy in access share mode");
      const retries: number[] = [];
      const result = await migrate({
        pool: db.pool,
        dir,
        lockTimeoutMs: 100,
        retries: 10,
        retryBaseDelayMs: 20,
        retryMaxDelayMs: 100,
        logger: {
          info: () => undefined,
          warn: (_message, fields) => {
            retries.push(Number(fields?.attempt));
            // The other session finishes its work after our first timeout.
            if (retries.length === 1) void holder.query("commit");
          },
        },
      });
      assert.equal(result.ok, true);
      assert.ok(result.migrations[0]!.attempts >= 2, `attempts: ${result.migrations[0]!.attempts}`);
      assert.equal(retries[0], 1);
      const { rows } = await db.pool.query(
        "select count(*)::int as n from information_schema.columns where table_name = 'busy' and column_name = 'note'",
      );
      assert.equal(rows[0].n, 1);
    } finally {
      await holder.end();
    }
  });
});

test("lock_timeout: when the other session keeps its lock, the migration fails with 55P03 after its retries", async () => {
  await withDatabase(async (db) => {
    await db.pool.query("create table busy (id int)");
    const dir = migrationDir({
      "20240101000000_alter_busy.sql": migration(
        "alter table busy add column note text;",
        "alter table busy drop column note;",
      ),
    });
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    try {
      await holder.query("begin; lock table busy in access share mode");
      const result = await migrate({
        pool: db.pool,
        dir,
        lockTimeoutMs: 50,
        retries: 2,
        retryBaseDelayMs: 10,
      });
      assert.equal(result.ok, false);
      assert.equal(result.migrations[0]!.status, "failed");
      assert.equal(result.migrations[0]!.attempts, 3);
      assert.equal(result.migrations[0]!.error?.sqlstate, "55P03");
      const { rows } = await db.pool.query("select count(*)::int as n from pgshift.migrations");
      assert.equal(rows[0].n, 0);
    } finally {
      await holder.query("rollback");
      await holder.end();
    }
  });
});

test("CREATE INDEX CONCURRENTLY runs in a no-transaction migration; a failed build leaves no INVALID index", async () => {
  await withDatabase(async (db) => {
    await db.pool.query(
      "create table people (id int, email text); insert into people select g, 'p' || g from generate_series(1, 1000) g",
    );
    await db.pool.query("insert into people values (1001, 'p1')");
    const dir = migrationDir({
      "20240101000000_people_email.sql": migration(
        "create unique index concurrently if not exists people_email on people (email);",
        "drop index concurrently if exists people_email;",
        { noTransaction: true },
      ),
    });
    const failed = await migrate({ pool: db.pool, dir });
    assert.equal(failed.ok, false);
    assert.equal(failed.migrations[0]!.error?.sqlstate, "23505");
    const indexes = async () =>
      (
        await db.pool.query(
          "select c.relname, i.indisvalid from pg_index i join pg_class c on c.oid = i.indexrelid where i.indrelid = 'people'::regclass",
        )
      ).rows.map((r) => [r.relname, r.indisvalid]);
    assert.deepEqual(await indexes(), [], "the INVALID index of the failed build was dropped");
    const history = await db.pool.query("select count(*)::int as n from pgshift.migrations");
    assert.equal(history.rows[0].n, 0);

    await db.pool.query("delete from people where id = 1001");
    const applied = await migrate({ pool: db.pool, dir });
    assert.equal(applied.ok, true);
    assert.equal(applied.migrations[0]!.transaction, false);
    assert.deepEqual(await indexes(), [["people_email", true]]);

    const down = await (await import("../../../src/migrate/index.ts")).migrateDown({ pool: db.pool, dir });
    assert.equal(down.reverted, 1);
    assert.deepEqual(await indexes(), []);
  });
});

// The lock-row fallback through a real PgBouncer in transaction pooling mode, where session-level
// advisory locks cannot work (each transaction may run on a different server connection).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { migrate, migrateDown, migratePart } from "../../../src/migrate/index.ts";
import { ensureInternalSchema } from "../../../src/pg/internal-schema.ts";
import { createPool } from "../../../src/pg/pool.ts";
import { createTestDatabase, useTestDatabase } from "../../helpers/database.ts";
import { migration, migrationDir } from "./migration-dir.ts";
import { type TestBouncer, startTestBouncer } from "../../helpers/pgbouncer.ts";

const db = useTestDatabase("migbouncer");
let bouncer: TestBouncer;
before(async () => {
  bouncer = await startTestBouncer({
    serverUrl: process.env.TEST_DATABASE_URL!,
    // FIFO reuse of server connections: consecutive transactions of one client land on different
    // server sessions, which is what makes session-level state unsafe behind a pooler.
    extra: ["server_round_robin = 1"],
  });
});
after(async () => {
  await bouncer?.stop();
});

test("through transaction-mode PgBouncer with --lock-mode row: two runners at once apply each migration exactly once", async () => {
  const dir = migrationDir({
    "20240101000000_orders.sql": migration(
      "create table orders (id bigint generated always as identity primary key, customer text not null);\ninsert into orders (customer) select 'c' || g from generate_series(1, 2000) g;",
      "drop table orders;",
    ),
    "20240102000000_orders_customer_index.sql": migration(
      "create index concurrently orders_customer on orders (customer);",
      "drop index concurrently orders_customer;",
      { noTransaction: true },
    ),
    "20240103000000_slow.sql": migration(
      "create table audit (id int);\nselect pg_sleep(1);",
      "drop table audit;",
    ),
    "20240104000000_last.sql": migration(
      "alter table orders add column note text;",
      "alter table orders drop column note;",
    ),
  });
  const pools = [0, 1, 2].map(() => createPool({ url: bouncer.url(db().name), max: 3 }));
  try {
    // pgshift's own schema is created once first; the race is about the application's migrations.
    const first = await migrate({ pool: pools[0]!, dir, lockMode: "row", target: "20240101000000" });
    assert.equal(first.applied, 1);

    const results = await Promise.allSettled(
      pools.slice(1).map((pool) => migrate({ pool, dir, lockMode: "row", lockWaitMs: 0 })),
    );
    const applied = results.map((r) => (r.status === "fulfilled" ? r.value.applied : 0)).sort();
    assert.deepEqual(applied, [0, 3], "one runner applied the three remaining migrations, the other none");
    for (const result of results) {
      if (result.status === "rejected") {
        assert.equal((result.reason as { code?: string }).code, "lock_busy");
        assert.match(String((result.reason as Error).message), /schema migrations are locked by .*pid \d+/);
      }
    }
    const history = await db().pool.query("select version from pgshift.migrations order by version");
    assert.deepEqual(
      history.rows.map((r) => r.version),
      ["20240101000000", "20240102000000", "20240103000000", "20240104000000"],
    );
    const index = await db().pool.query(
      "select indisvalid from pg_index where indexrelid = 'orders_customer'::regclass",
    );
    assert.deepEqual(
      index.rows,
      [{ indisvalid: true }],
      "CREATE INDEX CONCURRENTLY worked through the pooler",
    );

    const down = await migrateDown({ pool: pools[1]!, dir, lockMode: "row", target: "0" });
    assert.equal(down.reverted, 4);
    const left = await db().pool.query(
      `select (select count(*) from pgshift.migrations)::int as applied,
              (select count(*) from pgshift.migration_lock)::int as lock_rows,
              (select count(*) from pg_class where relname in ('orders', 'audit'))::int as tables,
              (select count(*) from pg_locks where locktype = 'advisory' and database = (select oid from pg_database where datname = current_database()))::int as advisory_locks`,
    );
    assert.deepEqual(left.rows[0], { applied: 0, lock_rows: 0, tables: 0, advisory_locks: 0 });
  } finally {
    await Promise.all(pools.map((p) => p.end()));
  }
});

test("through transaction-mode PgBouncer, the default advisory mode notices the pooler and stops before migrating", async () => {
  const other = await createTestDatabase("migbouncer");
  const pool = createPool({ url: bouncer.url(other.name), max: 4 });
  try {
    // pgshift's schema exists already (created directly): this is about the migration lock only.
    await ensureInternalSchema(other.pool, [migratePart]);
    // Open several server connections, so that consecutive statements go to different ones.
    await Promise.all([1, 2, 3].map(() => pool.query("select pg_sleep(0.2)")));
    const dir = migrationDir({
      "20240101000000_t.sql": migration("create table t (id int);", "drop table t;"),
    });
    await assert.rejects(
      () => migrate({ pool, dir }),
      (error: unknown) => {
        assert.equal((error as { code?: string }).code, "migration_lock_lost");
        assert.match((error as Error).message, /transaction-mode pooler\? use --lock-mode row/);
        return true;
      },
    );
    const applied = await other.pool.query("select count(*)::int as n from pgshift.migrations");
    assert.equal(applied.rows[0].n, 0, "nothing ran without the lock");
    const result = await migrate({ pool, dir, lockMode: "row" });
    assert.equal(result.applied, 1);
  } finally {
    await pool.end();
    await other.drop();
  }
});

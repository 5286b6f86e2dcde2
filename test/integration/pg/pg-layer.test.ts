import assert from "node:assert/strict";
import { test } from "node:test";
import {
  ConnectionError,
  copyRows,
  createPool,
  ensureInternalSchema,
  LockBusyError,
  LockKey,
  PgError,
  withAdvisoryLock,
  withClient,
  withRetry,
  withTransaction,
} from "../../../src/pg/index.ts";
import { useTestDatabase } from "../../helpers/database.ts";

const db = useTestDatabase("pg");

test("withTransaction commits on success and rolls back on error", async () => {
  const { pool } = db();
  await pool.query("create table tx_t (id int primary key)");
  await withTransaction(pool, (c) => c.query("insert into tx_t values (1)"));
  await assert.rejects(
    withTransaction(pool, async (c) => {
      await c.query("insert into tx_t values (2)");
      await c.query("insert into tx_t values (1)");
    }),
  );
  const { rows } = await pool.query("select array_agg(id order by id) as ids from tx_t");
  assert.deepEqual(rows[0].ids, [1]);
});

test("server errors keep PostgreSQL's fields", async () => {
  const { pool } = db();
  await pool.query(
    "create table fk_parent (id int primary key); create table fk_child (pid int references fk_parent(id))",
  );
  const error = await withClient(pool, (c) => c.query("insert into fk_child values (7)")).catch((e) => e);
  assert.ok(error instanceof PgError, String(error));
  assert.equal(error.sqlstate, "23503");
  assert.equal(error.fields.table, "fk_child");
  assert.equal(error.fields.constraint, "fk_child_pid_fkey");
  assert.match(error.fields.detail ?? "", /Key \(pid\)=\(7\) is not present/);
});

test("connection failures name the target without the password", async () => {
  const pool = createPool({
    url: "postgres://nobody:hunter2secret@127.0.0.1:1/nowhere",
    connectTimeoutMs: 2000,
  });
  const error = await withClient(pool, (c) => c.query("select 1")).catch((e) => e);
  await pool.end();
  assert.ok(error instanceof ConnectionError);
  assert.match(error.message, /could not connect to 127\.0\.0\.1:1\/nowhere as nobody/);
  assert.ok(!JSON.stringify(error.toJSON()).includes("hunter2secret"));
  assert.ok(!error.message.includes("hunter2secret"));
});

test("a wrong password gives one clear message with no password in it", async () => {
  const url = new URL(db().url);
  url.password = "definitely-wrong-pw";
  const pool = createPool({ url: url.toString() });
  const error = await withClient(pool, (c) => c.query("select 1")).catch((e) => e);
  await pool.end();
  assert.ok(error instanceof ConnectionError);
  assert.match(error.message, /password authentication failed/);
  assert.ok(!error.message.includes("definitely-wrong-pw"));
});

test("advisory lock: second taker fails at once naming the holder, or waits", async () => {
  const { pool } = db();
  const key = LockKey.migrate;
  let release!: () => void;
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  let acquired!: () => void;
  const isHeld = new Promise<void>((resolve) => {
    acquired = resolve;
  });
  const holder = withAdvisoryLock(pool, key, async () => {
    acquired();
    await held;
    return "first";
  });
  await isHeld;
  const busy = await withAdvisoryLock(pool, key, async () => "second", { what: "migrations" }).catch(
    (e) => e,
  );
  assert.ok(busy instanceof LockBusyError, String(busy));
  assert.equal(busy.holders.length, 1);
  assert.equal(busy.holders[0]!.applicationName, "pgshift");
  assert.match(busy.message, /migrations is locked by pid \d+ \(pgshift/);
  const waiter = withAdvisoryLock(pool, key, async () => "second", { waitMs: 10_000, pollMs: 20 });
  release();
  assert.equal(await holder, "first");
  assert.equal(await waiter, "second");
  // this database's locks only: other test files run beside this one on the same server
  const { rows } = await pool.query(
    "select count(*)::int as n from pg_locks where locktype = 'advisory' and database = (select oid from pg_database where datname = current_database())",
  );
  assert.equal(rows[0].n, 0);
});

test("copyRows round-trips awkward values and returns the server's count", async () => {
  const { pool } = db();
  await pool.query(
    `create table "Copy Target" (id bigint, "select" text, f double precision, b bytea, j jsonb, ok boolean, ts timestamptz)`,
  );
  const rows = [
    [
      1n,
      "tab\there\nnewline\\backslash",
      1.5,
      Buffer.from([0, 1, 255]),
      { a: [1, "x\ty"] },
      true,
      new Date("2024-02-29T12:00:00.123Z"),
    ],
    [2n, null, Number.NaN, null, null, false, null],
    [9007199254740993n, "\\N", -0, Buffer.alloc(0), [], null, null],
  ];
  const progress: number[] = [];
  const count = await withClient(pool, (c) =>
    copyRows(c, { table: "Copy Target", columns: ["id", "select", "f", "b", "j", "ok", "ts"] }, rows, {
      chunkBytes: 10,
      onProgress: (n) => progress.push(n),
    }),
  );
  assert.equal(count, 3);
  assert.equal(progress.at(-1), 3);
  const back = await pool.query(
    `select id::text, "select", f::text, encode(b, 'hex') as b, j, ok, ts from "Copy Target" order by id`,
  );
  assert.deepEqual(back.rows[0], {
    id: "1",
    select: "tab\there\nnewline\\backslash",
    f: "1.5",
    b: "0001ff",
    j: { a: [1, "x\ty"] },
    ok: true,
    ts: new Date("2024-02-29T12:00:00.123Z"),
  });
  assert.equal(back.rows[1].select, null);
  assert.equal(back.rows[1].f, "NaN");
  assert.equal(back.rows[2].id, "9007199254740993");
  assert.equal(back.rows[2].select, "\\N");
  assert.equal(back.rows[2].b, "");
});

test("a failing row aborts the whole COPY: nothing partial is left", async () => {
  const { pool } = db();
  await pool.query("create table copy_fail (n int not null)");
  async function* rows() {
    yield [1];
    yield [null];
  }
  await assert.rejects(
    withClient(pool, (c) => copyRows(c, { table: "copy_fail", columns: ["n"] }, rows())),
    /null value/,
  );
  const { rows: left } = await pool.query("select count(*)::int as n from copy_fail");
  assert.equal(left[0].n, 0);
});

test("ensureInternalSchema is idempotent and safe under concurrency", async () => {
  const { pool } = db();
  const part = {
    name: "test-part",
    steps: ["create table pgshift.test_a (id int)", "alter table pgshift.test_a add column note text"],
  };
  await Promise.all([
    ensureInternalSchema(pool, [part]),
    ensureInternalSchema(pool, [part]),
    ensureInternalSchema(pool, [part]),
  ]);
  const { rows } = await pool.query("select version from pgshift.schema_parts where part = 'test-part'");
  assert.equal(rows[0].version, 2);
  const cols = await pool.query(
    "select column_name from information_schema.columns where table_schema = 'pgshift' and table_name = 'test_a' order by 1",
  );
  assert.deepEqual(
    cols.rows.map((r) => r.column_name),
    ["id", "note"],
  );
  const grown = { ...part, steps: [...part.steps, "create index on pgshift.test_a (note)"] };
  await ensureInternalSchema(pool, [grown]);
  const again = await pool.query("select version from pgshift.schema_parts where part = 'test-part'");
  assert.equal(again.rows[0].version, 3);
});

test("withRetry gets through a lock held by another session once it is released", async () => {
  const { pool } = db();
  await pool.query("create table locked_t (id int)");
  const blocker = await pool.connect();
  await blocker.query("begin; lock table locked_t in access exclusive mode");
  const retryPool = createPool({ url: db().url, lockTimeoutMs: 50 });
  let retries = 0;
  setTimeout(() => {
    void blocker.query("rollback").then(() => blocker.release());
  }, 300);
  await withRetry(() => withClient(retryPool, (c) => c.query("alter table locked_t add column x int")), {
    retries: 20,
    baseDelayMs: 20,
    maxDelayMs: 100,
    onRetry: () => {
      retries++;
    },
  });
  await retryPool.end();
  assert.ok(retries >= 1, "expected at least one retry on 55P03");
  const cols = await pool.query(
    "select count(*)::int as n from information_schema.columns where table_name = 'locked_t'",
  );
  assert.equal(cols.rows[0].n, 2);
});

import assert from "node:assert/strict";
import { test } from "node:test";
import pg from "pg";
import {
  acquireAdvisoryLock,
  ConnectionLostError,
  copyRows,
  ensureInternalSchema,
  isConnectionLost,
  LockBusyError,
  LockKey,
  withClient,
  withTransaction,
} from "../../../src/pg/index.ts";
import { serverUrl, useTestDatabase } from "../../helpers/database.ts";

const db = useTestDatabase("pgloss");

async function terminate(pid: number): Promise<void> {
  const admin = new pg.Client({ connectionString: serverUrl() });
  await admin.connect();
  try {
    await admin.query("select pg_terminate_backend($1)", [pid]);
  } finally {
    await admin.end();
  }
}

test("a checked-out client whose backend is terminated: a ConnectionLostError naming the target, no crash", async () => {
  const { pool, url } = db();
  const error = await withClient(pool, async (client) => {
    const { rows } = await client.query("select pg_backend_pid() as pid");
    await terminate(rows[0].pid);
    // the connection's 'error' event fires now, with no query running: without a listener, a crash
    await new Promise((resolve) => setTimeout(resolve, 200));
    await client.query("select 1");
  }).catch((e) => e);
  assert.ok(error instanceof ConnectionLostError, String(error));
  assert.equal(error.code, "connection_lost");
  const parsed = new URL(url);
  assert.match(
    error.message,
    new RegExp(`^lost the connection to ${parsed.hostname}:${parsed.port}/${parsed.pathname.slice(1)}: `),
  );
  assert.equal(isConnectionLost(error), true);
  // the broken client was destroyed, not handed out again
  const { rows } = await pool.query("select 1 as ok");
  assert.equal(rows[0].ok, 1);
});

test("a COPY whose backend is terminated fails with the loss (EPIPE/ECONNRESET are connection losses)", async () => {
  const { pool } = db();
  await pool.query("create table copy_loss (id int, t text)");
  const error = await withTransaction(pool, async (client) => {
    const { rows } = await client.query("select pg_backend_pid() as pid");
    let n = 0;
    async function* many() {
      for (; n < 2_000_000; n++) {
        if (n === 50_000) await terminate(rows[0].pid);
        yield [n, "x".repeat(100)];
      }
    }
    await copyRows(client, { table: "copy_loss", columns: ["id", "t"] }, many(), { chunkBytes: 1 << 16 });
  }).catch((e) => e);
  assert.ok(error instanceof ConnectionLostError, `${error?.code}: ${error}`);
  const { rows } = await pool.query("select count(*)::int as n from copy_loss");
  assert.equal(rows[0].n, 0);
});

test("the internal-schema setup waits a bounded time, then names the session holding its lock", async () => {
  const { pool, url } = db();
  const holder = new pg.Client({ connectionString: url, application_name: "setup-holder" });
  holder.on("error", () => undefined);
  await holder.connect();
  try {
    const { rows } = await holder.query("select pg_backend_pid() as pid");
    await holder.query("begin");
    await acquireAdvisoryLock(holder, LockKey.internalSchema, { transaction: true });
    const error = await ensureInternalSchema(pool, [{ name: "loss_test", steps: ["select 1"] }], {
      waitMs: 300,
    }).catch((e) => e);
    assert.ok(error instanceof LockBusyError, String(error));
    assert.deepEqual(
      error.holders.map((h) => [h.pid, h.applicationName]),
      [[rows[0].pid, "setup-holder"]],
    );
    assert.match(
      error.message,
      /pgshift's internal schema setup .* is locked by pid \d+ \(setup-holder, user/,
    );
    await holder.query("commit");
    await ensureInternalSchema(pool, [{ name: "loss_test", steps: ["select 1"] }], { waitMs: 300 });
    const parts = await pool.query("select version from pgshift.schema_parts where part = 'loss_test'");
    assert.equal(parts.rows[0].version, 1);
  } finally {
    await holder.end().catch(() => undefined);
  }
});

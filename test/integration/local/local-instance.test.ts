import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import pg from "pg";
import {
  destroyLocalInstance,
  localInstanceStatus,
  localInstanceUrl,
  startLocalInstance,
  stopLocalInstance,
} from "../../../src/local/instance.ts";
import { testBinaries } from "../../helpers/binaries.ts";

const baseDir = mkdtempSync(join(tmpdir(), "pgshift-local-test-"));
// mkdtemp makes a 0700 directory; under root the server runs as another user, who must traverse it.
chmodSync(baseDir, 0o755);
const options = { name: "life", baseDir, ephemeral: true, binaries: testBinaries() };

after(async () => {
  await destroyLocalInstance(options).catch(() => undefined);
});

async function query(sql: string): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: localInstanceUrl(options) });
  await client.connect();
  try {
    return await client.query(sql);
  } finally {
    await client.end();
  }
}

test("lifecycle: create, reuse, stop, restart with data kept, crash recovery, destroy", async () => {
  assert.equal((await localInstanceStatus(options)).state, "absent");

  const first = await startLocalInstance(options);
  assert.equal(first.created, true);
  assert.equal(first.status.state, "running");
  assert.equal(first.status.version, testBinaries().version);
  assert.match(first.status.url!, /^postgres:\/\/postgres:\*{8}@127\.0\.0\.1:\d+\/postgres$/);
  const url = localInstanceUrl(options);
  assert.ok(!url.includes("********"));

  const ext = await query(
    "select string_agg(name, ',' order by name) as names from pg_available_extensions where name in ('pgcrypto', 'pg_trgm')",
  );
  assert.equal(ext.rows[0].names, "pg_trgm,pgcrypto");
  await query("create table kept (v text); insert into kept values ('survives restarts')");

  // Unqualified tables must land in public even once pgshift's internal schema exists: the superuser
  // must not be named like that schema, or search_path's "$user" would resolve to it.
  await query("create schema if not exists pgshift; create table plain_after_pgshift (x int)");
  const placed = await query(
    "select table_schema from information_schema.tables where table_name = 'plain_after_pgshift'",
  );
  assert.deepEqual(placed.rows, [{ table_schema: "public" }]);

  const again = await startLocalInstance(options);
  assert.equal(again.alreadyRunning, true);
  assert.equal(again.created, false);

  const stopped = await stopLocalInstance(options);
  assert.equal(stopped.state, "stopped");
  const restarted = await startLocalInstance(options);
  assert.equal(restarted.alreadyRunning, false);
  assert.deepEqual((await query("select v from kept")).rows, [{ v: "survives restarts" }]);

  // A crash: the postmaster dies without cleaning up; start must recover.
  process.kill(restarted.status.pid!, "SIGKILL");
  await new Promise((resolve) => setTimeout(resolve, 500));
  const recovered = await startLocalInstance(options);
  assert.equal(recovered.status.state, "running");
  assert.deepEqual((await query("select v from kept")).rows, [{ v: "survives restarts" }]);

  // A stale postmaster.pid whose PID now belongs to some other process (here: this test runner).
  await stopLocalInstance(options);
  const pidFile = join(recovered.status.dataDir, "postmaster.pid");
  writeFileSync(pidFile, `${process.pid}\n${recovered.status.dataDir}\n`);
  const afterStale = await startLocalInstance(options);
  assert.equal(afterStale.status.state, "running");
  assert.deepEqual((await query("select v from kept")).rows, [{ v: "survives restarts" }]);

  const destroyed = await destroyLocalInstance(options);
  assert.equal(destroyed.state, "absent");
  assert.equal(existsSync(join(baseDir, "life")), false);
});

test("instance names are validated", async () => {
  await assert.rejects(startLocalInstance({ ...options, name: "../escape" }), /may contain only letters/);
});

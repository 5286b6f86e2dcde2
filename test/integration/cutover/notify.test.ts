import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, test } from "node:test";
import type pg from "pg";
import { type CutoverStore, createCutover, setCutoverPhase } from "../../../src/cutover/index.ts";
import { createPool } from "../../../src/pg/pool.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import { eventually, type KvStore, MemoryKv, PgKv } from "./kv-stores.ts";

const db = useTestDatabase("cutover_notify");

describe("phase changes reach every instance", () => {
  let poolB: pg.Pool;
  let adminPool: pg.Pool;
  let a: CutoverStore<KvStore>;
  let b: CutoverStore<KvStore>;

  const open = async (pool: pg.Pool) => {
    const next = new PgKv(pool, "kv");
    await next.ensure();
    // Slow safety polling, so only a notification (or the reconnect re-read) can deliver a change in time.
    return createCutover<KvStore>({
      name: "orders",
      pool,
      legacy: new MemoryKv(),
      next,
      reads: ["get"],
      writes: ["put"],
      reportIntervalMs: 0,
      watch: { slowPollMs: 60_000, fastPollMs: 250 },
    });
  };

  before(async () => {
    poolB = createPool({ url: db().url, max: 4 });
    adminPool = createPool({ url: db().url, max: 2 });
    a = await open(db().pool);
    b = await open(poolB);
  });
  after(async () => {
    await a.cutover.close();
    await b.cutover.close();
    await poolB.end();
    await adminPool.end();
  });

  test("a change made through one instance is observed by the other (two pools) after one second", async () => {
    assert.equal(b.cutover.phase, "legacy-only");
    await a.cutover.setPhase("dual-write");
    await sleep(1_000);
    assert.equal(b.cutover.phase, "dual-write");
    assert.equal(b.cutover.metrics().watcher.listening, true);
  });

  test("a change made from outside (as the CLI does) reaches both instances", async () => {
    await setCutoverPhase(adminPool, { name: "orders", phase: "shadow", reason: "operator" });
    await sleep(1_000);
    assert.deepEqual([a.cutover.phase, b.cutover.phase], ["shadow", "shadow"]);
  });

  test("after the listening connections are killed, instances reconnect and still follow", async () => {
    const { rows } = await adminPool.query(
      `select pg_terminate_backend(pid) as killed from pg_stat_activity
        where datname = current_database() and application_name = 'pgshift-cutover-listener'`,
    );
    assert.equal(rows.length, 2);
    assert.ok(
      await eventually(
        () => !a.cutover.metrics().watcher.listening || a.cutover.metrics().watcher.reconnects > 0,
      ),
    );
    await setCutoverPhase(adminPool, { name: "orders", phase: "ramp:25" });
    await sleep(1_500);
    assert.deepEqual([a.cutover.phase, b.cutover.phase], ["ramp:25", "ramp:25"]);
    assert.ok(
      await eventually(
        () => a.cutover.metrics().watcher.listening && b.cutover.metrics().watcher.listening,
        10_000,
      ),
    );
    assert.ok(a.cutover.metrics().watcher.reconnects >= 1);
    // Notifications work again on the new connections.
    await setCutoverPhase(adminPool, { name: "orders", phase: "ramp:50" });
    await sleep(1_000);
    assert.deepEqual([a.cutover.phase, b.cutover.phase], ["ramp:50", "ramp:50"]);
  });

  test("close() releases the listener connection", async () => {
    const c = await open(poolB);
    const listeners = async () =>
      (
        await adminPool.query(
          `select count(*)::int as n from pg_stat_activity
            where datname = current_database() and application_name = 'pgshift-cutover-listener'`,
        )
      ).rows[0].n as number;
    const before = await listeners();
    await c.cutover.close();
    assert.ok(await eventually(async () => (await listeners()) === before - 1));
  });
});

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { type CutoverStore, createCutover } from "../../../src/cutover/index.ts";
import { createPool } from "../../../src/pg/pool.ts";
import {
  type PoolState,
  type StatusReport,
  type StatusServer,
  startStatusServer,
} from "../../../src/serve/index.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import { type KvStore, kvAccess, MemoryKv, PgKv } from "./kv-stores.ts";

const db = useTestDatabase("cutover_serve");

describe("status server", () => {
  let store: CutoverStore<KvStore>;
  let server: StatusServer;

  before(async () => {
    const next = new PgKv(db().pool, "kv");
    await next.ensure();
    store = await createCutover<KvStore>({
      name: "accounts",
      pool: db().pool,
      legacy: new MemoryKv(),
      next,
      reads: ["get"],
      writes: ["put", "delete"],
      keyAccess: kvAccess,
      labels: { legacy: "memory", next: "postgres public.kv" },
      reportIntervalMs: 0,
      initialPhase: "ramp:25",
    });
    server = await startStatusServer({ pool: db().pool, cutovers: [store.cutover] });
  });
  after(async () => {
    await server.close();
    await store.cutover.close();
  });

  test("/healthz answers while the process lives", async () => {
    const response = await fetch(`${server.url}/healthz`);
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { status: "ok" });
  });

  test("/readyz pings the database; an unreachable database makes it 503", async () => {
    const ready = await fetch(`${server.url}/readyz`);
    assert.equal(ready.status, 200);
    assert.equal(((await ready.json()) as { database: { ok: boolean } }).database.ok, true);
    const deadPool = createPool({ url: "postgres://nobody@127.0.0.1:1/none", connectTimeoutMs: 1_000 });
    const dead = await startStatusServer({ pool: deadPool, readyTimeoutMs: 3_000 });
    try {
      const response = await fetch(`${dead.url}/readyz`);
      assert.equal(response.status, 503);
      const body = (await response.json()) as { status: string; database: { error: string } };
      assert.equal(body.status, "not ready");
      assert.match(body.database.error, /ECONNREFUSED|connect/);
    } finally {
      await dead.close();
      await deadPool.end();
    }
  });

  test("/status reports per cutover the phase, write and read targets, and the pool state", async () => {
    await store.put("a", { n: 1 });
    await store.get("a");
    const response = await fetch(`${server.url}/status`);
    assert.equal(response.status, 200);
    const body = (await response.json()) as StatusReport;
    assert.equal(body.cutovers.length, 1);
    const cutover = body.cutovers[0]!;
    assert.equal(cutover.name, "accounts");
    assert.equal(cutover.phase, "ramp:25");
    assert.deepEqual(cutover.writeTargets, [
      { side: "legacy", label: "memory", authoritative: true },
      { side: "next", label: "postgres public.kv", authoritative: false },
    ]);
    assert.deepEqual(cutover.readTargets, [
      { side: "legacy", label: "memory", percent: 75 },
      { side: "next", label: "postgres public.kv", percent: 25 },
    ]);
    for (const field of ["totalCount", "idleCount", "waitingCount"]) {
      assert.equal(typeof cutover.pool[field as keyof PoolState], "number", field);
      assert.equal(typeof body.database.pool[field as keyof PoolState], "number", field);
    }
    assert.ok(cutover.pool.totalCount >= 1);
    assert.doesNotMatch(JSON.stringify(body), /password/);
  });

  test("/metrics is Prometheus text with phase, calls, shadow outcomes and latency quantiles", async () => {
    const response = await fetch(`${server.url}/metrics`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    assert.match(text, /^# TYPE pgshift_cutover_phase gauge$/m);
    assert.match(text, /^pgshift_cutover_phase\{cutover="accounts",phase="ramp:25",source="database"\} 3$/m);
    assert.match(text, /^pgshift_cutover_ramp_percent\{cutover="accounts"\} 25$/m);
    assert.match(text, /^pgshift_cutover_calls_total\{cutover="accounts",kind="writes"\} [1-9]\d*$/m);
    assert.match(
      text,
      /^pgshift_cutover_write_seconds\{cutover="accounts",side="next",quantile="0\.99"\} [\d.e-]+$/m,
    );
    assert.match(text, /^pgshift_cutover_write_seconds_sum\{cutover="accounts",side="next"\} [\d.e-]+$/m);
    assert.match(text, /^pgshift_cutover_write_seconds_count\{cutover="accounts",side="next"\} [1-9]\d*$/m);
    assert.match(text, /^pgshift_pool_connections\{state="total"\} \d+$/m);
    assert.match(text, /^pgshift_cutover_listener_up\{cutover="accounts"\} 1$/m);
  });

  test("unknown paths are 404 and other methods 405", async () => {
    assert.equal((await fetch(`${server.url}/nope`)).status, 404);
    assert.equal((await fetch(`${server.url}/status`, { method: "POST" })).status, 405);
  });
});

import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import type pg from "pg";
import {
  destroyLocalInstance,
  localInstanceUrl,
  startLocalInstance,
  stopLocalInstance,
} from "../../../src/local/instance.ts";
import { createPool } from "../../../src/pg/pool.ts";
import { type HealthServer, startHealthServer } from "../../../src/serve/index.ts";
import { testBinaries } from "../../helpers/binaries.ts";

/** A private instance this test stops and starts again: the shared test server must stay up. */
const instance = {
  name: `health-${process.pid}`,
  baseDir: join(tmpdir(), "pgshift-health"),
  ephemeral: true,
  binaries: testBinaries(),
};
let pool: pg.Pool;
let health: HealthServer;

async function get(path: string): Promise<{ status: number; body: string; type: string }> {
  const response = await fetch(`${health.url}${path}`);
  return {
    status: response.status,
    body: await response.text(),
    type: response.headers.get("content-type") ?? "",
  };
}

/** Polls /readyz until it answers `status`; returns the milliseconds that took. */
async function readyzBecomes(status: number, withinMs: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    const answer = await get("/readyz");
    if (answer.status === status) return Date.now() - started;
    if (Date.now() - started > withinMs)
      assert.fail(`/readyz still ${answer.status} after ${withinMs} ms: ${answer.body}`);
    await sleep(50);
  }
}

describe("health server: /livez, /readyz, /status, /metrics over a database that stops and comes back", () => {
  before(async () => {
    await startLocalInstance(instance);
    pool = createPool({ url: localInstanceUrl(instance), max: 4, connectTimeoutMs: 1_000 });
    health = await startHealthServer({ pool, readyTimeoutMs: 500 });
  });

  after(async () => {
    await health?.close();
    await pool?.end().catch(() => undefined);
    await destroyLocalInstance(instance).catch(() => undefined);
    rmSync(instance.baseDir, { recursive: true, force: true });
  });

  it("reports ready, the checks in health+json, and Prometheus metrics", async () => {
    const ready = await get("/readyz");
    assert.equal(ready.status, 200, ready.body);
    assert.equal(JSON.parse(ready.body).status, "pass");

    health.addCheck({
      name: "migrations:applied",
      async run() {
        return { status: "pass", observedValue: 3, observedUnit: "migrations" };
      },
    });
    const status = await get("/status");
    assert.equal(status.status, 200);
    assert.match(status.type, /application\/health\+json/);
    const report = JSON.parse(status.body);
    assert.equal(report.status, "pass");
    const db = report.checks["database:responseTime"][0];
    assert.equal(db.status, "pass");
    assert.equal(db.observedUnit, "ms");
    assert.equal(typeof db.observedValue, "number");
    assert.ok(!Number.isNaN(Date.parse(db.time)));
    assert.deepEqual(
      { ...report.checks["migrations:applied"][0], time: undefined, durationMs: undefined },
      {
        status: "pass",
        observedValue: 3,
        observedUnit: "migrations",
        ready: true,
        time: undefined,
        durationMs: undefined,
      },
    );

    await pool.query("select 1");
    health.observeOperation("select", 0.002);
    health.addMetrics(() => [
      { name: "pgshift_test_things_total", help: "Things", type: "counter", samples: [{ value: 7 }] },
    ]);
    const metrics = await get("/metrics");
    assert.equal(metrics.status, 200);
    const text = metrics.body;
    assert.match(text, /^pg_up 1$/m);
    assert.match(text, /^db_client_connection_count\{state="idle"\} \d+$/m);
    assert.match(text, /^db_client_connection_pending_requests 0$/m);
    // createPool's own counters and breaker state
    assert.match(text, /^pgshift_pool_breaker_state\{state="closed"\} 1$/m);
    assert.match(text, /^pgshift_pool_breaker_state\{state="open"\} 0$/m);
    assert.match(text, /^pgshift_pool_connect_failures_total 0$/m);
    assert.match(text, /^pgshift_pool_connect_attempts_total [1-9]\d*$/m);
    assert.match(text, /^# TYPE db_client_operation_duration_seconds histogram$/m);
    assert.match(
      text,
      /^db_client_operation_duration_seconds_bucket\{operation="select",outcome="ok",le="0.005"\} 1$/m,
    );
    assert.match(text, /^db_client_operation_duration_seconds_count\{operation="select",outcome="ok"\} 1$/m);
    assert.match(text, /^pg_stat_database_xact_commit_total\{datname="postgres"\} [1-9]\d*$/m);
    assert.match(text, /^pg_stat_activity_count\{datname="postgres",state="idle in transaction"\} 0$/m);
    assert.match(text, /^pg_stat_activity_max_tx_duration_seconds\{datname="postgres"\} [\d.]+$/m);
    assert.match(text, /^pgshift_test_things_total 7$/m);
  });

  it("/readyz turns 503 naming the database within 2 s of it stopping, /livez stays 200, and 200 once it is back", async () => {
    await stopLocalInstance(instance);
    const downAfterMs = await readyzBecomes(503, 2_000);
    const down = await get("/readyz");
    assert.equal(down.status, 503);
    const body = JSON.parse(down.body);
    assert.equal(body.status, "fail");
    assert.deepEqual(
      body.failing.map((f: { name: string }) => f.name),
      ["database:responseTime"],
    );
    assert.equal((await get("/livez")).status, 200);
    const metrics = await get("/metrics");
    assert.match(metrics.body, /^pg_up 0$/m);
    assert.doesNotMatch(metrics.body, /pg_stat_database_/);

    await startLocalInstance(instance);
    const upAfterMs = await readyzBecomes(200, 5_000);
    assert.equal(JSON.parse((await get("/readyz")).body).status, "pass");
    // figures for the report; the bounds are asserted by readyzBecomes
    process.stdout.write(`# readyz 503 after ${downAfterMs} ms down, 200 after ${upAfterMs} ms up\n`);
  });
});

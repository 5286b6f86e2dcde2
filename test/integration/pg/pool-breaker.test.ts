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
import { CircuitOpenError } from "../../../src/pg/circuit-breaker.ts";
import { createPool, describeTarget, poolMetricsOf, withClient } from "../../../src/pg/pool.ts";
import { poolFamilies, POOL_METRICS } from "../../../src/serve/pool-metrics.ts";
import { testBinaries } from "../../helpers/binaries.ts";

/** A private instance this test stops and starts again: the shared test server must stay up. */
const instance = {
  name: `breaker-${process.pid}`,
  baseDir: join(tmpdir(), "pgshift-breaker"),
  ephemeral: true,
  binaries: testBinaries(),
};
const COOL_DOWN_MS = 1_000;
const CONNECT_TIMEOUT_MS = 3_000;
const CALLERS = 20;
let pool: pg.Pool;

interface Outcomes {
  ok: number;
  open: number;
  other: string[];
  slowestMs: number;
}

/** CALLERS loops each running `select 1` back to back until `stop` says so. */
async function hammer(stop: () => boolean): Promise<Outcomes> {
  const outcomes: Outcomes = { ok: 0, open: 0, other: [], slowestMs: 0 };
  await Promise.all(
    Array.from({ length: CALLERS }, async () => {
      while (!stop()) {
        const started = performance.now();
        try {
          await pool.query("select 1");
          outcomes.ok += 1;
        } catch (error) {
          if (error instanceof CircuitOpenError) outcomes.open += 1;
          else outcomes.other.push(String((error as Error).message ?? error));
        }
        outcomes.slowestMs = Math.max(outcomes.slowestMs, performance.now() - started);
        await sleep(1); // a macrotask between calls, as real callers have
      }
    }),
  );
  return outcomes;
}

describe("createPool's circuit breaker over a database that stops and comes back", () => {
  before(async () => {
    await startLocalInstance(instance);
    pool = createPool({
      url: localInstanceUrl(instance),
      max: 4,
      connectTimeoutMs: CONNECT_TIMEOUT_MS,
      breaker: { failureThreshold: 3, coolDownMs: COOL_DOWN_MS },
    });
  });

  after(async () => {
    await pool?.end().catch(() => undefined);
    await destroyLocalInstance(instance).catch(() => undefined);
    rmSync(instance.baseDir, { recursive: true, force: true });
  });

  it("serves queries while the database is up", async () => {
    const deadline = Date.now() + 300;
    const up = await hammer(() => Date.now() > deadline);
    assert.ok(up.ok > 0);
    assert.equal(up.open, 0);
    assert.deepEqual(up.other, []);
    const m = poolMetricsOf(pool)!;
    assert.equal(m.state, "closed");
    assert.equal(m.connectFailures, 0);
    assert.ok(m.connectAttempts >= 1 && m.connectAttempts <= 4, `${m.connectAttempts} connections opened`);
  });

  it("during an outage: few connection attempts, callers fail fast, recovery after a cool-down and a probe", async () => {
    const before = poolMetricsOf(pool)!;
    await stopLocalInstance(instance);
    const outageStarted = performance.now();
    const outageMs = 4_000;
    const down = await hammer(() => performance.now() - outageStarted > outageMs);
    const elapsedS = (performance.now() - outageStarted) / 1000;
    const during = poolMetricsOf(pool)!;
    const attempts = during.connectAttempts - before.connectAttempts;
    const rate = attempts / elapsedS;
    process.stderr.write(
      `outage ${elapsedS.toFixed(1)} s: ${attempts} connection attempts (${rate.toFixed(1)}/s), ` +
        `${down.open} fast failures, ${down.other.length} other failures, slowest call ${down.slowestMs.toFixed(0)} ms, ` +
        `breaker opened ${during.opened - before.opened} times\n`,
    );
    assert.ok(rate < 10, `${attempts} connection attempts in ${elapsedS.toFixed(1)} s`);
    assert.equal(down.ok, 0);
    assert.ok(down.open > down.other.length * 10, `${down.open} fast failures, ${down.other.length} others`);
    // no caller waited for a connect timeout
    assert.ok(down.slowestMs < CONNECT_TIMEOUT_MS, `slowest call ${down.slowestMs} ms`);
    assert.ok(during.opened - before.opened >= 1);
    assert.ok(during.rejected - before.rejected >= down.open);

    const target = describeTarget(localInstanceUrl(instance));
    const refused = await withClient(pool, async () => "connected").catch((error: unknown) => error);
    assert.ok(refused instanceof CircuitOpenError, String(refused));
    assert.equal(refused.code, "circuit_open");
    assert.match(refused.message, new RegExp(`${target.host}:${target.port}`));
    assert.ok(refused.nextProbeAt.getTime() > Date.now() - COOL_DOWN_MS);

    const now = poolMetricsOf(pool)!;
    assert.ok(now.state === "open" || now.state === "half-open", now.state);
    const families = poolFamilies(pool);
    const state = families.find((f) => f.name === POOL_METRICS.state)!;
    assert.deepEqual(
      state.samples.filter((s) => s.value === 1).map((s) => s.labels),
      [{ state: now.state }],
    );
    const attemptsFamily = families.find((f) => f.name === POOL_METRICS.attempts)!;
    assert.equal(attemptsFamily.samples[0]!.value, now.connectAttempts);

    // With the breaker and retries disabled, each checkout is one connection attempt that fails as pg says.
    const plain = createPool({ url: localInstanceUrl(instance), breaker: false, retry: false });
    try {
      const error = await plain.query("select 1").catch((e: unknown) => e);
      assert.ok(!(error instanceof CircuitOpenError));
      assert.equal((error as { code?: string }).code, "ECONNREFUSED");
      assert.equal(poolMetricsOf(plain)!.connectAttempts, 1);
      assert.equal(poolMetricsOf(plain)!.state, "closed");
    } finally {
      await plain.end();
    }

    await startLocalInstance(instance);
    const backStarted = performance.now();
    let recoveredMs: number | undefined;
    while (recoveredMs === undefined && performance.now() - backStarted < COOL_DOWN_MS + CONNECT_TIMEOUT_MS) {
      const answer = await pool.query("select 1 as one").catch(() => undefined);
      if (answer?.rows[0]?.one === 1) recoveredMs = performance.now() - backStarted;
      else await sleep(20);
    }
    process.stderr.write(`recovered ${recoveredMs?.toFixed(0)} ms after the server came back\n`);
    assert.ok(recoveredMs !== undefined, "the pool did not recover within the cool-down plus a probe");
    assert.equal(poolMetricsOf(pool)!.state, "closed");
    const backDeadline = Date.now() + 200;
    const after = await hammer(() => Date.now() > backDeadline);
    assert.equal(after.open, 0);
    assert.ok(after.ok > 0);
  });
});

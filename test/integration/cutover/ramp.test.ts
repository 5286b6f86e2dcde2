import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  type CutoverStore,
  type RampPolicy,
  createCutover,
  cutoverHistory,
  readCutover,
  readRampState,
  resumeRamp,
} from "../../../src/cutover/index.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import { eventually, type KvStore, MemoryKv, PgKv, kvCutover } from "./kv-stores.ts";

const db = useTestDatabase("cutover_ramp");

/** A clock the test moves by hand: a day passes in one statement. */
class ManualClock {
  ms = Date.UTC(2026, 0, 1);
  now = () => this.ms;
  pass(hours: number) {
    this.ms += hours * 3_600_000;
  }
}

const HOUR = 3_600_000;
const KEYS = Array.from({ length: 40 }, (_, i) => `k${i}`);

describe("automatic ramp with guardrails", () => {
  const clock = new ManualClock();
  let legacy: MemoryKv;
  let next: PgKv;
  let store: CutoverStore<KvStore>;
  let policy: RampPolicy;

  /** `calls` reads spread over KEYS; the first `failing` of them fail on the serving side (injected). */
  async function traffic(calls: number, failing = 0): Promise<void> {
    for (let i = 0; i < calls; i++) {
      const fail = i < failing;
      legacy.faults.failReads = fail;
      next.faults.failReads = fail;
      await store.get(KEYS[i % KEYS.length]!).catch(() => undefined);
    }
    legacy.faults.failReads = false;
    next.faults.failReads = false;
    await store.cutover.shadowsSettled();
    clock.pass(0.01); // the traffic took a while
    await store.cutover.reportHealth();
  }

  before(async () => {
    legacy = new MemoryKv();
    next = new PgKv(db().pool, "kv_ramp");
    await next.ensure();
    store = await kvCutover(
      db().pool,
      "ramped",
      { legacy, next },
      {
        initialPhase: "dual-write",
        shadow: { recheckDelayMs: 0 },
        clock: clock.now,
        env: {},
      },
    );
    for (const key of KEYS) await store.put(key, { key, n: 1 });
    await store.cutover.setPhase("shadow");
    await store.cutover.reportHealth(); // the backfill's writes are not part of the first window
    policy = await store.cutover.autoRamp({
      steps: [`ramp:50`, "ramp:100", "next-primary"],
      every: "24h",
      healthy: { minCalls: 100 },
      tickMs: 0,
    });
  });

  after(async () => {
    await policy.stop();
    await store.cutover.close();
  });

  test("a healthy window holds until `every` has passed, then advances one step with the figures", async () => {
    await traffic(200, 1); // 0.5 % errors: below the 1 % threshold
    clock.pass(1);
    const early = await policy.tick();
    assert.equal(early.action, "hold");
    assert.match(early.reason, /healthy; \d+ s until ramp:50/);
    assert.equal((await readCutover(db().pool, "ramped"))!.phase, "shadow");

    clock.pass(23);
    const decision = await policy.tick();
    assert.equal(decision.action, "advance");
    assert.equal(decision.to, "ramp:50");
    assert.equal(decision.figures!.calls, 200);
    assert.equal(decision.figures!.errors.legacy, 1);
    const row = await readCutover(db().pool, "ramped");
    assert.equal(row!.phase, "ramp:50");
    assert.match(
      row!.reason!,
      /^auto: advance to ramp:50: healthy for 864\d\d s \(200 calls, errors 0\.50 %/,
    );
    const last = (await cutoverHistory(db().pool, "ramped")).at(-1)!;
    assert.equal(last.to, "ramp:50");
    assert.equal((last.figures as { calls: number }).calls, 200);
    assert.ok(await eventually(() => store.cutover.phase === "ramp:50"));
  });

  test("a window with too few calls holds, however long it lasted", async () => {
    await traffic(30);
    clock.pass(48);
    const decision = await policy.tick();
    assert.equal(decision.action, "hold");
    assert.match(decision.reason, /too few calls to judge: 30 < 100/);
    assert.equal((await readCutover(db().pool, "ramped"))!.phase, "ramp:50");
  });

  test("an error rate over 1 % rolls back to the configured phase and pauses the ramp", async () => {
    await traffic(200, 5); // 30 earlier calls + 200 in this window, 5 failed: 2.17 %
    clock.pass(1);
    const decision = await policy.tick();
    assert.equal(decision.action, "rollback");
    assert.equal(decision.to, "shadow");
    assert.match(decision.reason, /^auto: rollback to shadow: error rate 2\.17 % > 1\.00 %/);
    assert.equal((await readCutover(db().pool, "ramped"))!.phase, "shadow");
    const state = await readRampState(db().pool, "ramped");
    assert.equal(state!.state, "paused");
    assert.match(state!.pausedReason!, /rolled back: error rate/);
    // Paused: even a perfect window does not move it.
    await traffic(200);
    clock.pass(30);
    assert.equal((await policy.tick()).action, "paused");
    assert.equal((await readCutover(db().pool, "ramped"))!.phase, "shadow");
  });

  test("a manual phase change pauses the policy until it is resumed", async () => {
    await resumeRamp(db().pool, "ramped", clock.now());
    await traffic(200);
    clock.pass(25);
    assert.equal((await policy.tick()).action, "advance");
    await store.cutover.setPhase("ramp:100", { reason: "operator" });
    await traffic(200);
    clock.pass(25);
    const paused = await policy.tick();
    assert.equal(paused.action, "paused");
    assert.match(paused.reason, /ramp:100 was set by .* \(operator\), not by the ramp/);
    assert.equal((await readCutover(db().pool, "ramped"))!.phase, "ramp:100");

    await resumeRamp(db().pool, "ramped", clock.now());
    await traffic(200);
    clock.pass(25);
    const resumed = await policy.tick();
    assert.equal(resumed.action, "advance");
    assert.equal(resumed.to, "next-primary");
  });

  test("shadow mismatches over the threshold roll back", async () => {
    // next-primary serves reads from next and shadows them on legacy; 4 of 40 keys diverge in legacy.
    for (const key of KEYS.slice(0, 4)) legacy.map.set(key, { key, n: 999 });
    await traffic(200);
    clock.pass(1);
    const decision = await policy.tick();
    assert.equal(decision.action, "rollback");
    assert.match(decision.reason, /shadow mismatch rate 10\.00 % > 0\.10 % \(20 of 200\)/);
    assert.equal((await readCutover(db().pool, "ramped"))!.phase, "shadow");
  });
});

describe("ramp leader election", () => {
  const clock = new ManualClock();
  const stores: CutoverStore<KvStore>[] = [];
  const policies: RampPolicy[] = [];

  before(async () => {
    const next = new PgKv(db().pool, "kv_leader");
    await next.ensure();
    for (let i = 0; i < 2; i++) {
      const store = await createCutover<KvStore>({
        name: "led",
        pool: db().pool,
        legacy: new MemoryKv(),
        next,
        reads: ["get"],
        writes: ["put"],
        initialPhase: "shadow",
        reportIntervalMs: 0,
        clock: clock.now,
        env: {},
      });
      stores.push(store);
      policies.push(
        await store.cutover.autoRamp({ steps: 50, every: 24 * HOUR, healthy: { minCalls: 10 }, tickMs: 0 }),
      );
    }
  });

  after(async () => {
    for (const policy of policies) await policy.stop();
    for (const store of stores) await store.cutover.close();
  });

  test("one instance leads; when its session dies another takes over and keeps ramping", async () => {
    const [a, b] = policies as [RampPolicy, RampPolicy];
    assert.notEqual((await a.tick()).action, "standby");
    assert.equal(a.isLeader, true);
    const standby = await b.tick();
    assert.equal(standby.action, "standby");
    assert.equal(b.isLeader, false);

    // Both instances report; the window holds the calls of both.
    for (const store of stores) {
      for (let i = 0; i < 10; i++) await store.get(`k${i}`);
      await store.cutover.shadowsSettled();
      clock.pass(0.01);
      await store.cutover.reportHealth();
    }
    await db().pool.query("select pg_terminate_backend($1)", [a.leaderPid]);
    let taken = standby;
    assert.ok(
      await eventually(async () => {
        clock.pass(25);
        taken = await b.tick();
        return taken.action !== "standby";
      }),
      "the second instance takes the lock after the first one's session died",
    );
    assert.equal(b.isLeader, true);
    assert.equal(taken.action, "advance");
    assert.equal(taken.to, "ramp:50");
    assert.equal(taken.figures!.calls, 20);
    assert.equal(taken.figures!.instances, 2);
    assert.equal((await a.tick()).action, "standby");
    assert.equal(a.isLeader, false);
  });
});

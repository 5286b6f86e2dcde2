import assert from "node:assert/strict";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  type CutoverPhase,
  type CutoverStore,
  createCutover,
  cutoverVerifyReport,
  repairCounts,
} from "../../../src/cutover/index.ts";
import { PgshiftError } from "../../../src/errors.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import { eventually, type KvStore, MemoryKv, PgKv, kvCutover } from "./kv-stores.ts";

const db = useTestDatabase("cutover_failures");

const PHASES: CutoverPhase[] = [
  "legacy-only",
  "dual-write",
  "shadow",
  "ramp:50",
  "next-primary",
  "next-only",
];

/** What a failing side means for a write in each phase. */
function writeOutcome(phase: CutoverPhase, failing: "legacy" | "next"): "fails" | "ledger" | "unaffected" {
  const writes: Record<string, string[]> = {
    "legacy-only": ["legacy"],
    "dual-write": ["legacy", "next"],
    shadow: ["legacy", "next"],
    "ramp:50": ["legacy", "next"],
    "next-primary": ["next", "legacy"],
    "next-only": ["next"],
  };
  const sides = writes[phase]!;
  if (sides[0] === failing) return "fails";
  return sides.includes(failing) ? "ledger" : "unaffected";
}

async function pending(name: string): Promise<number> {
  const counts = await repairCounts(db().pool, name);
  return counts.pendingLegacy + counts.pendingNext;
}

describe("failures on each side in each phase", () => {
  let legacy: MemoryKv;
  let next: PgKv;
  let store: CutoverStore<KvStore>;

  before(async () => {
    legacy = new MemoryKv();
    next = new PgKv(db().pool, "kv", []);
    await next.ensure();
    store = await kvCutover(db().pool, "kv", { legacy, next });
  });
  after(async () => {
    await store.cutover.close();
  });

  for (const [index, phase] of PHASES.entries()) {
    test(`${phase}: write and read failures on legacy and on next`, async () => {
      // Legacy receives no writes after next-only: its final snapshot comes first.
      if (phase === "next-only")
        await store.cutover.snapshot({ to: join(tmpdir(), `pgshift-failures-${process.pid}.ndjson`) });
      if (index > 0) await store.cutover.setPhase(phase);
      assert.equal(store.cutover.phase, phase);
      for (const failing of ["legacy", "next"] as const) {
        const side = failing === "legacy" ? legacy : next;
        const other = failing === "legacy" ? next : legacy;
        const key = `${phase}-${failing}`;
        const outcome = writeOutcome(phase, failing);
        const ledgerBefore = await pending("kv");

        side.faults.failWrites = true;
        try {
          if (outcome === "fails") {
            await assert.rejects(store.put(key, { phase, failing }), /unavailable \(injected\)/);
            // The authoritative side failed first, so the other side was not written either.
            assert.equal(await other.get(key), undefined, `${key}: no half-done write on the other side`);
          } else {
            await store.put(key, { phase, failing });
          }
        } finally {
          side.faults.failWrites = false;
        }
        assert.equal(await pending("kv"), ledgerBefore + (outcome === "ledger" ? 1 : 0), `${key}: ledger`);

        // A read fails the call only when the failing side serves it; as shadow it is counted.
        const readKey = `${phase}-read`;
        await store.put(readKey, { phase });
        const served = store.cutover.status().readTargets;
        const serving = served.length === 1 ? served[0]!.side : undefined;
        const errorsBefore = store.cutover.metrics().shadow.errors;
        side.faults.failReads = true;
        try {
          if (serving === failing) await assert.rejects(store.get(readKey), /unavailable/);
          else if (serving !== undefined) {
            assert.deepEqual(await store.get(readKey), { phase });
            if (store.cutover.metrics().routing.shadow)
              assert.ok(await eventually(() => store.cutover.metrics().shadow.errors === errorsBefore + 1));
          }
        } finally {
          side.faults.failReads = false;
        }
      }
      // The repairer closes every divergence recorded in this phase before the next phase change.
      const result = await store.cutover.repair();
      assert.equal(result.pending, 0);
      assert.equal(result.failed, 0);
      for (const failing of ["legacy", "next"]) {
        const key = `${phase}-${failing}`;
        if (writeOutcome(phase, failing as "legacy" | "next") === "ledger")
          assert.deepEqual(await legacy.get(key), await next.get(key), `${key} repaired`);
      }
    });
  }

  test("a genuine PostgreSQL failure (CHECK violation) on next is recorded and repaired once fixed", async () => {
    await store.cutover.setPhase("dual-write", { force: true });
    await store.put("poisoned", { poison: true, n: 1 });
    assert.deepEqual(await legacy.get("poisoned"), { poison: true, n: 1 });
    assert.equal(await next.get("poisoned"), undefined);
    const { rows } = await db().pool.query(
      "select side, method, args, key, error, status from pgshift.cutover_repairs where key = 'poisoned'",
    );
    assert.equal(rows.length, 1);
    assert.equal(rows[0].side, "next");
    assert.equal(rows[0].method, "put");
    assert.deepEqual(rows[0].args, ["poisoned", { poison: true, n: 1 }]);
    assert.match(rows[0].error, /check constraint/);
    // Still impossible: the repair fails, stays pending and counts the attempt.
    const failed = await store.cutover.repair();
    assert.equal(failed.failed, 1);
    assert.equal(failed.pending, 1);
    const report = await cutoverVerifyReport(db().pool, "kv");
    assert.equal(report.verdict, "divergent");
    // Shadow only compares against next, but serving reads from next while it is behind is refused.
    await store.cutover.setPhase("shadow");
    await assert.rejects(
      store.cutover.setPhase("ramp:10"),
      /1 write\(s\) to next are waiting in the repair ledger/,
    );
    assert.equal(store.cutover.phase, "shadow");
    await db().pool.query("alter table kv drop constraint kv_value_check");
    const fixed = await store.cutover.repair();
    assert.equal(fixed.repaired, 1);
    assert.equal(fixed.pending, 0);
    assert.deepEqual(await next.get("poisoned"), { poison: true, n: 1 });
    const attempts = await db().pool.query(
      "select attempts, status from pgshift.cutover_repairs where key = 'poisoned'",
    );
    assert.deepEqual(attempts.rows[0], { attempts: 2, status: "repaired" });
  });

  test("the repairer closes every divergence, in sync mode even when later writes raced the failure", async () => {
    await store.cutover.setPhase("dual-write", { force: true });
    next.faults.failWrites = true;
    for (let i = 0; i < 30; i++) await store.put(`burst-${i % 10}`, { i });
    await store.delete("burst-3");
    next.faults.failWrites = false;
    // A later successful write to a key that has a pending repair.
    await store.put("burst-5", { i: 999 });
    assert.equal(await pending("kv"), 31);
    const result = await store.cutover.repair();
    assert.equal(result.mode, "sync");
    assert.equal(result.pending, 0);
    for (let i = 0; i < 10; i++)
      assert.deepEqual(await next.get(`burst-${i}`), await legacy.get(`burst-${i}`), `burst-${i}`);
    assert.equal(await next.get("burst-3"), undefined);
    assert.deepEqual(await next.get("burst-5"), { i: 999 });
    const burstKeys = Array.from({ length: 10 }, (_, i) => `burst-${i}`);
    const verified = await store.cutover.verify({ keys: burstKeys });
    assert.deepEqual([verified.mode, verified.keysChecked, verified.mismatched], ["keys", 10, 0]);
    // The whole store still differs where no dual-write happened: legacy-only writes never reached
    // next, next-only writes never reached legacy. The verifier names exactly those keys.
    const full = await store.cutover.verify();
    assert.deepEqual(full.samples.map((s) => [s.key, s.kind]).sort(), [
      ["legacy-only-next", "missing-in-next"],
      ["legacy-only-read", "missing-in-next"],
      ["next-only-legacy", "missing-in-legacy"],
      ["next-only-read", "missing-in-legacy"],
    ]);
    assert.equal((await cutoverVerifyReport(db().pool, "kv")).verdict, "divergent");
    // verify({ repair: true }) copies the authoritative side (legacy in dual-write) over each one.
    const repaired = await store.cutover.verify({ repair: true });
    assert.equal(repaired.repaired, 4);
    const clean = await store.cutover.verify();
    assert.equal(clean.mismatched, 0);
    assert.equal((await cutoverVerifyReport(db().pool, "kv")).verdict, "consistent");
  });

  test("when the ledger itself cannot be written, entries wait in memory, are retried, and are never dropped", async () => {
    await store.cutover.setPhase("dual-write", { force: true });
    await db().pool.query("alter table pgshift.cutover_repairs rename to cutover_repairs_away");
    next.faults.failWrites = true;
    try {
      await store.put("unledgered", { n: 1 });
    } finally {
      next.faults.failWrites = false;
    }
    assert.equal(store.cutover.metrics().repairs.backlog, 1);
    await db().pool.query("alter table pgshift.cutover_repairs_away rename to cutover_repairs");
    assert.ok(await eventually(() => store.cutover.metrics().repairs.backlog === 0, 5_000));
    const { rows } = await db().pool.query(
      "select side, key, status from pgshift.cutover_repairs where key = 'unledgered'",
    );
    assert.deepEqual(rows, [{ side: "next", key: "unledgered", status: "pending" }]);
    assert.equal((await store.cutover.repair()).pending, 0);

    // Closing while PostgreSQL still refuses the entries hands them over in the error.
    const other = await createCutover<KvStore>({
      name: "kv_closing",
      pool: db().pool,
      legacy: new MemoryKv(),
      next: new PgKv(db().pool, "kv"),
      reads: ["get"],
      writes: ["put"],
      reportIntervalMs: 0,
      initialPhase: "dual-write",
    });
    (other.cutover.next as PgKv).faults.failWrites = true;
    await db().pool.query("alter table pgshift.cutover_repairs rename to cutover_repairs_away");
    try {
      await other.put("lost?", { n: 2 });
      await assert.rejects(other.cutover.close(), (error: unknown) => {
        assert.ok(error instanceof PgshiftError);
        assert.equal(error.code, "repair_ledger_unrecorded");
        const entries = error.details.entries as { key: string; side: string; method: string }[];
        assert.deepEqual(
          entries.map((e) => [e.key, e.side, e.method]),
          [["lost?", "next", "put"]],
        );
        return true;
      });
    } finally {
      await db().pool.query("alter table pgshift.cutover_repairs_away rename to cutover_repairs");
    }
  });

  test("without keyAccess the repairer replays recorded calls in order and never breaks that order", async () => {
    const replayLegacy = new MemoryKv();
    const replayNext = new PgKv(db().pool, "kv_replay");
    await replayNext.ensure();
    const replay = await createCutover<KvStore>({
      name: "kv_replay",
      pool: db().pool,
      legacy: replayLegacy,
      next: replayNext,
      reads: ["get"],
      writes: ["put", "delete"],
      reportIntervalMs: 0,
      initialPhase: "dual-write",
    });
    try {
      replayNext.faults.failWrites = true;
      await replay.put("a", { v: 1 });
      await replay.put("a", { v: 2 });
      await replay.put("b", { v: 1 });
      await replay.delete("b");
      replayNext.faults.failWrites = false;
      // While next still fails, nothing is closed and order is kept: the second entry for "a" waits.
      replayNext.faults.failWrites = true;
      const blocked = await replay.cutover.repair();
      assert.deepEqual([blocked.failed, blocked.deferred, blocked.repaired, blocked.pending], [2, 2, 0, 4]);
      replayNext.faults.failWrites = false;
      const done = await replay.cutover.repair();
      assert.equal(done.mode, "replay");
      assert.deepEqual([done.repaired, done.pending], [4, 0]);
      assert.deepEqual(await replayNext.get("a"), { v: 2 });
      assert.equal(await replayNext.get("b"), undefined);
      // Idempotent: a second run finds nothing to do.
      const again = await replay.cutover.repair();
      assert.deepEqual([again.examined, again.repaired, again.pending], [0, 0, 0]);
    } finally {
      await replay.cutover.close();
    }
  });
});

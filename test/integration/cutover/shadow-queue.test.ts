import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { type CutoverStore, createCutover } from "../../../src/cutover/index.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import { type Doc, type KvStore, MemoryKv, PgKv } from "./kv-stores.ts";

const db = useTestDatabase("cutover_shadow_queue");

/** The PostgreSQL store, with reads held at a gate the test opens: a slow next side. */
class GatedPgKv extends PgKv {
  readsDone = 0;
  private gate: Promise<void> = Promise.resolve();
  private openGate: () => void = () => undefined;

  close(): void {
    this.gate = new Promise((resolve) => (this.openGate = resolve));
  }

  open(): void {
    this.openGate();
  }

  override async get(key: string): Promise<Doc | undefined> {
    await this.gate;
    const value = await super.get(key);
    this.readsDone++;
    return value;
  }
}

describe("shadow reads run from a bounded queue, off the caller's path", () => {
  let legacy: MemoryKv;
  let next: GatedPgKv;
  let store: CutoverStore<KvStore>;

  before(async () => {
    legacy = new MemoryKv();
    next = new GatedPgKv(db().pool, "kv_queue");
    await next.ensure();
    store = await createCutover<KvStore>({
      name: "kv_queue",
      pool: db().pool,
      legacy,
      next,
      reads: ["get"],
      writes: ["put", "delete"],
      reportIntervalMs: 0,
      initialPhase: "dual-write",
      shadow: { maxInFlight: 4, recheckDelayMs: 10 },
    });
    for (let i = 0; i < 10; i++) await store.put(`k${i}`, { i, status: "open" });
    // k3 differs on next only: a divergence the shadow comparison must find.
    await next.put("k3", { i: 3, status: "done" });
    await store.cutover.setPhase("shadow");
  });
  after(async () => {
    next.open();
    await store.cutover.close();
  });

  test("with next stalled, callers get legacy results; beyond the bound reads are skipped and counted", async () => {
    next.close();
    const before = store.cutover.metrics().shadow;
    const values = await Promise.all(Array.from({ length: 10 }, (_, i) => store.get(`k${i}`)));
    assert.deepEqual(
      values,
      Array.from({ length: 10 }, (_, i) => ({ i, status: "open" })),
    );
    // Let the queue drain into the stalled side: the callers above did not wait for any of it.
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(next.readsDone, 0, "no shadow read finished while next is stalled");
    const stalled = store.cutover.metrics().shadow;
    assert.equal(stalled.started - before.started, 4, "maxInFlight shadow reads started");
    assert.equal(stalled.skipped - before.skipped, 6, "the rest skipped, not queued");
    // Still full: another read is skipped at once, and still answered.
    assert.deepEqual(await store.get("k9"), { i: 9, status: "open" });
    assert.equal(store.cutover.metrics().shadow.skipped - before.skipped, 7);

    next.open();
    await store.cutover.shadowsSettled();
    const settled = store.cutover.metrics().shadow;
    // k0..k3 were the four started; k3 differs on next.
    assert.equal(settled.matched - before.matched, 3);
    assert.equal(settled.mismatched - before.mismatched, 1);
    const sample = store.cutover.status().shadowSamples.mismatches.at(-1)!;
    assert.equal(sample.key, "k3");
    assert.deepEqual(sample.diff, [{ path: "/status", legacy: "open", next: "done" }]);
    assert.equal(store.cutover.metrics().sides.next.shadowReads.count, 4);
  });

  test("once the queue has drained, reads are shadowed again", async () => {
    const before = store.cutover.metrics().shadow;
    for (let i = 4; i < 10; i++) {
      await store.get(`k${i}`);
      // Slots free up as shadow reads finish (not merely as they start).
      await store.cutover.shadowsSettled();
    }
    const after = store.cutover.metrics().shadow;
    assert.equal(after.started - before.started, 6);
    assert.equal(after.skipped - before.skipped, 0);
    assert.equal(after.matched - before.matched, 6);
  });

  test("a caller changing its own copy of the result right away is a race, not a mismatch", async () => {
    const before = store.cutover.metrics().shadow;
    const value = await store.get("k5");
    // The comparison runs after this synchronous continuation: it sees the changed copy, differs,
    // then re-reads both sides, which agree.
    value!.status = "edited by the caller";
    await store.cutover.shadowsSettled();
    const after = store.cutover.metrics().shadow;
    assert.equal(after.mismatched - before.mismatched, 0);
    assert.equal(after.raced - before.raced, 1);
    assert.deepEqual(legacy.map.get("k5"), { i: 5, status: "open" }, "the store's value is untouched");
  });

  test("the comparison leaves the result the caller got unchanged", async () => {
    const value = await store.get("k3");
    const copy = structuredClone(value);
    await store.cutover.shadowsSettled();
    assert.deepEqual(value, copy);
  });
});

describe("a shadow comparison that cannot be made", () => {
  test("a result with a reference cycle counts as a mismatch with a sample, and does not crash", async () => {
    const cyclic: Doc = { key: "c" };
    cyclic.self = cyclic;
    const legacy = new MemoryKv();
    const next = new PgKv(db().pool, "kv_cycle");
    await next.ensure();
    legacy.get = async () => cyclic;
    const store = await createCutover<KvStore>({
      name: "kv_cycle",
      pool: db().pool,
      legacy,
      next,
      reads: ["get"],
      writes: ["put", "delete"],
      reportIntervalMs: 0,
      initialPhase: "shadow",
      shadow: { recheckDelayMs: 0 },
    });
    try {
      assert.equal(await store.get("c"), cyclic);
      await store.cutover.shadowsSettled();
      const { shadow } = store.cutover.metrics();
      assert.deepEqual([shadow.started, shadow.mismatched, shadow.errors], [1, 1, 0]);
      const sample = store.cutover.status().shadowSamples.mismatches[0]!;
      assert.equal(sample.key, "c");
      assert.match(String(sample.legacy), /not comparable: cannot compare a value with a reference cycle/);
      assert.equal(sample.next, null);
    } finally {
      await store.cutover.close();
    }
  });
});

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  type CutoverPhase,
  type CutoverStore,
  createCutover,
  cutoverHistory,
  olderRevision,
  PhaseChangeRefusedError,
  rampBucket,
  readCutover,
} from "../../../src/cutover/index.ts";
import { UsageError } from "../../../src/errors.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import { type KvStore, MemoryKv, PgKv, kvCutover } from "./kv-stores.ts";

const db = useTestDatabase("cutover_phases");

describe("cutover phases", () => {
  const log: string[] = [];
  let legacy: MemoryKv;
  let next: PgKv;
  let store: CutoverStore<KvStore>;

  before(async () => {
    legacy = new MemoryKv(log);
    next = new PgKv(db().pool, "kv", log);
    await next.ensure();
    store = await kvCutover(db().pool, "kv", { legacy, next });
  });
  after(async () => {
    await store.cutover.close();
  });

  /** Writes one key through the cutover and says which sides got it, in call order. */
  async function writeSides(key: string): Promise<string[]> {
    log.length = 0;
    await store.put(key, { key, n: 1 });
    return log.filter((l) => l.endsWith(`:put:${key}`)).map((l) => l.split(":")[0]!);
  }

  /** Puts different values on each side and says which side answered a read. */
  async function readSide(key: string): Promise<"legacy" | "next"> {
    legacy.map.set(key, { side: "legacy" });
    await next.put(key, { side: "next" });
    const value = await store.get(key);
    return value?.side as "legacy" | "next";
  }

  function keyWithBucket(predicate: (bucket: number) => boolean): string {
    for (let i = 0; ; i++) if (predicate(rampBucket(`probe-${i}`))) return `probe-${i}`;
  }

  const expectations: [CutoverPhase, string[], "legacy" | "next", boolean][] = [
    ["legacy-only", ["legacy"], "legacy", false],
    ["dual-write", ["legacy", "next"], "legacy", false],
    ["shadow", ["legacy", "next"], "legacy", true],
    ["next-primary", ["next", "legacy"], "next", true],
    ["next-only", ["next"], "next", false],
  ];

  test("a new cutover starts in legacy-only and is registered with its history", async () => {
    assert.equal(store.cutover.phase, "legacy-only");
    const history = await cutoverHistory(db().pool, "kv");
    assert.deepEqual(
      history.map((h) => [h.from, h.to, h.kind]),
      [[null, "legacy-only", "register"]],
    );
  });

  test("each phase sends writes (authoritative first) and reads to the right sides", async () => {
    for (const [phase, writes, reads, shadows] of expectations) {
      if (phase === "next-primary") {
        // ramp sits between shadow and next-primary; check both halves of a split ramp on the way.
        await store.cutover.setPhase("ramp:50");
        assert.deepEqual(await writeSides("w-ramp"), ["legacy", "next"]);
        const low = keyWithBucket((b) => b < 50);
        const high = keyWithBucket((b) => b >= 50);
        assert.equal(await readSide(low), "next", `bucket ${rampBucket(low)} < 50 reads from next`);
        assert.equal(await readSide(high), "legacy", `bucket ${rampBucket(high)} >= 50 reads from legacy`);
        await store.cutover.setPhase("ramp:100");
        assert.equal(await readSide(high), "next");
      }
      if (phase === "next-only")
        await store.cutover.setPhase(phase, { force: true, reason: "test: no final snapshot needed" });
      else if (phase !== "legacy-only") await store.cutover.setPhase(phase);
      assert.equal(store.cutover.phase, phase);
      assert.deepEqual(await writeSides(`w-${phase}`), writes, `writes in ${phase}`);
      assert.equal(await readSide(`r-${phase}`), reads, `reads in ${phase}`);
      const before = store.cutover.metrics().shadow.started;
      await store.get(`r-${phase}`);
      assert.equal(store.cutover.metrics().shadow.started - before, shadows ? 1 : 0, `shadow in ${phase}`);
    }
  });

  test("shadow reads record matches, mismatches with a diff, and latency per side", async () => {
    await store.cutover.setPhase("next-primary", { force: true, reason: "test setup" });
    await store.cutover.setPhase("ramp:100");
    await store.cutover.setPhase("shadow");
    await store.cutover.shadowsSettled();
    const before = store.cutover.metrics().shadow;
    await store.put("same", { a: 1, b: [1, 2] });
    assert.deepEqual(await store.get("same"), { a: 1, b: [1, 2] });
    legacy.map.set("differs", { a: 1, status: "done" });
    await next.put("differs", { a: 1, status: "open" });
    assert.deepEqual(await store.get("differs"), { a: 1, status: "done" });
    await store.cutover.shadowsSettled();
    const status = store.cutover.status();
    assert.equal(status.shadow.matched - before.matched, 1);
    assert.equal(status.shadow.mismatched - before.mismatched, 1);
    const sample = status.shadowSamples.mismatches.at(-1)!;
    assert.equal(sample.key, "differs");
    assert.deepEqual(sample.diff, [{ path: "/status", legacy: "done", next: "open" }]);
    assert.ok(status.sides.next.shadowReads.count >= 2);
    assert.notEqual(status.sides.next.shadowReads.p50, null);
    assert.notEqual(status.sides.legacy.reads.p99, null);
  });

  test("a ramp serves each key from the same side every time", async () => {
    await store.cutover.setPhase("ramp:30");
    for (let i = 0; i < 20; i++) legacy.map.set(`stable-${i}`, { side: "legacy" });
    for (let i = 0; i < 20; i++) await next.put(`stable-${i}`, { side: "next" });
    const first = await Promise.all(Array.from({ length: 20 }, (_, i) => store.get(`stable-${i}`)));
    for (let round = 0; round < 3; round++) {
      const again = await Promise.all(Array.from({ length: 20 }, (_, i) => store.get(`stable-${i}`)));
      assert.deepEqual(again, first);
    }
    const fromNext = first.filter((v) => v?.side === "next").length;
    assert.equal(
      fromNext,
      Array.from({ length: 20 }, (_, i) => rampBucket(`stable-${i}`) < 30).filter(Boolean).length,
    );
  });

  test("each rollback moves one phase back and routing follows", async () => {
    await store.cutover.setPhase("ramp:100");
    await store.cutover.setPhase("next-primary");
    const steps: [CutoverPhase, string[], "legacy" | "next"][] = [
      ["ramp:100", ["legacy", "next"], "next"],
      ["shadow", ["legacy", "next"], "legacy"],
      ["dual-write", ["legacy", "next"], "legacy"],
      ["legacy-only", ["legacy"], "legacy"],
    ];
    for (const [phase, writes, reads] of steps) {
      const change = await store.cutover.rollback({ reason: "rollback drill" });
      assert.equal(change.kind, "rollback");
      assert.equal(change.to, phase);
      assert.equal(store.cutover.phase, phase);
      assert.deepEqual(await writeSides(`rb-${phase}`), writes);
      assert.equal(await readSide(`rbr-${phase}`), reads);
    }
    await assert.rejects(store.cutover.rollback(), UsageError);
  });

  test("skipping phases is refused with the reason, and allowed with force (recorded)", async () => {
    assert.equal(store.cutover.phase, "legacy-only");
    await assert.rejects(store.cutover.setPhase("shadow"), (error: unknown) => {
      assert.ok(error instanceof PhaseChangeRefusedError);
      assert.match(error.message, /legacy-only -> shadow skips dual-write/);
      return true;
    });
    assert.equal(store.cutover.phase, "legacy-only");
    const forced = await store.cutover.setPhase("shadow", { force: true, reason: "drill" });
    assert.equal(forced.forced, true);
    assert.equal(forced.overridden.length, 1);
    const history = await cutoverHistory(db().pool, "kv", 1);
    assert.deepEqual([history[0]!.to, history[0]!.forced, history[0]!.reason], ["shadow", true, "drill"]);
  });

  test("next-only is final: moving back is refused unless forced", async () => {
    await store.cutover.setPhase("next-only", { force: true, reason: "test setup" });
    await assert.rejects(store.cutover.setPhase("next-primary"), /next-only is final/);
    await assert.rejects(store.cutover.rollback(), /no rollback/);
    const forced = await store.cutover.setPhase("next-primary", { force: true, reason: "legacy re-filled" });
    assert.equal(forced.to, "next-primary");
    await store.cutover.setPhase("legacy-only", { force: true });
  });

  test("the environment override wins over the stored phase, and a bad value is refused", async () => {
    await store.cutover.setPhase("dual-write");
    const overridden = await createCutover<KvStore>({
      name: "kv",
      pool: db().pool,
      legacy,
      next,
      reads: ["get"],
      writes: ["put", "delete"],
      reportIntervalMs: 0,
      env: { PGSHIFT_CUTOVER_KV_PHASE: "legacy-only" },
    });
    try {
      assert.equal(overridden.cutover.phase, "legacy-only");
      assert.equal(overridden.cutover.metrics().phaseSource, "override");
      assert.equal(overridden.cutover.metrics().storedPhase, "dual-write");
      log.length = 0;
      await overridden.put("ov", { n: 1 });
      assert.deepEqual(log, ["legacy:put:ov"]);
    } finally {
      await overridden.cutover.close();
    }
    await assert.rejects(
      createCutover<KvStore>({
        name: "kv",
        pool: db().pool,
        legacy,
        next,
        reads: ["get"],
        writes: ["put"],
        reportIntervalMs: 0,
        env: { PGSHIFT_CUTOVER_KV_PHASE: "sideways" },
      }),
      /PGSHIFT_CUTOVER_KV_PHASE=sideways: unknown cutover phase/,
    );
  });

  test("creation refuses methods that a side lacks or that are both read and write", async () => {
    await assert.rejects(
      createCutover<KvStore>({
        name: "kv",
        pool: db().pool,
        legacy,
        next,
        reads: ["get"],
        writes: ["get"],
        reportIntervalMs: 0,
      }),
      /listed both as a read and as a write/,
    );
    await assert.rejects(
      createCutover<KvStore>({ name: "bad name!", pool: db().pool, legacy, next, reads: [], writes: [] }),
      /invalid cutover name/,
    );
  });

  test("every change has a newer revision, and a stale read of the row does not move the phase back", async () => {
    const first = await store.cutover.setPhase("legacy-only", { force: true, reason: "test: revisions" });
    const second = await store.cutover.setPhase("dual-write");
    assert.ok(olderRevision(first.revision, second.revision), `${first.revision} < ${second.revision}`);
    const row = await readCutover(db().pool, "kv");
    assert.equal(row?.revision, second.revision);
    // What a watcher's read that started before the change would deliver after it:
    const watcher = (
      store.cutover as unknown as { watcher: { options: { onPhase: (p: string, r: string) => void } } }
    ).watcher;
    watcher.options.onPhase("legacy-only", first.revision);
    assert.equal(store.cutover.phase, "dual-write");
    await store.cutover.refresh();
    assert.equal(store.cutover.phase, "dual-write");
  });
});

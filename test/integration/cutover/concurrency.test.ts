import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, test } from "node:test";
import type pg from "pg";
import { type CutoverPhase, type CutoverStore, repairCounts } from "../../../src/cutover/index.ts";
import { createPool } from "../../../src/pg/pool.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import { eventually, type KvStore, MemoryKv, PgKv, kvCutover } from "./kv-stores.ts";

const db = useTestDatabase("cutover_concurrency");

describe("concurrent writers during phase changes", () => {
  let poolB: pg.Pool;
  // One legacy store shared by both instances (as a shared legacy service would be).
  const legacy = new MemoryKv();
  let a: CutoverStore<KvStore>;
  let b: CutoverStore<KvStore>;

  before(async () => {
    poolB = createPool({ url: db().url, max: 6 });
    const open = async (pool: pg.Pool) => {
      const next = new PgKv(pool, "kv");
      await next.ensure();
      return kvCutover(pool, "jobs", { legacy, next }, { initialPhase: "dual-write" });
    };
    a = await open(db().pool);
    b = await open(poolB);
  });
  after(async () => {
    await a.cutover.close();
    await b.cutover.close();
    await poolB.end();
  });

  test("no acknowledged write is lost while phases move forward, back and forward again", async () => {
    const writers = 6;
    let stop = false;
    const acknowledged: { key: string; value: { writer: number; n: number }; beforeNextOnly: boolean }[] = [];
    const counters = new Map<number, number>();
    let nextOnlySet = false;
    let failures = 0;
    const writer = async (w: number) => {
      const store = w % 2 === 0 ? a : b;
      for (let n = 1; !stop; n++) {
        const beforeNextOnly = !nextOnlySet;
        const value = { writer: w, n };
        try {
          // A unique key per write, plus one counter key per writer updated in order.
          await store.put(`w${w}-${n}`, value);
          await store.put(`counter-${w}`, value);
          acknowledged.push({ key: `w${w}-${n}`, value, beforeNextOnly });
          counters.set(w, n);
        } catch {
          failures++;
        }
        await sleep(1);
      }
    };
    const running = Array.from({ length: writers }, (_, w) => writer(w));
    const path: CutoverPhase[] = [
      "shadow",
      "ramp:10",
      "ramp:50",
      "shadow",
      "ramp:50",
      "ramp:100",
      "next-primary",
      "ramp:100",
      "next-primary",
    ];
    for (const [i, phase] of path.entries()) {
      await (i % 2 === 0 ? a : b).cutover.setPhase(phase);
      await sleep(120);
    }
    await a.cutover.setPhase("next-only", { force: true, reason: "test: no final snapshot needed" });
    nextOnlySet = true;
    await sleep(150);
    stop = true;
    await Promise.all(running);

    assert.equal(failures, 0);
    assert.ok(acknowledged.length > 100, `only ${acknowledged.length} writes happened`);
    assert.ok(await eventually(() => b.cutover.phase === "next-only"));
    const { rows } = await db().pool.query("select key, value from kv");
    const inNext = new Map(rows.map((r) => [r.key as string, r.value]));
    const missingInNext = acknowledged.filter((w) => !inNext.has(w.key)).map((w) => w.key);
    assert.deepEqual(missingInNext, [], "every acknowledged write reached next");
    for (const w of acknowledged) assert.deepEqual(inNext.get(w.key), w.value);
    const missingInLegacy = acknowledged
      .filter((w) => w.beforeNextOnly && !legacy.map.has(w.key))
      .map((w) => w.key);
    assert.deepEqual(missingInLegacy, [], "every write acknowledged before next-only reached legacy");
    // Each writer's counter holds its last acknowledged value: no write overtook a later one.
    for (const [w, n] of counters)
      assert.deepEqual(inNext.get(`counter-${w}`), { writer: w, n }, `counter-${w}`);
    const counts = await repairCounts(db().pool, "jobs");
    assert.deepEqual([counts.pendingLegacy, counts.pendingNext], [0, 0]);
  });
});

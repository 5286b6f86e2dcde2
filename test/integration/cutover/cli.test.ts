import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { type CutoverStore, createCutover } from "../../../src/cutover/index.ts";
import { runCli } from "../../helpers/cli.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import { eventually, type KvStore, MemoryKv, PgKv } from "./kv-stores.ts";

const db = useTestDatabase("cutover_cli");

describe("pgshift cutover", () => {
  let store: CutoverStore<KvStore>;
  const cli = (...args: string[]) => runCli([...args, "--to", db().url]);

  test("list on a database without cutovers says so and creates nothing", async () => {
    const result = await cli("cutover", "list");
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /no cutovers in this database/);
    const { rows } = await db().pool.query("select to_regclass('pgshift.cutovers') as t");
    assert.equal(rows[0].t, null);
  });

  describe("with a running application instance", () => {
    before(async () => {
      const next = new PgKv(db().pool, "kv");
      await next.ensure();
      store = await createCutover<KvStore>({
        name: "carts",
        pool: db().pool,
        legacy: new MemoryKv(),
        next,
        reads: ["get"],
        writes: ["put"],
        reportIntervalMs: 200,
      });
    });
    after(async () => {
      await store.cutover.close();
    });

    test("list shows the phase and the live instance", async () => {
      const result = await cli("cutover", "list", "--json");
      assert.equal(result.code, 0, result.stderr);
      const list = JSON.parse(result.stdout);
      assert.equal(list.length, 1);
      assert.deepEqual([list[0].name, list[0].phase, list[0].liveInstances], ["carts", "legacy-only", 1]);
      const human = await cli("cutover", "list");
      assert.match(human.stdout, /carts\s+legacy-only/);
    });

    test("set-phase moves one step, the instance follows, and skipping is refused with the reason", async () => {
      const step = await cli("cutover", "set-phase", "carts", "dual-write", "--reason", "start dual writes");
      assert.equal(step.code, 0, step.stderr);
      assert.match(step.stdout, /carts: legacy-only -> dual-write \(forward\)/);
      assert.ok(await eventually(() => store.cutover.phase === "dual-write"));

      const skip = await cli("cutover", "set-phase", "carts", "next-primary");
      assert.equal(skip.code, 2);
      assert.match(skip.stderr, /dual-write -> next-primary skips shadow, ramp/);
      assert.match(skip.stderr, /or pass --force/);
      const skipJson = await cli("cutover", "set-phase", "carts", "next-primary", "--json");
      assert.equal(JSON.parse(skipJson.stdout).error, "phase_change_refused");

      const forced = await cli(
        "cutover",
        "set-phase",
        "carts",
        "ramp:20",
        "--force",
        "--json",
        "--reason",
        "drill",
      );
      assert.equal(forced.code, 0, forced.stderr);
      const change = JSON.parse(forced.stdout);
      assert.deepEqual([change.from, change.to, change.forced], ["dual-write", "ramp:20", true]);
      assert.ok(await eventually(() => store.cutover.phase === "ramp:20"));

      const back = await cli("cutover", "set-phase", "carts", "shadow");
      assert.equal(back.code, 0, back.stderr);
      assert.match(back.stdout, /ramp:20 -> shadow \(rollback\)/);

      const bad = await cli("cutover", "set-phase", "carts", "halfway");
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /unknown cutover phase "halfway"/);
      const unknown = await cli("cutover", "set-phase", "nosuch", "shadow");
      assert.equal(unknown.code, 1);
      assert.match(unknown.stderr, /no cutover named "nosuch" in this database \(known: carts\)/);
    });

    test("status shows routing, repairs, instances and history; --json gives the same object", async () => {
      assert.ok(await eventually(() => store.cutover.phase === "shadow"));
      await store.put("x", { n: 1 });
      const result = await cli("cutover", "status", "carts");
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /cutover carts: shadow/);
      assert.match(result.stdout, /writes: legacy \(authoritative\), then next/);
      assert.match(result.stdout, /reads: {2}legacy; shadow reads on next/);
      assert.match(result.stdout, /history:/);
      assert.match(result.stdout, /start dual writes/);
      const json = JSON.parse((await cli("cutover", "status", "carts", "--json")).stdout);
      assert.equal(json.cutover.phase, "shadow");
      assert.deepEqual(json.routing.writes, ["legacy", "next"]);
      assert.deepEqual(
        json.history.map((h: { to: string }) => h.to),
        ["legacy-only", "dual-write", "ramp:20", "shadow"],
      );
      assert.ok(
        await eventually(async () => {
          const s = JSON.parse((await cli("cutover", "status", "carts", "--json")).stdout);
          return s.instances.some(
            (i: { phase: string; closed: boolean }) => i.phase === "shadow" && !i.closed,
          );
        }, 5_000),
      );
    });

    test("verify without a recorded verification is unproven (exit 1) and says what to run", async () => {
      const result = await cli("cutover", "verify", "carts");
      assert.equal(result.code, 1);
      assert.match(result.stdout, /carts \(shadow\): unproven/);
      assert.match(result.stdout, /run store\.cutover\.verify\(\) in the application/);
    });
  });
});

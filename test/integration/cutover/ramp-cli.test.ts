import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { type CutoverStore, createCutover, readCutover, readRampState } from "../../../src/cutover/index.ts";
import { runCli } from "../../helpers/cli.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import { type KvStore, MemoryKv, PgKv } from "./kv-stores.ts";

const db = useTestDatabase("cutover_ramp_cli");

describe("pgshift cutover ramp / alerts", () => {
  let store: CutoverStore<KvStore>;
  const cli = (...args: string[]) => runCli([...args, "--to", db().url]);

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
      initialPhase: "shadow",
      reportIntervalMs: 0,
      env: {},
    });
  });
  after(() => store.cutover.close());

  test("ramp --once with too little traffic holds and records the policy's settings", async () => {
    for (let i = 0; i < 5; i++) await store.get(`k${i}`);
    await store.cutover.reportHealth();
    const result = await cli(
      "cutover",
      "ramp",
      "carts",
      "--every",
      "24h",
      "--step",
      "10",
      "--once",
      "--json",
    );
    assert.equal(result.code, 0, result.stderr);
    const decision = JSON.parse(result.stdout);
    assert.equal(decision.action, "hold");
    assert.match(decision.reason, /too few calls to judge: 0 < 1000/);
    const state = await readRampState(db().pool, "carts");
    assert.equal(state!.settings.everyMs, 86_400_000);
    assert.equal(state!.settings.steps[0], "ramp:10");
    assert.equal(state!.settings.steps.at(-1), "next-primary");
    assert.equal((await readCutover(db().pool, "carts"))!.phase, "shadow");
  });

  test("a manual set-phase pauses the ramp; --resume lets it decide again", async () => {
    assert.equal((await cli("cutover", "set-phase", "carts", "ramp:10", "--reason", "by hand")).code, 0);
    const paused = await cli("cutover", "ramp", "carts", "--once");
    assert.equal(paused.code, 0, paused.stderr);
    assert.match(paused.stdout, /ramp paused \(ramp:10\): paused: ramp:10 was set by .* \(by hand\)/);
    const resumed = await cli("cutover", "ramp", "carts", "--once", "--resume", "--min-calls", "1");
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stderr, /ramp resumed from ramp:10/);
    assert.match(resumed.stdout, /ramp hold \(ramp:10\): too few calls to judge: 0 < 1/);
    const status = await cli("cutover", "status", "carts");
    assert.equal(status.code, 0, status.stderr);
    assert.match(
      status.stdout,
      /ramp: running, ramp:10, ramp:20, .* every 86400 s; last decision: hold: too few calls/,
    );
  });

  test("alerts prints rules with thresholds from flags and the environment", async () => {
    const result = await runCli(["cutover", "alerts", "carts", "--max-p95-ms", "250"], {
      env: { PGSHIFT_CUTOVER_CARTS_RAMP_MAX_ERROR_RATE: "0.02" },
    });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^groups:\n {2}- name: "pgshift-cutover-carts"/);
    assert.match(result.stdout, /quantile=\\"0\.95\\"\}\) > 0\.25"/);
    assert.match(result.stdout, /\[5m\]\)\) > 0\.02"/);
  });
});

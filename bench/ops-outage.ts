// Run: node bin/run-ts.js bench/ops-outage.ts (issue 19: fewer than 10 connection attempts per second during a 30 s outage).
// 20 callers hammer a createPool through a 30 s outage of a private instance: connection attempts per
// second during the outage, the slowest call, and the time to the first success after the restart.
import { join } from "node:path";
import { tmpdir } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import {
  destroyLocalInstance,
  localInstanceUrl,
  startLocalInstance,
  stopLocalInstance,
} from "../src/local/instance.ts";
import { createPool, poolMetricsOf } from "../src/pg/pool.ts";
import { testBinaries } from "../test/helpers/binaries.ts";

const instance = {
  name: `outage-${process.pid}`,
  baseDir: join(tmpdir(), "pgshift-outage"),
  ephemeral: true,
  binaries: testBinaries(),
};
await startLocalInstance(instance);
const pool = createPool({ url: localInstanceUrl(instance), max: 10, connectTimeoutMs: 1000 });
let stop = false;
let slowest = 0;
let ok = 0;
let failed = 0;
let firstOkAfterRestart = 0;
let restartedAt = 0;
const callers = Array.from({ length: 20 }, async () => {
  while (!stop) {
    const t = performance.now();
    try {
      await pool.query("select 1");
      ok++;
      if (restartedAt && !firstOkAfterRestart) firstOkAfterRestart = Date.now() - restartedAt;
    } catch {
      failed++;
    }
    const ms = performance.now() - t;
    if (!restartedAt && failed > 0) slowest = Math.max(slowest, ms);
    await sleep(10);
  }
});
await sleep(2000);
await stopLocalInstance(instance);
const before = poolMetricsOf(pool)!.connectAttempts;
const t0 = Date.now();
await sleep(30_000);
const during = poolMetricsOf(pool)!.connectAttempts - before;
const seconds = (Date.now() - t0) / 1000;
await startLocalInstance(instance);
restartedAt = Date.now();
await sleep(5000);
stop = true;
await Promise.all(callers);
console.log(
  JSON.stringify({
    outageSeconds: seconds,
    connectAttempts: during,
    attemptsPerSecond: during / seconds,
    slowestCallDuringOutageMs: Math.round(slowest),
    okCalls: ok,
    failedCalls: failed,
    firstSuccessAfterRestartMs: firstOkAfterRestart,
  }),
);
await pool.end();
await destroyLocalInstance(instance);

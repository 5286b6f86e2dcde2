import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { CUTOVER_METRICS, POOL_CONNECTIONS_METRIC, cutoverAlertRules } from "../../../src/cutover/index.ts";
import { metricsText } from "../../../src/serve/status-server.ts";

function promtool(): string | undefined {
  for (const candidate of ["/usr/bin/promtool", "promtool"]) {
    const probe = spawnSync(candidate, ["--version"], { stdio: "ignore" });
    if (probe.status === 0) return candidate;
  }
  return undefined;
}

test("alert rules name the thresholds and the metrics the health server exports", () => {
  const rules = cutoverAlertRules({ name: "tasks", thresholds: { maxP95Ms: 500, maxErrorRate: 0.01 } });
  const alerts = [...rules.matchAll(/- alert: (\w+)/g)].map((m) => m[1]);
  assert.deepEqual(alerts, [
    "PgshiftCutoverReadLatencyHigh",
    "PgshiftCutoverWriteLatencyHigh",
    "PgshiftCutoverFailedCalls",
    "PgshiftPoolExhausted",
    "PgshiftCutoverShadowMismatch",
    "PgshiftCutoverRepairBacklog",
    "PgshiftCutoverRampRolledBack",
  ]);
  assert.match(rules, /pgshift_cutover_read_seconds\{cutover=\\"tasks\\",quantile=\\"0\.95\\"\}\) > 0\.5"/);
  assert.match(rules, /kind=~\\"reads\|writes\\"}\[5m\]\)\) > 0\.01"/);
  assert.match(rules, /pgshift_pool_connections\{state=\\"waiting\\"\}\) > 0"/);
  // Every metric a rule uses is one the /metrics endpoint actually serves.
  const served = metricsText({
    pool: { totalCount: 1, idleCount: 1, waitingCount: 0 } as never,
    cutovers: [],
  });
  assert.match(served, new RegExp(`# TYPE ${POOL_CONNECTIONS_METRIC} gauge`));
  const used = new Set([...rules.matchAll(/(pgshift_[a-z_]+)\{/g)].map((m) => m[1]!));
  const known = new Set<string>([...Object.values(CUTOVER_METRICS), POOL_CONNECTIONS_METRIC]);
  for (const metric of used) assert.ok(known.has(metric), `${metric} is exported`);
  assert.equal(used.size, 10);
});

test("promtool check rules accepts the rules", (t) => {
  const binary = promtool();
  if (!binary) {
    t.skip("promtool not installed (Debian package prometheus): rules not checked by promtool");
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), "pgshift-rules-"));
  try {
    const file = join(dir, "cutover.rules.yml");
    writeFileSync(file, cutoverAlertRules({ name: "tasks-v2", thresholds: { maxP95Ms: 250 } }));
    const output = execFileSync(binary, ["check", "rules", file], { encoding: "utf8" });
    assert.match(output, /SUCCESS: 7 rules found/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

import assert from "node:assert/strict";
import { test } from "node:test";
import { replicationLagResult } from "../../../src/serve/readiness-checks.ts";

const replica = (applicationName: string, replayLagSeconds: number) => ({
  applicationName,
  client: "10.0.0.2",
  state: "streaming",
  replayLagSeconds,
});

test("replication lag: no replicas passes, the worst lag is observed, late standbys are named", () => {
  assert.deepEqual(replicationLagResult([], 30), {
    status: "pass",
    observedValue: "no replicas",
    output: "no replicas",
  });
  assert.deepEqual(replicationLagResult([replica("a", 1.23), replica("b", 29.96)], 30), {
    status: "pass",
    observedValue: 30,
    observedUnit: "s",
  });
  assert.deepEqual(replicationLagResult([replica("a", 1), replica("b", 45.04), replica("", 31)], 30), {
    status: "fail",
    observedValue: 45,
    observedUnit: "s",
    output: "replay lag over 30 s: b@10.0.0.2 45 s (streaming), (unnamed)@10.0.0.2 31 s (streaming)",
  });
});

import assert from "node:assert/strict";
import { test } from "node:test";
import {
  DEFAULT_RAMP_THRESHOLDS,
  crossedThresholds,
  parseDuration,
  rampStepsOf,
  rampVariable,
  resolveRampSettings,
} from "../../../src/cutover/index.ts";

test("durations", () => {
  assert.equal(parseDuration("24h"), 86_400_000);
  assert.equal(parseDuration("30m"), 1_800_000);
  assert.equal(parseDuration("1.5s"), 1_500);
  assert.equal(parseDuration(250), 250);
  assert.throws(() => parseDuration("soon"), /expected a positive duration/);
  assert.throws(() => parseDuration("0s"), /expected a positive duration/);
});

test("steps of 10 % end in next-primary", () => {
  assert.deepEqual(rampStepsOf(25), ["ramp:25", "ramp:50", "ramp:75", "ramp:100", "next-primary"]);
  assert.equal(rampStepsOf(10).length, 11);
  assert.throws(() => rampStepsOf(0), /between 1 and 100/);
});

test("defaults, then environment, then options", () => {
  assert.deepEqual(resolveRampSettings("tasks", {}, {}), {
    steps: rampStepsOf(10),
    everyMs: 86_400_000,
    thresholds: DEFAULT_RAMP_THRESHOLDS,
    rollbackTo: "shadow",
  });
  assert.equal(
    rampVariable("task-queue", "MAX_ERROR_RATE"),
    "PGSHIFT_CUTOVER_TASK_QUEUE_RAMP_MAX_ERROR_RATE",
  );
  const env = {
    PGSHIFT_CUTOVER_TASKS_RAMP_MAX_ERROR_RATE: "0.02",
    PGSHIFT_CUTOVER_TASKS_RAMP_MAX_P95_MS: "300",
    PGSHIFT_CUTOVER_TASKS_RAMP_MIN_CALLS: "50",
    PGSHIFT_CUTOVER_TASKS_RAMP_EVERY: "6h",
    PGSHIFT_CUTOVER_TASKS_RAMP_STEP: "50",
    PGSHIFT_CUTOVER_TASKS_RAMP_ROLLBACK_TO: "ramp:0",
  };
  const fromEnv = resolveRampSettings("tasks", {}, env);
  assert.deepEqual(fromEnv.thresholds, {
    ...DEFAULT_RAMP_THRESHOLDS,
    maxErrorRate: 0.02,
    maxP95Ms: 300,
    minCalls: 50,
  });
  assert.equal(fromEnv.everyMs, 6 * 3_600_000);
  assert.deepEqual(fromEnv.steps, ["ramp:50", "ramp:100", "next-primary"]);
  assert.equal(fromEnv.rollbackTo, "ramp:0");
  const given = resolveRampSettings(
    "tasks",
    { every: 1000, healthy: { maxErrorRate: 0.05 }, steps: ["ramp:10"] },
    env,
  );
  assert.equal(given.everyMs, 1000);
  assert.equal(given.thresholds.maxErrorRate, 0.05);
  assert.deepEqual(given.steps, ["ramp:10"]);
});

test("every invalid setting is reported together", () => {
  assert.throws(
    () =>
      resolveRampSettings(
        "tasks",
        {},
        {
          PGSHIFT_CUTOVER_TASKS_RAMP_MAX_ERROR_RATE: "lots",
          PGSHIFT_CUTOVER_TASKS_RAMP_EVERY: "daily",
          PGSHIFT_CUTOVER_TASKS_RAMP_ROLLBACK_TO: "back",
        },
      ),
    (error: Error) =>
      /PGSHIFT_CUTOVER_TASKS_RAMP_MAX_ERROR_RATE=lots/.test(error.message) &&
      /PGSHIFT_CUTOVER_TASKS_RAMP_EVERY "daily"/.test(error.message) &&
      /unknown cutover phase "back"/.test(error.message),
  );
});

test("thresholds: exactly at the limit is healthy, above is not; too few calls judges only repairs", () => {
  const figures = {
    windowStartMs: 0,
    windowEndMs: 1,
    reports: 1,
    instances: 1,
    calls: 1000,
    errors: { legacy: 6, next: 4 },
    errorRate: 0.01,
    shadowCompared: 1000,
    shadowMismatched: 1,
    mismatchRate: 0.001,
    p95Ms: { legacy: 2, next: 500 },
    pendingRepairs: 0,
  };
  assert.deepEqual(crossedThresholds(figures, DEFAULT_RAMP_THRESHOLDS), []);
  const worse = { ...figures, errorRate: 0.011, p95Ms: { legacy: 2, next: 501 } };
  assert.deepEqual(crossedThresholds(worse, DEFAULT_RAMP_THRESHOLDS), [
    "error rate 1.10 % > 1.00 % (6 legacy + 4 next errors in 1000 calls)",
    "next p95 501 ms > 500 ms",
  ]);
  const quiet = { ...worse, calls: 10, pendingRepairs: 2 };
  assert.deepEqual(crossedThresholds(quiet, DEFAULT_RAMP_THRESHOLDS), ["pending repairs 2 > 0"]);
});

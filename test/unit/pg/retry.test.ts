import assert from "node:assert/strict";
import { test } from "node:test";
import { backoffDelay, isRetryable, withRetry } from "../../../src/pg/retry.ts";

const lockError = Object.assign(new Error("canceling statement due to lock timeout"), { code: "55P03" });
const uniqueError = Object.assign(new Error("duplicate key"), { code: "23505" });

test("backoff is capped and jittered", () => {
  assert.equal(
    backoffDelay(0, 100, 5000, () => 0.999),
    99,
  );
  assert.equal(
    backoffDelay(3, 100, 5000, () => 0.5),
    400,
  );
  assert.equal(
    backoffDelay(20, 100, 5000, () => 0.999),
    4995,
  );
  assert.equal(
    backoffDelay(5, 100, 5000, () => 0),
    0,
  );
});

test("only lock-not-available and lost connections are retryable", () => {
  assert.equal(isRetryable(lockError), true);
  assert.equal(isRetryable(Object.assign(new Error("x"), { code: "57P01" })), true);
  assert.equal(isRetryable(Object.assign(new Error("x"), { code: "ECONNRESET" })), true);
  assert.equal(isRetryable(new Error("Connection terminated unexpectedly")), true);
  assert.equal(isRetryable(uniqueError), false);
  assert.equal(isRetryable(new Error("syntax error")), false);
});

test("withRetry retries 55P03 and stops at the limit", async () => {
  let calls = 0;
  const retries: number[] = [];
  await assert.rejects(
    withRetry(
      async () => {
        calls++;
        throw lockError;
      },
      { retries: 3, baseDelayMs: 1, maxDelayMs: 2, onRetry: (info) => retries.push(info.attempt) },
    ),
    /lock timeout/,
  );
  assert.equal(calls, 4);
  assert.deepEqual(retries, [1, 2, 3]);
});

test("withRetry never retries other errors and returns the first success", async () => {
  let calls = 0;
  await assert.rejects(
    withRetry(async () => {
      calls++;
      throw uniqueError;
    }),
    /duplicate key/,
  );
  assert.equal(calls, 1);
  let attempts = 0;
  const value = await withRetry(
    async () => {
      attempts++;
      if (attempts < 3) throw lockError;
      return "done";
    },
    { baseDelayMs: 1 },
  );
  assert.equal(value, "done");
  assert.equal(attempts, 3);
});

test("a retry after an open circuit breaker waits for its next probe, not less", async () => {
  const delays: number[] = [];
  let calls = 0;
  const result = await withRetry(
    async () => {
      calls++;
      if (calls === 1)
        throw Object.assign(new Error("breaker open"), { nextProbeAt: new Date(Date.now() + 200) });
      return "ok";
    },
    { retries: 1, retryOn: () => true, random: () => 0, onRetry: ({ delayMs }) => delays.push(delayMs) },
  );
  assert.equal(result, "ok");
  assert.equal(calls, 2);
  // random() = 0 makes the backoff itself 0: the whole delay is the wait for the probe
  assert.equal(delays.length, 1);
  assert.ok(delays[0]! > 150 && delays[0]! <= 200, String(delays[0]));
});

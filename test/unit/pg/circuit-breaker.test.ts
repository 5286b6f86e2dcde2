import assert from "node:assert/strict";
import { test } from "node:test";
import { CircuitBreaker, CircuitOpenError } from "../../../src/pg/circuit-breaker.ts";
import { ConnectionError, isConnectionLost } from "../../../src/pg/errors.ts";
import { describeConnectionError, describeTarget, isConnectionFailure } from "../../../src/pg/pool.ts";

function clocked(options: { failureThreshold: number; coolDownMs: number }) {
  const clock = { now: 1_000_000 };
  const breaker = new CircuitBreaker({ ...options, host: "db.example", port: 6543, now: () => clock.now });
  return { clock, breaker };
}

function rejection(breaker: CircuitBreaker): CircuitOpenError {
  try {
    breaker.admit();
  } catch (error) {
    assert.ok(error instanceof CircuitOpenError);
    return error;
  }
  assert.fail("the breaker let an attempt through");
}

test("opens after N consecutive failures, fails fast naming host:port and the next probe", () => {
  const { clock, breaker } = clocked({ failureThreshold: 3, coolDownMs: 2_000 });
  for (let i = 0; i < 2; i++) {
    breaker.admit();
    breaker.failed();
  }
  assert.equal(breaker.metrics().state, "closed");
  breaker.admit();
  breaker.succeeded(); // a success resets the count
  for (let i = 0; i < 3; i++) {
    breaker.admit();
    breaker.failed();
  }
  assert.equal(breaker.metrics().state, "open");
  clock.now += 500;
  const error = rejection(breaker);
  assert.ok(error instanceof ConnectionError);
  assert.equal(error.code, "circuit_open");
  assert.equal(error.nextProbeAt.getTime(), 1_000_000 + 2_000);
  assert.match(error.message, /db\.example:6543/);
  assert.match(error.message, new RegExp(new Date(1_002_000).toISOString().replace(/\./g, "\\.")));
  assert.deepEqual(error.details, {
    host: "db.example",
    port: 6543,
    nextProbeAt: new Date(1_002_000).toISOString(),
    failures: 3,
  });
  const m = breaker.metrics();
  assert.equal(m.admitted, 6);
  assert.equal(m.connectFailures, 5);
  assert.equal(m.rejected, 1);
  assert.equal(m.opened, 1);
  assert.equal(m.nextProbeAt, 1_002_000);
});

test("half-open lets exactly one probe through; its failure reopens for another cool-down", () => {
  const { clock, breaker } = clocked({ failureThreshold: 1, coolDownMs: 1_000 });
  breaker.admit();
  breaker.failed();
  clock.now += 999;
  rejection(breaker);
  clock.now += 1;
  breaker.admit(); // the probe
  assert.equal(breaker.metrics().state, "half-open");
  const whileProbing = rejection(breaker);
  assert.equal(whileProbing.details.failures, 1);
  breaker.failed();
  assert.equal(breaker.metrics().state, "open");
  assert.equal(breaker.metrics().opened, 2);
  assert.equal(rejection(breaker).nextProbeAt.getTime(), clock.now + 1_000);
  clock.now += 1_000;
  breaker.admit();
  breaker.succeeded();
  assert.equal(breaker.metrics().state, "closed");
  assert.equal(breaker.metrics().consecutiveFailures, 0);
  breaker.admit(); // closed again: attempts flow
  breaker.admit();
  assert.equal(breaker.metrics().admitted, 5);
});

test("a probe that ends without a verdict frees the slot for the next probe", () => {
  const { clock, breaker } = clocked({ failureThreshold: 1, coolDownMs: 10 });
  breaker.admit();
  breaker.failed();
  clock.now += 10;
  breaker.admit();
  breaker.released();
  assert.equal(breaker.metrics().state, "half-open");
  breaker.admit();
  breaker.succeeded();
  assert.equal(breaker.metrics().state, "closed");
});

test("an open breaker counts as a lost connection for retry loops, and is never retried by the pool", () => {
  const error = new CircuitOpenError("db.example", 5432, 0, 5);
  assert.equal(isConnectionLost(error), true);
  assert.equal(isConnectionFailure(error), false);
  assert.equal(isConnectionFailure(Object.assign(new Error("refused"), { code: "ECONNREFUSED" })), true);
  assert.equal(isConnectionFailure(Object.assign(new Error("bad password"), { code: "28P01" })), false);
});

test("the refusal keeps the failure that opened the breaker; a command reports that failure", () => {
  const { breaker } = clocked({ failureThreshold: 1, coolDownMs: 1_000 });
  const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:6543"), {
    code: "ECONNREFUSED",
    syscall: "connect",
  });
  breaker.admit();
  breaker.failed(refused);
  const error = rejection(breaker);
  assert.equal(error.cause, refused);
  const target = describeTarget("postgres://someone@db.example:6543/appdb");
  const described = describeConnectionError(error, target);
  assert.equal(described?.code, "connection_failed");
  assert.match(described!.message, /could not connect to db\.example:6543\/appdb as someone: .*ECONNREFUSED/);
});

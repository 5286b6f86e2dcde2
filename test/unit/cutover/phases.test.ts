import assert from "node:assert/strict";
import { test } from "node:test";
import {
  checkPhaseTransition,
  nextPhaseOf,
  parseCutoverPhase,
  phaseOverrideVariable,
  previousPhaseOf,
  rampBucket,
  readSideFor,
  routingOf,
  validateCutoverName,
} from "../../../src/cutover/phases.ts";
import { UsageError } from "../../../src/errors.ts";

test("phases parse, and bad ones are refused naming the valid ones", () => {
  assert.deepEqual(parseCutoverPhase("ramp:25"), { kind: "ramp", percent: 25 });
  assert.deepEqual(parseCutoverPhase(" shadow "), { kind: "shadow", percent: 0 });
  for (const bad of ["ramp", "ramp:101", "ramp:-1", "ramp:1.5", "Shadow", ""]) {
    assert.throws(
      () => parseCutoverPhase(bad),
      (e: unknown) => {
        assert.ok(e instanceof UsageError);
        assert.match(e.message, /expected one of legacy-only, dual-write, shadow, ramp:P/);
        return true;
      },
    );
  }
});

test("routing of every phase: write order (authoritative first), read side, shadow", () => {
  const table = [
    ["legacy-only", ["legacy"], "legacy", false],
    ["dual-write", ["legacy", "next"], "legacy", false],
    ["shadow", ["legacy", "next"], "legacy", true],
    ["ramp:0", ["legacy", "next"], "legacy", true],
    ["ramp:40", ["legacy", "next"], "split", true],
    ["ramp:100", ["legacy", "next"], "next", true],
    ["next-primary", ["next", "legacy"], "next", true],
    ["next-only", ["next"], "next", false],
  ] as const;
  for (const [phase, writes, reads, shadow] of table) {
    const r = routingOf(parseCutoverPhase(phase));
    assert.deepEqual([r.writes, r.reads, r.shadow], [writes, reads, shadow], phase);
  }
});

test("ramp buckets are stable and monotonic: a key on next at P % stays on next above P", () => {
  assert.equal(rampBucket("task-42"), rampBucket("task-42"));
  const keys = Array.from({ length: 2000 }, (_, i) => `key-${i}`);
  let previous = new Set<string>();
  for (const percent of [1, 10, 25, 50, 90, 100]) {
    const routing = routingOf(parseCutoverPhase(`ramp:${percent}`));
    const onNext = new Set(keys.filter((k) => readSideFor(routing, k) === "next"));
    for (const key of previous) assert.ok(onNext.has(key), `${key} left next at ${percent} %`);
    // Roughly P % of keys (FNV-1a spreads well); generous bounds, this is not a statistics test.
    assert.ok(Math.abs(onNext.size / keys.length - percent / 100) < 0.05, `${percent} %: ${onNext.size}`);
    previous = onNext;
  }
  // A keyless read in a split ramp stays on the authoritative side.
  assert.equal(readSideFor(routingOf(parseCutoverPhase("ramp:50")), undefined), "legacy");
});

test("transitions: one step either way; skips, long rollbacks and leaving next-only are refused with reasons", () => {
  const allowed = [
    ["legacy-only", "dual-write", "forward"],
    ["dual-write", "shadow", "forward"],
    ["shadow", "ramp:10", "forward"],
    ["ramp:10", "ramp:50", "forward"],
    ["ramp:50", "ramp:10", "rollback"],
    ["ramp:100", "next-primary", "forward"],
    ["next-primary", "next-only", "forward"],
    ["next-primary", "ramp:100", "rollback"],
    ["ramp:10", "shadow", "rollback"],
    ["shadow", "dual-write", "rollback"],
    ["dual-write", "legacy-only", "rollback"],
    ["shadow", "shadow", "same"],
  ] as const;
  for (const [from, to, kind] of allowed) {
    const check = checkPhaseTransition(from, to);
    assert.deepEqual([check.allowed, check.kind], [true, kind], `${from} -> ${to}`);
  }
  const skip = checkPhaseTransition("dual-write", "next-primary");
  assert.equal(skip.allowed, false);
  assert.match(skip.reason, /skips shadow, ramp; each phase proves the next one safe/);
  const longBack = checkPhaseTransition("next-primary", "dual-write");
  assert.equal(longBack.allowed, false);
  assert.match(longBack.reason, /goes back more than one phase \(past shadow, ramp\)/);
  const final = checkPhaseTransition("next-only", "next-primary");
  assert.equal(final.allowed, false);
  assert.match(final.reason, /next-only is final/);
});

test("advance and rollback targets", () => {
  const forward = [
    "legacy-only",
    "dual-write",
    "shadow",
    "ramp:10",
    "ramp:50",
    "ramp:100",
    "next-primary",
    "next-only",
  ];
  for (let i = 0; i + 1 < forward.length; i++) assert.equal(nextPhaseOf(forward[i]!), forward[i + 1]);
  assert.equal(nextPhaseOf("next-only"), undefined);
  assert.equal(previousPhaseOf("next-primary"), "ramp:100");
  assert.equal(previousPhaseOf("ramp:50"), "shadow");
  assert.equal(previousPhaseOf("dual-write"), "legacy-only");
  assert.equal(previousPhaseOf("legacy-only"), undefined);
  assert.equal(previousPhaseOf("next-only"), undefined);
});

test("override variable names and cutover names", () => {
  assert.equal(phaseOverrideVariable("tasks"), "PGSHIFT_CUTOVER_TASKS_PHASE");
  assert.equal(phaseOverrideVariable("project-graph"), "PGSHIFT_CUTOVER_PROJECT_GRAPH_PHASE");
  assert.equal(validateCutoverName("project-graph_2"), "project-graph_2");
  for (const bad of ["", "1tasks", "tasks!", "a".repeat(64)])
    assert.throws(() => validateCutoverName(bad), UsageError);
});

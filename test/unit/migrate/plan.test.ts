import assert from "node:assert/strict";
import { test } from "node:test";
import type { AppliedMigration } from "../../../src/migrate/history.ts";
import type { MigrationFile } from "../../../src/migrate/migration-file.ts";
import { comparePlan } from "../../../src/migrate/plan.ts";

const section = { statements: [], transaction: true, line: 1 };
const file = (version: string, sha256 = `sha-${version}`): MigrationFile => ({
  version,
  name: `m${version.slice(-2)}`,
  file: `migrations/${version}_m.sql`,
  sha256,
  up: section,
  down: section,
});
const applied = (version: string, sha256 = `sha-${version}`): AppliedMigration => ({
  version,
  name: `m${version.slice(-2)}`,
  sha256,
  appliedAt: new Date(0),
  appliedBy: "test",
  durationMs: 1,
  outcome: "applied",
});

test("comparePlan: applied, drifted, missing, pending and out-of-order", () => {
  const plan = comparePlan(
    [
      file("20240101000001"),
      file("20240101000002", "changed"),
      file("20240101000003"),
      file("20240101000005"),
      file("20240101000006"),
    ],
    [
      applied("20240101000001"),
      applied("20240101000002"),
      applied("20240101000004"),
      applied("20240101000005"),
    ],
  );
  assert.deepEqual(
    plan.entries.map((e) => [e.version, e.state]),
    [
      ["20240101000001", "applied"],
      ["20240101000002", "drifted"],
      ["20240101000003", "out-of-order"],
      ["20240101000004", "missing"],
      ["20240101000005", "applied"],
      ["20240101000006", "pending"],
    ],
  );
  assert.equal(plan.current, "20240101000005");
  assert.deepEqual(
    plan.drift.map((d) => [d.version, d.file, d.currentSha256]),
    [
      ["20240101000002", "migrations/20240101000002_m.sql", "changed"],
      ["20240101000004", null, null],
    ],
  );
  assert.deepEqual(
    plan.pending.map((m) => m.version),
    ["20240101000006"],
  );
  assert.deepEqual(
    plan.outOfOrder.map((m) => m.version),
    ["20240101000003"],
  );
});

test("comparePlan: nothing applied means everything is pending, nothing out of order", () => {
  const plan = comparePlan([file("20240101000001"), file("20240101000002")], []);
  assert.equal(plan.current, null);
  assert.equal(plan.pending.length, 2);
  assert.equal(plan.outOfOrder.length, 0);
});

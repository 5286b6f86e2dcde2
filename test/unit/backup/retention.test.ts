import assert from "node:assert/strict";
import { test } from "node:test";
import { isoWeekKey, type RetentionCandidate, selectRetained } from "../../../src/backup/retention.ts";

function days(from: string, to: string): string[] {
  const out: string[] = [];
  for (let t = Date.parse(`${from}T00:00:00Z`); t <= Date.parse(`${to}T00:00:00Z`); t += 86_400_000)
    out.push(new Date(t).toISOString().slice(0, 10));
  return out;
}

test("ISO week keys across year ends", () => {
  assert.equal(isoWeekKey(new Date("2026-12-31T01:00:00Z")), "2026-W53");
  assert.equal(isoWeekKey(new Date("2027-01-03T23:00:00Z")), "2026-W53");
  assert.equal(isoWeekKey(new Date("2027-01-04T00:00:00Z")), "2027-W01");
  assert.equal(isoWeekKey(new Date("2024-12-30T00:00:00Z")), "2025-W01");
  assert.equal(isoWeekKey(new Date("2026-06-14T00:00:00Z")), "2026-W24");
});

test("GFS 7/4/12/7 over 3 years of daily full backups keeps exactly 22", () => {
  const backups: RetentionCandidate[] = days("2024-01-01", "2026-12-31").map((d) => ({
    label: d,
    startedAt: `${d}T01:00:00Z`,
    kind: "full",
  }));
  assert.equal(backups.length, 1096);
  const result = selectRetained(
    backups,
    { daily: 7, weekly: 4, monthly: 12, yearly: 7 },
    new Date("2026-12-31T12:00:00Z"),
  );
  const kept = result.keep.map((d) => d.label).sort();
  assert.deepEqual(kept, [
    "2024-12-31",
    "2025-12-31",
    "2026-01-31",
    "2026-02-28",
    "2026-03-31",
    "2026-04-30",
    "2026-05-31",
    "2026-06-30",
    "2026-07-31",
    "2026-08-31",
    "2026-09-30",
    "2026-10-31",
    "2026-11-30",
    "2026-12-13",
    "2026-12-20",
    "2026-12-25",
    "2026-12-26",
    "2026-12-27",
    "2026-12-28",
    "2026-12-29",
    "2026-12-30",
    "2026-12-31",
  ]);
  assert.equal(result.expire.length, 1096 - 22);
  const byLabel = new Map(result.keep.map((d) => [d.label, d]));
  assert.deepEqual(byLabel.get("2026-12-31")!.classes, ["daily", "weekly", "monthly", "yearly"]);
  assert.equal(
    byLabel.get("2026-12-31")!.reason,
    "daily 2026-12-31; weekly 2026-W53; monthly 2026-12; yearly 2026",
  );
  assert.deepEqual(byLabel.get("2026-12-27")!.classes, ["daily", "weekly"]);
  assert.deepEqual(byLabel.get("2026-12-13")!.classes, ["weekly"]);
  assert.deepEqual(byLabel.get("2025-12-31")!.classes, ["yearly"]);
  assert.deepEqual(byLabel.get("2026-02-28")!.classes, ["monthly"]);
  const expired = result.expire.find((d) => d.label === "2026-12-24")!;
  assert.deepEqual(expired.classes, []);
  assert.equal(expired.reason, "older than every period the policy keeps");

  // One year later with no new backups: the newest is still kept, and yearly keeps 2024-2026.
  const later = selectRetained(
    backups,
    { daily: 7, weekly: 4, monthly: 12, yearly: 7 },
    new Date("2027-12-31T12:00:00Z"),
  );
  assert.deepEqual(later.keep.map((d) => d.label).sort(), ["2024-12-31", "2025-12-31", "2026-12-31"]);

  // Input order does not matter.
  const reversed = selectRetained(
    [...backups].reverse(),
    { daily: 7, weekly: 4, monthly: 12, yearly: 7 },
    new Date("2026-12-31T12:00:00Z"),
  );
  assert.deepEqual(reversed.keep.map((d) => d.label).sort(), kept);
});

test("a full is kept while a kept incremental depends on it, through the whole chain", () => {
  // Full backups on Sundays (and the first day), incrementals on other days, each on the previous
  // backup; 2026-05-31 was missed, so May's newest backup is the Saturday incremental of 05-30.
  const list = days("2026-05-01", "2026-06-17").filter((d) => d !== "2026-05-31");
  const backups: RetentionCandidate[] = list.map((d, i) => {
    const full = i === 0 || new Date(`${d}T00:00:00Z`).getUTCDay() === 0;
    return full
      ? { label: d, startedAt: `${d}T02:00:00Z`, kind: "full" }
      : { label: d, startedAt: `${d}T02:00:00Z`, kind: "incr", prior: list[i - 1]! };
  });
  const result = selectRetained(
    backups,
    { daily: 3, weekly: 2, monthly: 2, yearly: 0 },
    new Date("2026-06-17T12:00:00Z"),
  );
  assert.deepEqual(result.keep.map((d) => d.label).sort(), [
    "2026-05-24",
    "2026-05-25",
    "2026-05-26",
    "2026-05-27",
    "2026-05-28",
    "2026-05-29",
    "2026-05-30",
    "2026-06-14",
    "2026-06-15",
    "2026-06-16",
    "2026-06-17",
  ]);
  assert.equal(result.expire.length, 23 + 13);
  const byLabel = new Map(result.keep.map((d) => [d.label, d]));
  assert.deepEqual(byLabel.get("2026-05-24")!.classes, ["dependency"]);
  assert.equal(byLabel.get("2026-05-24")!.kind, "full");
  assert.equal(byLabel.get("2026-05-24")!.reason, "needed by incr 2026-05-25");
  assert.deepEqual(byLabel.get("2026-05-30")!.classes, ["monthly"]);
  assert.deepEqual(byLabel.get("2026-06-14")!.classes, ["weekly", "dependency"]);
  assert.deepEqual(byLabel.get("2026-06-17")!.classes, ["daily", "weekly", "monthly"]);
  // No expired backup is needed by a kept one.
  const keptLabels = new Set(result.keep.map((d) => d.label));
  for (const b of backups) if (keptLabels.has(b.label) && b.prior) assert.ok(keptLabels.has(b.prior));
});

test("backups after now are kept; bad policies are refused", () => {
  const result = selectRetained(
    [
      { label: "a", startedAt: "2026-01-01T00:00:00Z", kind: "logical" },
      { label: "b", startedAt: "2026-03-01T00:00:00Z", kind: "logical" },
    ],
    { daily: 0, weekly: 0, monthly: 0, yearly: 0 },
    new Date("2026-02-01T00:00:00Z"),
  );
  assert.deepEqual(
    result.keep.map((d) => [d.label, d.classes]),
    [
      ["b", ["future"]],
      ["a", ["latest"]],
    ],
  );
  assert.throws(() => selectRetained([], { daily: -1, weekly: 0, monthly: 0, yearly: 0 }), /daily/);
});

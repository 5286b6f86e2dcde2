import assert from "node:assert/strict";
import { test } from "node:test";
import { lsnSegment, planWalPrune, segmentNumber } from "../../../src/backup/wal-prune.ts";

const seg = (n: number, tli = 1) =>
  `${tli.toString(16).toUpperCase().padStart(8, "0")}${Math.floor(n / 256)
    .toString(16)
    .toUpperCase()
    .padStart(8, "0")}${(n % 256).toString(16).toUpperCase().padStart(8, "0")}`;
const lsnOf = (n: number) => {
  const bytes = n * 16 * 1024 * 1024;
  return `${Math.floor(bytes / 2 ** 32).toString(16)}/${(bytes % 2 ** 32).toString(16).toUpperCase()}`;
};
const day = 24 * 3600 * 1000;
const now = new Date("2026-12-01T00:00:00Z");
const backup = (daysAgo: number, start: number, end: number) => ({
  kind: "physical" as const,
  startedAt: new Date(now.getTime() - daysAgo * day).toISOString(),
  startLsn: lsnOf(start),
  endLsn: lsnOf(end),
});

test("segment numbers from names and LSNs, across the log-id boundary", () => {
  assert.equal(segmentNumber("000000010000000000000003"), 3);
  assert.equal(segmentNumber("0000000200000001000000FF"), 511);
  assert.equal(segmentNumber("000000010000000100000000.00000028.backup"), 256);
  assert.equal(segmentNumber("00000002.history"), null);
  assert.equal(lsnSegment("0/3000028"), 3);
  assert.equal(lsnSegment("1/FF000000"), 511);
  assert.equal(seg(300), "00000001000000010000002C");
});

test("WAL prune keeps the window from the newest backup before it, and what older kept backups need", () => {
  const files = [
    ...Array.from({ length: 400 }, (_, i) => seg(i)),
    "00000002.history",
    `${seg(100)}.00000028.backup`,
  ];
  // backups 30 days ago (10..12), 20 days ago (100..101), 10 days ago (300..302); window 14 days
  const plan = planWalPrune(files, [backup(30, 10, 12), backup(20, 100, 101), backup(10, 300, 302)], {
    now,
    windowMs: 14 * day,
  });
  assert.equal(plan.keepFromSegment, 100, "the newest backup at or before the window's start");
  assert.deepEqual(plan.keptForBackups, [seg(10), seg(11), seg(12)]);
  assert.equal(plan.delete.length, 100 - 3);
  assert.ok(!plan.delete.includes("00000002.history"));
  assert.ok(!plan.delete.includes(`${seg(100)}.00000028.backup`));
  assert.ok(plan.delete.includes(seg(0)) && plan.delete.includes(seg(99)) && !plan.delete.includes(seg(10)));
});

test("WAL prune: every backup inside the window anchors at the oldest; none with a WAL range deletes nothing", () => {
  const files = Array.from({ length: 50 }, (_, i) => seg(i));
  const inside = planWalPrune(files, [backup(3, 20, 21), backup(1, 40, 41)], { now, windowMs: 14 * day });
  assert.equal(inside.keepFromSegment, 20);
  assert.deepEqual(inside.delete, files.slice(0, 20));
  const logicalOnly = planWalPrune(
    files,
    [{ kind: "logical", startedAt: now.toISOString(), startLsn: undefined, endLsn: undefined }],
    { now, windowMs: day },
  );
  assert.deepEqual(logicalOnly.delete, []);
});

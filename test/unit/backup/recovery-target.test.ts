import assert from "node:assert/strict";
import { test } from "node:test";
import {
  describeTarget,
  lsnPosition,
  normalLsn,
  recoveryTargetOf,
  recoveryTimeText,
} from "../../../src/backup/recovery-target.ts";
import {
  assertInWindow,
  clampToBackup,
  describeWindow,
  type RecoveryWindow,
} from "../../../src/backup/recovery-window.ts";
import { RecoveryWindowError } from "../../../src/backup/backup-error.ts";
import { previousSegment } from "../../../src/backup/wal-prune.ts";
import { UsageError } from "../../../src/errors.ts";

test("LSNs: parsed to byte positions, normalised as PostgreSQL prints them, anything else refused", () => {
  assert.equal(lsnPosition("0/3000148"), 0x3000148n);
  assert.equal(lsnPosition("16/B374D848"), (0x16n << 32n) + 0xb374d848n);
  assert.ok(lsnPosition("1/0") > lsnPosition("0/FFFFFFFF"));
  assert.equal(normalLsn("0/03000148"), "0/3000148");
  assert.equal(normalLsn(" 16/b374d848 "), "16/B374D848");
  for (const bad of ["", "3000148", "0/", "0/3000148/1", "G/0", "0/123456789", "0x0/1"])
    assert.throws(() => lsnPosition(bad), UsageError, bad);
});

test("recovery targets: latest, time or LSN, never two at once", () => {
  assert.deepEqual(recoveryTargetOf({}), { kind: "latest" });
  assert.deepEqual(recoveryTargetOf({ targetTime: "2026-12-01T16:40:00Z" }), {
    kind: "time",
    time: "2026-12-01T16:40:00Z",
  });
  assert.deepEqual(recoveryTargetOf({ targetLsn: "0/0300a" }), { kind: "lsn", lsn: "0/300A" });
  assert.throws(
    () => recoveryTargetOf({ targetTime: "2026-12-01T16:40:00Z", targetLsn: "0/1" }),
    /either a target time or a target LSN, not both/,
  );
  assert.equal(describeTarget({ kind: "lsn", lsn: "0/300A" }), "LSN 0/300A");
  assert.equal(recoveryTimeText("2026-12-01T16:40:00.5Z"), "2026-12-01 16:40:00.5+00");
});

const window: RecoveryWindow = {
  label: "b1",
  engine: "manifest",
  earliest: "2026-12-01T10:00:00.000Z",
  earliestLsn: "0/3000100",
  latest: "2026-12-01T11:00:00.000Z",
  latestLsn: "0/5000028",
  archivedSegments: 3,
  lastSegment: "000000010000000000000005",
};

test("the window guardrail: both ends inclusive, in LSN and in time, the window in every refusal", () => {
  const span = "2026-12-01T10:00:00.000Z (LSN 0/3000100) .. 2026-12-01T11:00:00.000Z (LSN 0/5000028)";
  assert.equal(describeWindow(window), span);
  for (const lsn of ["0/3000100", "0/4000000", "0/5000028"]) assertInWindow(window, { kind: "lsn", lsn });
  assertInWindow(window, { kind: "latest" });
  assertInWindow(window, { kind: "time", time: "2026-12-01T10:00:00Z" });
  assertInWindow(window, { kind: "time", time: "2026-12-01T12:00:00+01:00" });
  const refused = (target: Parameters<typeof assertInWindow>[1], message: string) =>
    assert.throws(
      () => assertInWindow(window, target),
      (error: unknown) =>
        error instanceof RecoveryWindowError && error.exitCode === 2 && error.message === message,
    );
  refused(
    { kind: "lsn", lsn: "0/30000FF" },
    `target LSN 0/30000FF is before backup b1 ended; recoverable window: ${span} (choose an older backup or a later LSN)`,
  );
  refused(
    { kind: "lsn", lsn: "0/5000029" },
    `target LSN 0/5000029 is after the last archived WAL record; recoverable window of backup b1: ${span}`,
  );
  refused(
    { kind: "time", time: "2026-12-01T09:59:59.999Z" },
    `target time 2026-12-01T09:59:59.999Z is before backup b1 ended; recoverable window: ${span} (choose an older backup or a later time)`,
  );
  refused(
    { kind: "time", time: "2026-12-01 11:30" },
    `target time "2026-12-01 11:30" is not an ISO 8601 time with a zone (e.g. 2026-12-01T16:40:00Z); recoverable window of backup b1: ${span}`,
  );
  const empty = { ...window, latest: undefined, latestLsn: undefined };
  assert.throws(
    () => assertInWindow(empty, { kind: "lsn", lsn: "0/3000100" }),
    /nothing archived after the backup/,
  );
  assert.throws(
    () => assertInWindow({ ...window, earliestLsn: undefined }, { kind: "lsn", lsn: "0/4000000" }),
    /has no recorded end LSN, so an LSN target cannot be checked/,
  );
});

test("archive ends before the backup's end are no window at all", () => {
  assert.deepEqual(
    clampToBackup(
      { latest: "2026-12-01T09:00:00Z", latestLsn: "0/2000000" },
      window.earliest,
      window.earliestLsn,
    ),
    { latest: undefined, latestLsn: undefined },
  );
  assert.deepEqual(
    clampToBackup(
      { latest: "2026-12-01T10:30:00Z", latestLsn: "0/4000000" },
      window.earliest,
      window.earliestLsn,
    ),
    { latest: "2026-12-01T10:30:00Z", latestLsn: "0/4000000" },
  );
});

test("previousSegment walks back across log ids on one timeline", () => {
  assert.equal(previousSegment("000000010000000000000005"), "000000010000000000000004");
  assert.equal(previousSegment("000000020000000100000000"), "0000000200000000000000FF");
  assert.equal(previousSegment("000000010000000100000000", 64 * 1024 * 1024), "00000001000000000000003F");
  assert.equal(previousSegment("000000010000000000000000"), undefined);
  assert.equal(previousSegment("00000002.history"), undefined);
});

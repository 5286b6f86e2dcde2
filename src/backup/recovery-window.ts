import { spawn } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { RecoveryWindowError } from "./backup-error.ts";
import { walDirOf } from "./archiving.ts";
import type { BackupEntry } from "./manifest.ts";
import { pgTool } from "./pg-tool.ts";
import { lsnPosition, type RecoveryTarget } from "./recovery-target.ts";
import { archivedSegmentBytes, lsnSegment, segmentNumber } from "./wal-prune.ts";

/**
 * What a physical backup plus the WAL archive can recover, in time and in WAL position: from the
 * backup's end (earlier targets are silently ignored by PostgreSQL, which then replays to the end of
 * WAL) to the last commit (time) and the last record (LSN) in the archive (later targets make recovery
 * fail). Both ends in the archive are read with pg_waldump, for either engine.
 */
export interface RecoveryWindow {
  label: string;
  engine: "manifest" | "pgbackrest";
  earliest: string;
  /** The backup's end LSN: recovery_target_lsn must not be before it. */
  earliestLsn: string | undefined;
  /** undefined when the archive holds no commit after the backup. */
  latest: string | undefined;
  /** Start of the last WAL record archived: the last position recovery can stop at. */
  latestLsn: string | undefined;
  archivedSegments: number;
  lastSegment: string | undefined;
}

/** How far back from the newest segment the ends of the archive are looked for. */
export const WINDOW_SCAN_SEGMENTS = 16;

const SEGMENT = /^[0-9A-F]{24}$/;
const COMMIT = /desc: COMMIT (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) UTC/;
const RECORD_LSN = /\blsn: ([0-9A-F]+\/[0-9A-F]+),/;

function isoFromWaldump(text: string): string {
  return `${text.replace(" ", "T")}Z`;
}

/** The last record's LSN and the last commit's time in one WAL segment file, streamed (bounded memory). */
async function segmentEnds(
  file: string,
  binDir?: string,
): Promise<{ lastRecordLsn: string | undefined; lastCommit: string | undefined }> {
  // pg_waldump exits 1 at the end of a segment's valid records ("invalid record length"): the records
  // it printed before that are what counts.
  const child = spawn(pgTool("pg_waldump", binDir), [file], { stdio: ["ignore", "pipe", "ignore"] });
  let lastRecordLsn: string | undefined;
  let lastCommit: string | undefined;
  const closed = new Promise<void>((resolve) => {
    child.once("error", () => resolve());
    child.once("close", () => resolve());
  });
  for await (const line of createInterface({ input: child.stdout })) {
    const lsn = RECORD_LSN.exec(line);
    if (lsn) lastRecordLsn = lsn[1];
    const commit = COMMIT.exec(line);
    if (commit) lastCommit = isoFromWaldump(commit[1]!);
  }
  await closed;
  return { lastRecordLsn, lastCommit };
}

/**
 * The last record and the last commit in an archive, given its segments newest first (fetch may
 * return undefined for a segment that cannot be read, which ends the scan). At most
 * WINDOW_SCAN_SEGMENTS segments are read.
 */
export async function archiveEnds(
  segments: readonly string[],
  fetch: (segment: string) => Promise<string | undefined>,
  binDir?: string,
): Promise<{ latestLsn: string | undefined; latest: string | undefined }> {
  let latestLsn: string | undefined;
  let latest: string | undefined;
  for (const segment of segments.slice(0, WINDOW_SCAN_SEGMENTS)) {
    const file = await fetch(segment);
    if (file === undefined) break;
    const ends = await segmentEnds(file, binDir);
    latestLsn ??= ends.lastRecordLsn;
    latest ??= ends.lastCommit;
    if (latestLsn !== undefined && latest !== undefined) break;
  }
  return { latestLsn, latest };
}

/** Drops ends of the archive that lie before the backup's end (nothing recoverable after it). */
export function clampToBackup(
  ends: { latestLsn: string | undefined; latest: string | undefined },
  earliest: string,
  earliestLsn: string | undefined,
): { latestLsn: string | undefined; latest: string | undefined } {
  const latest =
    ends.latest !== undefined && Date.parse(ends.latest) < Date.parse(earliest) ? undefined : ends.latest;
  const latestLsn =
    ends.latestLsn !== undefined &&
    earliestLsn !== undefined &&
    lsnPosition(ends.latestLsn) < lsnPosition(earliestLsn)
      ? undefined
      : ends.latestLsn;
  return { latest, latestLsn };
}

/** The window of a backup in pgshift's own repository (pg_basebackup + WAL archived with `cp`). */
export async function recoveryWindow(
  repository: string,
  entry: BackupEntry,
  binDir?: string,
): Promise<RecoveryWindow> {
  const walDir = walDirOf(repository);
  const segments = existsSync(walDir)
    ? readdirSync(walDir)
        .filter((f) => SEGMENT.test(f))
        .sort()
    : [];
  const usable = contiguousFrom(segments, entry, archivedSegmentBytes(walDir));
  const earliest = entry.serverEndTime ?? entry.finishedAt;
  const ends = clampToBackup(
    await archiveEnds([...usable].reverse(), async (s) => join(walDir, s), binDir),
    earliest,
    entry.endLsn,
  );
  return {
    label: entry.label,
    engine: "manifest",
    earliest,
    earliestLsn: entry.endLsn,
    ...ends,
    archivedSegments: segments.length,
    lastSegment: segments[segments.length - 1],
  };
}

/**
 * The segments recovery from this backup can replay: from the one holding its start LSN on, up to the
 * first gap (a segment pruned or never archived ends replay there). All segments when the start is unknown.
 */
function contiguousFrom(segments: readonly string[], entry: BackupEntry, segmentBytes: number): string[] {
  if (!entry.startLsn)
    return [...segments].sort(
      (a, b) => segmentNumber(a, segmentBytes)! - segmentNumber(b, segmentBytes)! || (a < b ? -1 : 1),
    );
  const start = lsnSegment(entry.startLsn, segmentBytes);
  const run: string[] = [];
  let expected = start;
  // by segment number: names sort by timeline first
  const ordered = [...segments].sort(
    (a, b) => segmentNumber(a, segmentBytes)! - segmentNumber(b, segmentBytes)! || (a < b ? -1 : 1),
  );
  for (const name of ordered) {
    const n = segmentNumber(name, segmentBytes)!;
    if (n < start) continue;
    // a timeline switch archives the same segment number again under the new timeline
    if (n === expected - 1 && run.length) run.push(name);
    else if (n === expected) {
      run.push(name);
      expected++;
    } else break;
  }
  return run;
}

/** "earliest (LSN a) .. latest (LSN b)": the window as every refusal shows it. */
export function describeWindow(window: RecoveryWindow): string {
  const lsn = (l: string | undefined) => (l ? ` (LSN ${l})` : "");
  const end =
    window.latest === undefined && window.latestLsn === undefined
      ? "(nothing archived after the backup)"
      : `${window.latest ?? "(no commit archived after the backup)"}${lsn(window.latestLsn)}`;
  return `${window.earliest}${lsn(window.earliestLsn)} .. ${end}`;
}

/** Throws RecoveryWindowError, naming the window, for a target PostgreSQL could not honour. */
export function assertInWindow(window: RecoveryWindow, target: RecoveryTarget): void {
  const span = describeWindow(window);
  if (target.kind === "latest") return;
  if (target.kind === "lsn") {
    const t = lsnPosition(target.lsn);
    if (window.earliestLsn === undefined)
      throw new RecoveryWindowError(
        `backup ${window.label} has no recorded end LSN, so an LSN target cannot be checked; recoverable window: ${span} (use a time target)`,
        window,
      );
    if (t < lsnPosition(window.earliestLsn))
      throw new RecoveryWindowError(
        `target LSN ${target.lsn} is before backup ${window.label} ended; recoverable window: ${span} (choose an older backup or a later LSN)`,
        window,
      );
    if (window.latestLsn === undefined || t > lsnPosition(window.latestLsn))
      throw new RecoveryWindowError(
        `target LSN ${target.lsn} is after the last archived WAL record; recoverable window of backup ${window.label}: ${span}`,
        window,
      );
    return;
  }
  const targetTime = target.time;
  const t = Date.parse(targetTime);
  if (Number.isNaN(t) || !/(Z|[+-]\d\d(:?\d\d)?)$/.test(targetTime.trim()))
    throw new RecoveryWindowError(
      `target time "${targetTime}" is not an ISO 8601 time with a zone (e.g. 2026-12-01T16:40:00Z); recoverable window of backup ${window.label}: ${span}`,
      window,
    );
  if (t < Date.parse(window.earliest))
    throw new RecoveryWindowError(
      `target time ${targetTime} is before backup ${window.label} ended; recoverable window: ${span} (choose an older backup or a later time)`,
      window,
    );
  if (window.latest === undefined || t > Date.parse(window.latest))
    throw new RecoveryWindowError(
      `target time ${targetTime} is after the last archived commit; recoverable window of backup ${window.label}: ${span}`,
      window,
    );
}

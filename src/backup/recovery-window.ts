import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { RecoveryWindowError } from "./backup-error.ts";
import { walDirOf } from "./archiving.ts";
import type { BackupEntry } from "./manifest.ts";
import { pgTool, runTool } from "./pg-tool.ts";
import { archivedSegmentBytes, lsnSegment, segmentNumber } from "./wal-prune.ts";

/**
 * What a physical backup plus the WAL archive can recover: from the backup's end (earlier targets
 * are silently ignored by PostgreSQL, which then replays to the end of WAL) to the last commit in the
 * archive (later targets make recovery fail). The last commit is read with pg_waldump.
 */
export interface RecoveryWindow {
  label: string;
  earliest: string;
  /** undefined when the archive holds no commit after the backup. */
  latest: string | undefined;
  archivedSegments: number;
  lastSegment: string | undefined;
}

const SEGMENT = /^[0-9A-F]{24}$/;
const COMMIT = /desc: COMMIT (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) UTC/g;

function isoFromWaldump(text: string): string {
  return `${text.replace(" ", "T")}Z`;
}

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
  let latest: string | undefined;
  const waldump = pgTool("pg_waldump", binDir);
  // Newest segments first; stop at the first one holding a commit.
  for (const segment of [...usable].reverse().slice(0, 16)) {
    const r = await runTool(waldump, ["--rmgr=Transaction", join(walDir, segment)]);
    const commits = [...r.stdout.matchAll(COMMIT)].map((m) => m[1]!);
    if (commits.length) {
      latest = isoFromWaldump(commits[commits.length - 1]!);
      break;
    }
  }
  const earliest = entry.serverEndTime ?? entry.finishedAt;
  if (latest !== undefined && Date.parse(latest) < Date.parse(earliest)) latest = undefined;
  return {
    label: entry.label,
    earliest,
    latest,
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

/** Throws RecoveryWindowError, naming the window, for a target PostgreSQL could not honour. */
export function assertInWindow(window: RecoveryWindow, targetTime: string): void {
  const t = Date.parse(targetTime);
  const span = `${window.earliest} .. ${window.latest ?? "(no commit archived after the backup)"}`;
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

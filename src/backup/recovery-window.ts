import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { RecoveryWindowError } from "./backup-error.ts";
import { walDirOf } from "./archiving.ts";
import type { BackupEntry } from "./manifest.ts";
import { pgTool, runTool } from "./pg-tool.ts";

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
  let latest: string | undefined;
  const waldump = pgTool("pg_waldump", binDir);
  // Newest segments first; stop at the first one holding a commit.
  for (const segment of [...segments].reverse().slice(0, 16)) {
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

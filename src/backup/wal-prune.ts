import { existsSync, readdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { walDirOf } from "./archiving.ts";
import type { BackupEntry } from "./manifest.ts";

/** Archived WAL kept by default: every point in time of the last 14 days stays recoverable. */
export const DEFAULT_WAL_WINDOW_MS = 14 * 24 * 3600 * 1000;
const DEFAULT_SEGMENT_BYTES = 16 * 1024 * 1024;

/** A WAL segment file name (timeline, log, segment in hex) and companions: `.backup`, `.partial`. */
const WAL_FILE = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})(\.[0-9A-F]{8}\.backup|\.partial)?$/;

/** Segments per log id for a segment size (256 for 16 MiB). */
const perLog = (segmentBytes: number): number => 2 ** 32 / segmentBytes;

/** The segment number (across timelines) of a WAL file name, or null for other files (history). */
export function segmentNumber(name: string, segmentBytes = DEFAULT_SEGMENT_BYTES): number | null {
  const m = WAL_FILE.exec(name);
  if (!m) return null;
  return parseInt(m[2]!, 16) * perLog(segmentBytes) + parseInt(m[3]!, 16);
}

/** The file name of the segment before `name` on the same timeline; undefined for the first one. */
export function previousSegment(name: string, segmentBytes = DEFAULT_SEGMENT_BYTES): string | undefined {
  const m = WAL_FILE.exec(name);
  const n = segmentNumber(name, segmentBytes);
  if (!m || n === null || n === 0) return undefined;
  const hex = (v: number) => v.toString(16).toUpperCase().padStart(8, "0");
  return `${m[1]}${hex(Math.floor((n - 1) / perLog(segmentBytes)))}${hex((n - 1) % perLog(segmentBytes))}`;
}

/** The segment number holding an LSN ("16/B374D848"). */
export function lsnSegment(lsn: string, segmentBytes = DEFAULT_SEGMENT_BYTES): number {
  const [high, low] = lsn.split("/");
  return Math.floor((parseInt(high!, 16) * 2 ** 32 + parseInt(low!, 16)) / segmentBytes);
}

/** The size of the repository's segments: one full (uncompressed) segment's file size, else 16 MiB. */
export function archivedSegmentBytes(walDir: string): number {
  if (!existsSync(walDir)) return DEFAULT_SEGMENT_BYTES;
  for (const name of readdirSync(walDir))
    if (/^[0-9A-F]{24}$/.test(name)) {
      const size = statSync(join(walDir, name)).size;
      // a power of two between 1 MiB and 1 GiB: what initdb --wal-segsize allows
      if (size >= 2 ** 20 && size <= 2 ** 30 && (size & (size - 1)) === 0) return size;
    }
  return DEFAULT_SEGMENT_BYTES;
}

export interface WalPrunePlan {
  /** Every segment from here on is kept: the start of the newest physical backup at or before the window's start (or of the oldest kept one). */
  keepFromSegment: number | null;
  /** Older segments kept because a kept backup needs them to become consistent (its start..end). */
  keptForBackups: string[];
  delete: string[];
}

/**
 * Which archived WAL files may go. Point-in-time recovery to any moment of the window (now − windowMs ..
 * now) needs every segment from the start of the newest physical backup taken at or before the window's
 * start (the oldest kept one when none is that old). A kept backup older than that needs only its own
 * start..end segments to be restored to the moment it ended. Timeline history files always stay. Pure.
 */
export function planWalPrune(
  files: readonly string[],
  kept: readonly Pick<BackupEntry, "kind" | "startedAt" | "startLsn" | "endLsn">[],
  options: { now: Date; windowMs: number; segmentBytes?: number },
): WalPrunePlan {
  const size = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
  const physical = kept
    .filter((b) => b.kind === "physical" && b.startLsn && b.endLsn)
    .sort((a, b) => (a.startedAt < b.startedAt ? -1 : 1));
  // no physical backup with a known WAL range: nothing can be proven unneeded
  if (physical.length === 0) return { keepFromSegment: null, keptForBackups: [], delete: [] };
  const windowStart = options.now.getTime() - options.windowMs;
  const anchor = [...physical].reverse().find((b) => Date.parse(b.startedAt) <= windowStart) ?? physical[0]!;
  const keepFrom = lsnSegment(anchor.startLsn!, size);
  const ranges = physical
    .filter((b) => b !== anchor)
    .map((b) => [lsnSegment(b.startLsn!, size), lsnSegment(b.endLsn!, size)] as const);
  const keptForBackups: string[] = [];
  const toDelete: string[] = [];
  for (const name of files) {
    const n = segmentNumber(name, size);
    if (n === null || n >= keepFrom) continue;
    if (ranges.some(([start, end]) => n >= start && n <= end)) keptForBackups.push(name);
    else toDelete.push(name);
  }
  return { keepFromSegment: keepFrom, keptForBackups: keptForBackups.sort(), delete: toDelete.sort() };
}

export interface WalPruneResult extends WalPrunePlan {
  dryRun: boolean;
}

/** Applies planWalPrune to the repository's archived WAL (deletes nothing with dryRun). */
export function pruneArchivedWal(
  repository: string,
  kept: readonly BackupEntry[],
  options: { now: Date; windowMs: number; dryRun: boolean },
): WalPruneResult {
  const walDir = walDirOf(repository);
  const files = existsSync(walDir) ? readdirSync(walDir) : [];
  const plan = planWalPrune(files, kept, {
    now: options.now,
    windowMs: options.windowMs,
    segmentBytes: archivedSegmentBytes(walDir),
  });
  if (!options.dryRun) for (const name of plan.delete) rmSync(join(walDir, name), { force: true });
  return { ...plan, dryRun: options.dryRun };
}

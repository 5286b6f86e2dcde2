import type Database from "better-sqlite3";
import type { SqliteTable } from "../sources/sqlite/sqlite-catalog.ts";
import { quoteSqlite as q, type RowRange } from "../sources/sqlite/sqlite-rows.ts";
import {
  mergeTableStats,
  scanRowid,
  scanTable,
  splitRowidRange,
  type TableStats,
} from "../sources/sqlite/sqlite-scan.ts";
import type { ChunkWorker } from "./chunk-workers.ts";
import { runParallel } from "./run-context.ts";

/**
 * Rowid tables spanning at least this many rowids are scanned in one range per scan thread: below
 * it a table scans in well under a tenth of a second, less than the lanes gain from splitting it.
 */
export const SCAN_SPLIT_MIN_ROWIDS = 50_000;

/** One scan request: a whole table or one rowid range of it. */
export interface ScanPiece {
  /** Index of the table in the list given. */
  table: number;
  /** Index of the range among the table's pieces, in rowid order. */
  part: number;
  range?: RowRange;
  /** Rowids the piece spans; undefined when unknown (WITHOUT ROWID, hidden rowid). */
  span?: bigint;
}

/**
 * The scan requests for `lanes` threads: rowid tables spanning SCAN_SPLIT_MIN_ROWIDS or more are cut
 * into one rowid range per lane (the rowid b-tree gives min and max without reading rows), so that a
 * database whose rows sit in one table keeps every lane busy. Largest first, so that lanes end
 * together; tables of unknown size (they cannot be split) start before all others.
 */
export function scanPieces(
  db: Database.Database,
  tables: readonly SqliteTable[],
  lanes: number,
): ScanPiece[] {
  const pieces: ScanPiece[] = [];
  tables.forEach((table, index) => {
    const rowid = lanes > 1 ? scanRowid(table) : undefined;
    if (rowid === undefined) {
      pieces.push({ table: index, part: 0 });
      return;
    }
    const [min, max] = db
      .prepare(`select min(${rowid}), max(${rowid}) from ${q(table.name)}`)
      .raw(true)
      .safeIntegers(true)
      .get() as [bigint | null, bigint | null];
    const span = min === null || max === null ? 0n : max - min + 1n;
    const ranges = span >= SCAN_SPLIT_MIN_ROWIDS ? splitRowidRange(min!, max!, lanes) : [{}];
    const share = span / BigInt(ranges.length);
    ranges.forEach((range, part) => {
      pieces.push({ table: index, part, span: share, ...(ranges.length > 1 ? { range } : {}) });
    });
  });
  // Unknown sizes rank above any span; the sort is stable: equal pieces keep table and rowid order.
  const size = (piece: ScanPiece) => piece.span ?? 2n ** 64n;
  return pieces.sort((a, b) => (size(a) > size(b) ? -1 : size(a) < size(b) ? 1 : 0));
}

/**
 * Scans the tables' stored values (scanTable) on the scan threads, big tables split by rowid range
 * and merged back; in the calling thread, each table whole, when there are no threads. The map
 * holds the tables in the order given, whatever order the scans end in.
 */
export async function scanTables(
  db: Database.Database,
  tables: readonly SqliteTable[],
  workers: readonly ChunkWorker[],
): Promise<Map<string, TableStats>> {
  const parts: TableStats[][] = tables.map(() => []);
  if (workers.length === 0) tables.forEach((table, i) => parts[i]!.push(scanTable(db, table)));
  else
    await runParallel(scanPieces(db, tables, workers.length), workers.length, async (piece, lane) => {
      parts[piece.table]![piece.part] = await workers[lane]!.scan(tables[piece.table]!, piece.range);
    });
  return new Map(tables.map((table, i) => [table.name, mergeTableStats(parts[i]!)]));
}

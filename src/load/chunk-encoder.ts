import type Database from "better-sqlite3";
import { PgshiftError } from "../errors.ts";
import type { ChunkPlan, TablePlan } from "../schema/plan.ts";
import { iterateRows, readRawBytes } from "../sources/sqlite/sqlite-rows.ts";
import type { BadValuePolicy } from "./quarantine.ts";
import { createRowEncoder, previewValue, type RawText, rowToQuarantineJson } from "./row-encoder.ts";

/** COPY text buffered before it is handed on (large chunks: one write per row is ~40x slower). */
export const COPY_BUFFER_CHARS = 1 << 20;

export interface ChunkJob {
  table: TablePlan;
  chunk: ChunkPlan;
  policy: BadValuePolicy;
}

export interface QuarantinedRow {
  location: string;
  column: string;
  reason: string;
  /** The whole row as "sqlite-row-json", UTF-8. */
  raw: Uint8Array;
}

export interface ChunkOutput {
  rowsRead: number;
  quarantined: QuarantinedRow[];
  /** Values converted per column, in the plan's column order. */
  conversions: number[];
}

/** Receives COPY text (as a string in-process, as UTF-8 bytes from a worker) and the rows read so far. */
export type CopySink = (data: string, rowsRead: number) => Promise<void> | void;

export class BadValueError extends PgshiftError {
  constructor(message: string, details: Record<string, unknown>) {
    super("bad_value", message, { details });
  }
}

function keyOf(table: TablePlan, row: readonly unknown[]): string {
  const values = table.primaryKey.map((name) => {
    const index = table.columns.findIndex((c) => c.targetName === name);
    return previewValue(row[index + 1]);
  });
  return `(${values.join(", ")})`;
}

/**
 * Reads one chunk's rows from SQLite and encodes them as COPY text, handing it to `sink` in large
 * pieces. Unrepresentable values fail the chunk (policy "fail", with table, rowid, column, value) or
 * put the whole row aside byte-exact (policy "quarantine"). Runs in the main thread or in a worker.
 */
export async function encodeChunk(
  db: Database.Database,
  job: ChunkJob,
  sink: CopySink,
): Promise<ChunkOutput> {
  const { table, chunk } = job;
  const keyColumns = table.primaryKey.map((target) =>
    table.columns.findIndex((c) => c.targetName === target),
  );
  const rawText: RawText = (column, row) => {
    const sourceColumn = table.columns[column]!.sourceName;
    if (!table.withoutRowid)
      return row[0] === null || row[0] === undefined
        ? null
        : readRawBytes(db, table.sourceName, sourceColumn, {
            rowid: row[0] as bigint,
          });
    if (keyColumns.length === 0 || keyColumns.includes(-1)) return null;
    return readRawBytes(db, table.sourceName, sourceColumn, {
      key: keyColumns.map((i) => [table.columns[i]!.sourceName, row[i + 1]] as [string, unknown]),
    });
  };
  const encoder = createRowEncoder(table.columns, rawText);
  const quarantined: QuarantinedRow[] = [];
  let read = 0;
  let buffer = "";
  const rows = iterateRows(
    db,
    {
      table: table.sourceName,
      columns: table.columns.map((c) => c.sourceName),
      withoutRowid: table.withoutRowid,
      bigIntegers: table.bigIntegers,
    },
    {
      ...(chunk.afterRowid !== undefined ? { afterRowid: BigInt(chunk.afterRowid) } : {}),
      ...(chunk.throughRowid !== undefined ? { throughRowid: BigInt(chunk.throughRowid) } : {}),
    },
  );
  for (const row of rows) {
    read++;
    const line = encoder.encode(row);
    if (line === undefined) {
      const problem = encoder.problem!;
      encoder.problem = undefined;
      const column = table.columns[problem.column]!;
      const location = row[0] === null ? `key ${keyOf(table, row)}` : `rowid ${row[0]}`;
      const value = previewValue(row[problem.column + 1]);
      if (job.policy === "fail") {
        throw new BadValueError(
          `table ${table.sourceName}, ${location}, column ${column.sourceName}: ${problem.reason} (value ${value}); nothing of this chunk was loaded. Pass --on-bad-value quarantine to load the other rows and keep this one in pgshift.quarantine`,
          {
            table: table.sourceName,
            location,
            column: column.sourceName,
            reason: problem.reason,
            value,
          },
        );
      }
      quarantined.push({
        location,
        column: column.sourceName,
        reason: problem.reason,
        raw: Buffer.from(rowToQuarantineJson(table.columns, row, rawText), "utf8"),
      });
      continue;
    }
    buffer += line;
    if (buffer.length >= COPY_BUFFER_CHARS) {
      const data = buffer;
      buffer = "";
      await sink(data, read);
    }
  }
  if (buffer) await sink(buffer, read);
  return { rowsRead: read, quarantined, conversions: encoder.conversions };
}

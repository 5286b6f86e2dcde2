import type Database from "better-sqlite3";
import { PgshiftError } from "../errors.ts";
import type { ChunkPlan, TablePlan } from "../schema/plan.ts";
import { iterateRows, quoteSqlite, readRawBytes, rowidOf } from "../sources/sqlite/sqlite-rows.ts";
import type { BadValuePolicy } from "./quarantine.ts";
import { createRowEncoder, previewValue, type RawText, rowToQuarantineJson } from "./row-encoder.ts";
import { encodingColumns, type RowSealer } from "./row-sealer.ts";
import { planSqlLines, planWholeRows } from "./sql-lines.ts";

/** COPY text buffered before it is handed on (large chunks: one write per row is ~40x slower). */
export const COPY_BUFFER_CHARS = 1 << 20;
/** Rows read per query on the SQL fast path. */
const SQL_BATCH_ROWS = 2000;
/** Rows per batch on the whole-row path at first, and at most (the batch adapts to a megabyte of text). */
const WHOLE_BATCH_ROWS = 2000;
const MAX_WHOLE_BATCH_ROWS = 50_000;
const MAX_ROWID = 2n ** 63n - 1n;

export interface ChunkJob {
  table: TablePlan;
  chunk: ChunkPlan;
  policy: BadValuePolicy;
  /** Let SQLite build the COPY text of the columns it can encode exactly (sql-lines.ts). Default true. */
  sqlLines?: boolean;
  /**
   * Let SQLite build whole batches of COPY text when it can encode every column (planWholeRows). Its
   * text is not checked for invalid UTF-8 before PostgreSQL sees it, so a chunk that PostgreSQL
   * refuses is encoded again with this off. Default: as sqlLines.
   */
  wholeRows?: boolean;
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

/** Receives COPY text (a string, or UTF-8 bytes) and the rows read so far. */
export type CopySink = (data: string | Uint8Array, rowsRead: number) => Promise<void> | void;

export class BadValueError extends PgshiftError {
  constructor(message: string, details: Record<string, unknown>) {
    super("bad_value", message, { details });
  }
}

/** Whether the database stores text as UTF-8 (SQL-built COPY text is sent as the stored bytes). */
function utf8Database(db: Database.Database): boolean {
  return db.pragma("encoding", { simple: true }) === "UTF-8";
}

function firstRowid(db: Database.Database, table: string, rowid: string): bigint | null {
  return db
    .prepare(`select min(${rowid}) from ${quoteSqlite(table)}`)
    .pluck()
    .safeIntegers(true)
    .get() as bigint | null;
}

/** Reads one whole raw row `[rowid, ...values]` by rowid. */
function readOneRow(
  db: Database.Database,
  source: { table: string; columns: readonly string[]; bigIntegers: boolean },
): Database.Statement {
  const columnList = source.columns.map(quoteSqlite).join(", ");
  const rowid = rowidOf(source.table, source.columns);
  return db
    .prepare(`select ${rowid}, ${columnList} from ${quoteSqlite(source.table)} where ${rowid} = ?`)
    .raw(true)
    .safeIntegers(source.bigIntegers);
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
  sealer?: RowSealer,
): Promise<ChunkOutput> {
  const { table, chunk } = job;
  const keyColumns = table.primaryKey.map((target) =>
    table.columns.findIndex((c) => c.targetName === target),
  );
  // The name that reaches the row id (a column may take "rowid"); unused by WITHOUT ROWID tables.
  const rowidName = table.withoutRowid
    ? "rowid"
    : rowidOf(
        table.sourceName,
        table.columns.map((c) => c.sourceName),
      );
  const rawText: RawText = (column, row) => {
    const sourceColumn = table.columns[column]!.sourceName;
    if (!table.withoutRowid)
      return row[0] === null || row[0] === undefined
        ? null
        : readRawBytes(db, table.sourceName, sourceColumn, {
            rowid: row[0] as bigint,
            rowidName,
          });
    if (keyColumns.length === 0 || keyColumns.includes(-1)) return null;
    return readRawBytes(db, table.sourceName, sourceColumn, {
      key: keyColumns.map((i) => [table.columns[i]!.sourceName, row[i + 1]] as [string, unknown]),
    });
  };
  // Encrypted columns are checked with their own types, then sealed (row-sealer.ts): JavaScript only.
  const encoder = createRowEncoder(sealer ? encodingColumns(table.columns) : table.columns, rawText);
  const quarantined: QuarantinedRow[] = [];
  let read = 0;
  let buffer = "";
  const range = {
    ...(chunk.afterRowid !== undefined ? { afterRowid: BigInt(chunk.afterRowid) } : {}),
    ...(chunk.throughRowid !== undefined ? { throughRowid: BigInt(chunk.throughRowid) } : {}),
  };
  const source = {
    table: table.sourceName,
    columns: table.columns.map((c) => c.sourceName),
    withoutRowid: table.withoutRowid,
    bigIntegers: table.bigIntegers,
  };
  /** Encodes one whole raw row in JavaScript; undefined when it was put aside (policy "quarantine"). */
  const encodeRow = (row: unknown[]): string | undefined => {
    const line = encoder.encode(row);
    if (line !== undefined && !sealer) return line;
    const sealed = line === undefined ? undefined : sealer!.seal(row, line);
    if (sealed !== undefined) return sealed;
    const problem = (encoder.problem ?? sealer?.problem)!;
    encoder.problem = undefined;
    if (sealer) sealer.problem = undefined;
    const column = table.columns[problem.column]!;
    const location = row[0] === null ? `key ${keyOf(table, row)}` : `rowid ${row[0]}`;
    // an encrypted column's value stays out of messages and reports
    const value = column.encrypted ? "not shown: encrypted column" : previewValue(row[problem.column + 1]);
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
    return undefined;
  };
  const whole =
    sealer || job.sqlLines === false || job.wholeRows === false || !utf8Database(db)
      ? undefined
      : planWholeRows(table);
  if (whole) {
    const bounded = range.throughRowid !== undefined;
    const one = readOneRow(db, source);
    const flagged = new Array<number>(whole.counted.length).fill(0);
    let limit = WHOLE_BATCH_ROWS;
    let from: bigint | null =
      range.afterRowid !== undefined
        ? range.afterRowid < MAX_ROWID
          ? range.afterRowid + 1n
          : null
        : firstRowid(db, table.sourceName, rowidName);
    const statements = new Map<number, Database.Statement>();
    const batchOf = (rows: number) => {
      let statement = statements.get(rows);
      if (!statement) {
        statement = db.prepare(whole.sql(bounded, rows)).raw(true).safeIntegers(true);
        statements.set(rows, statement);
      }
      return statement;
    };
    while (from !== null) {
      let result: unknown[];
      try {
        result = (
          bounded ? batchOf(limit).get(from, range.throughRowid) : batchOf(limit).get(from)
        ) as unknown[];
      } catch (error) {
        // A batch too large for one SQLite value (huge blobs): fewer rows at a time.
        if ((error as { code?: string }).code === "SQLITE_TOOBIG" && limit > 1) {
          limit = Math.max(1, Math.floor(limit / 8));
          continue;
        }
        throw error;
      }
      const rows = Number(result[0] as bigint);
      if (rows === 0) break;
      const last = result[1] as bigint;
      from = rows < limit || last === MAX_ROWID ? null : last + 1n;
      read += rows;
      for (let k = 0; k < flagged.length; k++) flagged[k]! += Number((result[4 + k] as bigint | null) ?? 0n);
      let pieces: string | Uint8Array = (result[2] as Buffer | null) ?? "";
      const slow = result[3] as string | null;
      if (slow !== null) {
        let text = "";
        for (const rowid of slow.split(",")) {
          const encoded = encodeRow(one.get(BigInt(rowid)) as unknown[]);
          if (encoded !== undefined) text += encoded;
        }
        pieces = pieces.length === 0 ? text : Buffer.concat([pieces as Buffer, Buffer.from(text, "utf8")]);
      }
      // Keep each batch near a megabyte of COPY text, whatever the rows' width.
      const bytes = pieces.length;
      if (bytes < COPY_BUFFER_CHARS / 2 && limit < MAX_WHOLE_BATCH_ROWS)
        limit = Math.min(MAX_WHOLE_BATCH_ROWS, limit * 2);
      else if (bytes > COPY_BUFFER_CHARS * 4 && limit > 1) limit = Math.max(1, Math.floor(limit / 2));
      if (pieces.length > 0) await sink(pieces, read);
    }
    const conversions = encoder.conversions.slice();
    whole.counted.forEach((column, k) => {
      conversions[column]! += flagged[k]!;
    });
    return { rowsRead: read, quarantined, conversions };
  }
  const lines = sealer || job.sqlLines === false ? undefined : planSqlLines(table);
  if (!lines) {
    for (const row of iterateRows(db, source, range)) {
      read++;
      const line = encodeRow(row);
      if (line === undefined) continue;
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

  // SQL fast path (see sql-lines.ts): values JavaScript still encodes use a second encoder whose
  // stored-byte checks send the row to the slow path, and whose counts are undone when a row goes there.
  let reread = false;
  const partial = createRowEncoder(table.columns, () => {
    reread = true;
    return null;
  });
  const counts = partial.conversions;
  const parts = lines.parts;
  const partCount = parts.length;
  const jsParts = parts.flatMap((column, part) => (column >= 0 ? [part] : []));
  const saved = new Array<number>(jsParts.length).fill(0);
  /** Tab before a JavaScript cell that follows another JavaScript cell; newline after a last one. */
  const before = parts.map((column, part) => (column >= 0 && part > 0 && parts[part - 1]! >= 0 ? "\t" : ""));
  const newline = parts[partCount - 1]! >= 0 ? "\n" : "";
  const flagged = new Array<number>(lines.counted.length).fill(0);
  // Read in batches of rowids with .all(): a quarter cheaper than stepping an iterator row by row, and
  // no statement stays open across the awaits of the sink.
  const bounded = range.throughRowid !== undefined;
  const batch = db
    .prepare(
      `${lines.sql} where ${lines.rowid} >= ?${bounded ? ` and ${lines.rowid} <= ?` : ""} order by ${lines.rowid} limit ${SQL_BATCH_ROWS}`,
    )
    .raw(true)
    .safeIntegers(table.bigIntegers);
  const one = readOneRow(db, source);
  // The next batch starts at the rowid after the last one read (the range's own start: its lower bound
  // + 1, or the table's smallest rowid); rowids are signed 64-bit, nothing follows the largest.
  let from: bigint | null =
    range.afterRowid !== undefined
      ? range.afterRowid < MAX_ROWID
        ? range.afterRowid + 1n
        : null
      : firstRowid(db, table.sourceName, lines.rowid);
  while (from !== null) {
    const rows = (bounded ? batch.all(from, range.throughRowid) : batch.all(from)) as unknown[][];
    if (rows.length === 0) break;
    const last = BigInt(rows[rows.length - 1]![0] as bigint | number);
    from = rows.length < SQL_BATCH_ROWS || last === MAX_ROWID ? null : last + 1n;
    for (const row of rows) {
      read++;
      let line = "";
      let slow = false;
      for (let j = 0; j < jsParts.length; j++) saved[j] = counts[parts[jsParts[j]!]!]!;
      for (let p = 0; p < partCount; p++) {
        const column = parts[p]!;
        const value = row[p + 2];
        if (column < 0) {
          if (value === null) {
            slow = true;
            break;
          }
          line += value as string;
        } else {
          const cell = partial.encodeValue(column, value);
          if (cell === undefined || reread) {
            slow = true;
            break;
          }
          line += before[p] + cell;
        }
      }
      if (slow) {
        reread = false;
        partial.problem = undefined;
        for (let j = 0; j < jsParts.length; j++) counts[parts[jsParts[j]!]!] = saved[j]!;
        const full = one.get(row[0]) as unknown[];
        const encoded = encodeRow(full);
        if (encoded === undefined) continue;
        buffer += encoded;
      } else {
        const flags = row[1] as number | bigint;
        if (flags !== 0 && flags !== 0n) {
          const bits = Number(flags);
          for (let b = 0; b < flagged.length; b++) if (bits & (1 << b)) flagged[b]!++;
        }
        buffer += line + newline;
      }
      if (buffer.length >= COPY_BUFFER_CHARS) {
        const data = buffer;
        buffer = "";
        await sink(data, read);
      }
    }
  }
  if (buffer) await sink(buffer, read);
  const conversions = encoder.conversions.map((n, i) => n + counts[i]!);
  lines.counted.forEach((column, b) => {
    conversions[column]! += flagged[b]!;
  });
  return { rowsRead: read, quarantined, conversions };
}

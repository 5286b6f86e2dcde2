import type pg from "pg";
import { type CopyValue, copyRows } from "../pg/copy-writer.ts";
import { withTransaction } from "../pg/pool.ts";
import { quoteIdent, quoteQualified } from "../pg/quote.ts";
import type { CutoverBackfillSink } from "./backfill.ts";

export interface UpsertSinkOptions<R> {
  schema?: string;
  table: string;
  /** The conflict target: the table's primary key or a unique constraint's columns. */
  keyColumns: readonly string[];
  /** Columns written, including the key columns. */
  columns: readonly string[];
  /** One record as values in `columns` order. */
  toRow: (record: R) => readonly CopyValue[];
  /**
   * "update" (default) overwrites rows next already has; "keep" leaves them alone — the safer choice
   * during dual-write, where a row already in next was written by the application after the backfill
   * read legacy, so it is at least as new as the record being copied.
   */
  onConflict?: "update" | "keep";
}

/**
 * A backfill sink for any PostgreSQL table: COPY the batch into a temporary table, then one
 * INSERT ... SELECT ... ON CONFLICT into the target, in one transaction. Idempotent; the last
 * record wins when a batch holds one key twice.
 */
export function upsertSink<R>(pool: pg.Pool, options: UpsertSinkOptions<R>): CutoverBackfillSink<R> {
  const target = quoteQualified(options.schema, options.table);
  const columns = options.columns.map(quoteIdent).join(", ");
  const keys = options.keyColumns.map(quoteIdent).join(", ");
  const others = options.columns.filter((c) => !options.keyColumns.includes(c));
  const conflict =
    options.onConflict === "keep" || others.length === 0
      ? "do nothing"
      : `do update set ${others.map((c) => `${quoteIdent(c)} = excluded.${quoteIdent(c)}`).join(", ")}`;
  return async (batch) =>
    withTransaction(pool, async (client) => {
      const temp = `pgshift_backfill_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
      await client.query(
        `create temp table ${quoteIdent(temp)} on commit drop as select ${columns} from ${target} with no data`,
      );
      const copied = await copyRows(
        client,
        { table: temp, columns: options.columns },
        batch.map(options.toRow),
      );
      await client.query(
        `insert into ${target} (${columns})
         select distinct on (${keys}) ${columns} from ${quoteIdent(temp)} order by ${keys}, ctid desc
         on conflict (${keys}) ${conflict}`,
      );
      return copied;
    });
}

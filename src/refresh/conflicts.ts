import type pg from "pg";
import { PgshiftError, UsageError } from "../errors.ts";
import { quoteIdent, quoteQualified } from "../pg/quote.ts";

/** What to do with rows changed locally since the last refresh that the delta changes too. */
export type ConflictPolicy = "fail" | "source-wins" | "keep-local";
export const CONFLICT_POLICIES: readonly ConflictPolicy[] = ["fail", "source-wins", "keep-local"];

const SAMPLE = 100;

export function assertConflictPolicy(value: string): ConflictPolicy {
  if (!(CONFLICT_POLICIES as readonly string[]).includes(value))
    throw new UsageError(`--on-conflict must be fail, source-wins or keep-local, not "${value}"`);
  return value as ConflictPolicy;
}

export interface ConflictReport {
  policy: ConflictPolicy;
  /** Rows of the live version whose document differs from what the last refresh wrote (or added/removed locally). */
  localChanges: number;
  /** Local changes the delta changes too. */
  conflicts: number;
  /** First conflicting keys, at most 100. */
  keys: string[];
  /** false when the live version has no recorded row hashes (e.g. a schema adopted by the first refresh). */
  recorded: boolean;
}

/** The delta changes rows that were changed locally since the last refresh; nothing went live. */
export class RefreshConflictError extends PgshiftError {
  constructor(
    readonly table: string,
    readonly keys: string[],
    count: number,
  ) {
    super(
      "refresh_conflict",
      `${count} row(s) of ${table} changed locally since the last refresh are changed by the delta too (first keys: ${keys.slice(0, 10).join(", ")}); pass --on-conflict source-wins or keep-local`,
      { details: { table, keys, count } },
    );
  }
}

/** Records key -> md5(doc::text) of a version's table, so the next delta can tell local changes. */
export async function recordRowHashes(
  pool: pg.Pool,
  options: { dataset: string; version: number; schema: string; table: string; keyColumn: string },
): Promise<void> {
  await pool.query(
    `insert into pgshift.refresh_row_hashes (dataset, version, tbl, key, doc_md5)
     select $1, $2, $3, ${quoteIdent(options.keyColumn)}::text, md5(doc::text) from ${quoteQualified(options.schema, options.table)}`,
    [options.dataset, options.version, options.table],
  );
}

/** Keys of live rows whose document differs from the recorded one (changed, added or deleted locally). */
export async function localChanges(
  pool: pg.Pool,
  options: { dataset: string; liveVersion: number; live: string; table: string; keyColumn: string },
): Promise<{ recorded: boolean; keys: string[] }> {
  const { rows: recordedRows } = await pool.query(
    "select 1 from pgshift.refresh_row_hashes where dataset = $1 and version = $2 and tbl = $3 limit 1",
    [options.dataset, options.liveVersion, options.table],
  );
  if (recordedRows.length === 0) return { recorded: false, keys: [] };
  const key = quoteIdent(options.keyColumn);
  const { rows } = await pool.query(
    `select coalesce(l.k, h.key) as k from
       (select ${key}::text as k, md5(doc::text) as h from ${quoteQualified(options.live, options.table)}) l
       full join (select key, doc_md5 from pgshift.refresh_row_hashes where dataset = $1 and version = $2 and tbl = $3) h
         on h.key = l.k
      where l.h is distinct from h.doc_md5`,
    [options.dataset, options.liveVersion, options.table],
  );
  return { recorded: true, keys: rows.map((r) => r.k) };
}

/**
 * After the delta was applied to next: the locally changed keys whose row the delta changed as well.
 * keep-local puts the live row back for those keys; source-wins keeps the delta's; fail throws.
 */
export async function resolveConflicts(
  pool: pg.Pool,
  options: {
    live: string;
    next: string;
    table: string;
    keyColumn: string;
    changedLocally: string[];
    policy: ConflictPolicy;
    recorded: boolean;
  },
): Promise<ConflictReport> {
  const key = quoteIdent(options.keyColumn);
  const liveTable = quoteQualified(options.live, options.table);
  const nextTable = quoteQualified(options.next, options.table);
  const { rows } = await pool.query(
    `select l.${key}::text as k from ${liveTable} l join ${nextTable} n on n.${key} = l.${key}
      where l.${key}::text = any($1::text[]) and n.doc is distinct from l.doc order by 1`,
    [options.changedLocally],
  );
  const conflicts = rows.map((r) => r.k as string);
  if (conflicts.length && options.policy === "fail")
    throw new RefreshConflictError(options.table, conflicts.slice(0, SAMPLE), conflicts.length);
  if (conflicts.length && options.policy === "keep-local") {
    await pool.query(`delete from ${nextTable} where ${key}::text = any($1::text[])`, [conflicts]);
    await pool.query(
      `insert into ${nextTable} select * from ${liveTable} where ${key}::text = any($1::text[])`,
      [conflicts],
    );
  }
  return {
    policy: options.policy,
    localChanges: options.changedLocally.length,
    conflicts: conflicts.length,
    keys: conflicts.slice(0, SAMPLE),
    recorded: options.recorded,
  };
}

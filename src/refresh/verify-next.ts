import type { ForeignKeyCheck } from "./foreign-keys.ts";
import type pg from "pg";
import { withClient } from "../pg/pool.ts";
import { quoteIdent, quoteQualified } from "../pg/quote.ts";
import { verifyDocuments } from "../verify/document-verify.ts";
import type { DatasetTable } from "./dataset.ts";

export interface TableCheck {
  table: string;
  rows: number;
  identical: boolean;
  sourceRows: number;
  missingRows: number;
  extraRows: number;
  changedRows: number;
  /** Rows the table should hold (delta: live + inserted - deleted), when known. */
  expectedRows?: number;
  /** Delta builds: the rows the delta did not touch, compared with live's by aggregated checksum. */
  untouched?: { rows: number; identical: boolean };
  source: unknown;
  problems: string[];
}

export interface UserCheck {
  sql: string;
  ok: boolean;
  error?: string;
}

/**
 * Verifies one table of the next version against its source: counts and per-row checksums. A delta
 * source holds only changed records, so rows beyond it are expected; the count is checked instead.
 */
export async function verifyTable(
  pool: pg.Pool,
  next: string,
  table: DatasetTable,
  options: { delta: boolean; expectedRows?: number; runId?: string; keptLocal?: number },
): Promise<TableCheck> {
  const result = await verifyDocuments({
    pool,
    from: table.from,
    schema: next,
    table: table.table,
    ...(table.key !== undefined ? { key: table.key } : {}),
    ...(table.records !== undefined ? { records: table.records } : {}),
    ...(table.columns !== undefined ? { columns: table.columns } : {}),
    ...(table.duplicates !== undefined ? { duplicates: table.duplicates } : {}),
    ...(options.runId ? { runId: options.runId } : {}),
    allowExtra: options.delta,
    typed: false,
  });
  const t = result.tables[0]!;
  const { rows } = await pool.query(`select count(*)::bigint as n from ${quoteQualified(next, table.table)}`);
  const count = Number(rows[0].n);
  const problems = [...t.problems];
  // keep-local conflicts differ from the source on purpose: exactly those rows may, no others
  const keptLocal = options.keptLocal ?? 0;
  const unexpected = t.missingRows + (options.delta ? 0 : t.extraRows) + t.changedRows - keptLocal;
  if (keptLocal > 0 && t.changedRows !== keptLocal)
    problems.push(`${t.changedRows} rows differ from the source, ${keptLocal} kept local on purpose`);
  if (options.expectedRows !== undefined && count !== options.expectedRows)
    problems.push(`holds ${count} rows, expected ${options.expectedRows}`);
  return {
    table: table.table,
    rows: count,
    identical:
      (keptLocal > 0 ? unexpected === 0 && t.status !== "error" : result.identical) &&
      problems.length === t.problems.length,
    sourceRows: t.sourceRows,
    missingRows: t.missingRows,
    extraRows: options.delta ? 0 : t.extraRows,
    changedRows: t.changedRows,
    ...(options.expectedRows !== undefined ? { expectedRows: options.expectedRows } : {}),
    source: result.source,
    problems,
  };
}

/** The aggregated checksum of a set of rows: count and the sums of md5(key || doc) halves. */
const checksumSql = (keyColumn: string, from: string, where: string) => `
  select count(*)::bigint as rows,
         coalesce(sum(('x' || left(h, 8))::bit(32)::int::bigint), 0)::text as high,
         coalesce(sum(('x' || substr(h, 9, 8))::bit(32)::int::bigint), 0)::text as low
    from (select md5(t.${quoteIdent(keyColumn)}::text || t.doc::text) as h from ${from} t where ${where} offset 0) hashed`;

/**
 * Verifies one table of a delta-built next version, reading only what the delta touched plus one
 * server-side checksum pass: the staging table (the delta's records as imported) against the source,
 * row by row (the document verifier); every staged record in next with the same document (but the
 * tombstoned keys and the conflicts kept local); the rows the delta did not touch identical to live's
 * (count and summed md5 of key and document, computed on the server, both sides at once); and the count
 * of next equal to live + inserted - deleted.
 */
export async function verifyDeltaTable(
  pool: pg.Pool,
  options: {
    live: string;
    next: string;
    table: DatasetTable;
    staging: string;
    keyColumn: string;
    runId: string;
    expectedRows: number;
    deletedKeys: readonly string[];
    /** Conflicts kept local (--on-conflict keep-local): exactly that many staged rows hold live's row. */
    keptLocal: number;
  },
): Promise<TableCheck> {
  const { live, next, table, staging, keyColumn } = options;
  const key = quoteIdent(keyColumn);
  const nextTable = quoteQualified(next, table.table);
  const stagingTable = quoteQualified(next, staging);
  const notStaged = `not exists (select 1 from ${stagingTable} s where s.${key} = t.${key})`;
  const [staged, applied, liveSum, nextSum, counted] = await Promise.all([
    verifyTable(pool, next, { ...table, table: staging }, { delta: false, runId: options.runId }),
    pool.query(
      `select count(*) filter (where n.${key} is null)::bigint as missing,
              count(*) filter (where n.doc is distinct from s.doc)::bigint as changed,
              count(*) filter (where n.doc is distinct from s.doc and n.doc = l.doc)::bigint as kept_live
         from ${stagingTable} s left join ${nextTable} n on n.${key} = s.${key}
         left join ${quoteQualified(live, table.table)} l on l.${key} = s.${key}
        where s.${key}::text <> all($1::text[])`,
      [options.deletedKeys],
    ),
    pool.query(
      checksumSql(
        keyColumn,
        quoteQualified(live, table.table),
        `${notStaged} and t.${key}::text <> all($1::text[])`,
      ),
      [options.deletedKeys],
    ),
    pool.query(checksumSql(keyColumn, nextTable, notStaged)),
    pool.query(`select count(*)::bigint as n from ${nextTable}`),
  ]);
  const rows = Number(counted.rows[0].n);
  const missing = Number(applied.rows[0].missing);
  const keptLive = Number(applied.rows[0].kept_live);
  const changed = Number(applied.rows[0].changed) - missing - Math.min(keptLive, options.keptLocal);
  const [a, b] = [liveSum.rows[0], nextSum.rows[0]];
  const untouchedIdentical = a.rows === b.rows && a.high === b.high && a.low === b.low;
  const problems = [...staged.problems];
  if (!staged.identical && staged.problems.length === 0)
    problems.push(
      `the staged delta differs from the source (${staged.missingRows} missing, ${staged.extraRows} extra, ${staged.changedRows} changed)`,
    );
  if (missing) problems.push(`${missing} delta record(s) missing from the next version`);
  if (changed) problems.push(`${changed} delta record(s) differ in the next version`);
  if (keptLive !== options.keptLocal)
    problems.push(`${keptLive} delta record(s) hold live's row, ${options.keptLocal} kept local on purpose`);
  if (!untouchedIdentical)
    problems.push(
      `the ${b.rows} rows the delta did not touch differ from live's ${a.rows} (aggregated md5 of key and document)`,
    );
  if (rows !== options.expectedRows) problems.push(`holds ${rows} rows, expected ${options.expectedRows}`);
  return {
    table: table.table,
    rows,
    identical: problems.length === 0,
    sourceRows: staged.sourceRows,
    missingRows: staged.missingRows + missing,
    extraRows: 0,
    changedRows: staged.changedRows + changed,
    expectedRows: options.expectedRows,
    untouched: { rows: Number(b.rows), identical: untouchedIdentical },
    source: staged.source,
    problems,
  };
}

/**
 * Runs the user's checks against the next version: each SQL must return one row whose first value is
 * true. They run with search_path set to the next schema, so unqualified table names mean the next version.
 */
export async function runUserChecks(
  pool: pg.Pool,
  next: string,
  checks: readonly string[],
): Promise<UserCheck[]> {
  if (checks.length === 0) return [];
  return withClient(pool, async (client) => {
    const results: UserCheck[] = [];
    await client.query("begin read only");
    try {
      await client.query(`set local search_path = ${quoteIdent(next)}, pg_catalog`);
      for (const sql of checks) {
        await client.query("savepoint pgshift_check");
        try {
          const { rows, fields } = await client.query(sql);
          const value = rows.length === 1 && fields.length >= 1 ? rows[0][fields[0]!.name] : undefined;
          results.push(
            value === true
              ? { sql, ok: true }
              : { sql, ok: false, error: `returned ${JSON.stringify(value ?? null)}, not true` },
          );
          await client.query("release savepoint pgshift_check");
        } catch (error) {
          await client.query("rollback to savepoint pgshift_check");
          results.push({ sql, ok: false, error: (error as Error).message });
        }
      }
    } finally {
      await client.query("rollback").catch(() => undefined);
    }
    return results;
  });
}

/** What a version's verification recorded: the verdicts, per table (without the sources), checks and foreign keys. */
export function verificationSummary(
  tableChecks: readonly TableCheck[],
  checks: UserCheck[],
  foreignKeys: ForeignKeyCheck[],
) {
  return {
    identical: tableChecks.every((c) => c.identical),
    checksPassed: checks.every((c) => c.ok),
    foreignKeysHold: foreignKeys.every((f) => f.ok),
    tables: tableChecks.map(({ source: _source, ...c }) => c),
    checks,
    foreignKeys,
  };
}

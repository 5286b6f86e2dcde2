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

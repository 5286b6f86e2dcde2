import type pg from "pg";
import { PgshiftError } from "../errors.ts";
import { quoteIdent, quoteQualified } from "../pg/quote.ts";
import { type CanonicalKind, kindOfPgType } from "./canonical.ts";
import { type ChunkStrategy, chunkSql, rangeBounds, sampleSql } from "./chunking.ts";
import type { VerifyTable } from "./types.ts";

/**
 * The target side of verification: everything computed by PostgreSQL from what it stores, in SQL,
 * so that no row leaves the server unless a chunk mismatches.
 */

/**
 * Session settings that fix PostgreSQL's text output to the canonical forms (docs/verification.md).
 * Applied with SET LOCAL inside the verifying transaction, so pooled sessions are left as they were.
 */
export const canonicalSessionSettings: Record<string, string> = {
  DateStyle: "ISO, YMD",
  TimeZone: "UTC",
  IntervalStyle: "postgres",
  extra_float_digits: "1",
  bytea_output: "hex",
};

/** The SQL expression giving a column's canonical text. */
export function canonicalSql(kind: CanonicalKind, column: string): string {
  const c = quoteIdent(column);
  switch (kind) {
    case "numeric":
      return `trim_scale(${c})::text`;
    case "bytea":
      return `encode(${c}, 'hex')`;
    default:
      return `${c}::text`;
  }
}

export interface TargetColumn {
  name: string;
  typname: string;
  type: string;
  kind: CanonicalKind;
}

/** The target table's columns (undefined when the table does not exist). */
export async function describeTargetTable(
  client: pg.ClientBase | pg.Pool,
  schema: string,
  table: string,
): Promise<TargetColumn[] | undefined> {
  const { rows } = await client.query(
    `select a.attname as name, t.typname, format_type(a.atttypid, a.atttypmod) as type, t.typtype, bt.typname as base
       from pg_attribute a
       join pg_class c on c.oid = a.attrelid
       join pg_namespace n on n.oid = c.relnamespace
       join pg_type t on t.oid = a.atttypid
       left join pg_type bt on bt.oid = t.typbasetype
      where n.nspname = $1 and c.relname = $2 and c.relkind in ('r', 'p', 'v', 'm', 'f')
        and a.attnum > 0 and not a.attisdropped
      order by a.attnum`,
    [schema, table],
  );
  if (rows.length === 0) {
    const exists = await client.query(
      "select 1 from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 and c.relname = $2",
      [schema, table],
    );
    if (exists.rowCount === 0) return undefined;
  }
  return rows.map((r) => {
    const typname: string = r.typtype === "d" && r.base ? r.base : r.typname;
    return { name: r.name, typname, type: r.type, kind: kindOfPgType(typname) };
  });
}

/** SQL pieces for one table, built once. */
export interface TargetSql {
  from: string;
  fields: string[];
  keyText: string;
  rowText: string;
  identityText: string;
  keyColumn?: string;
}

export function targetSql(table: VerifyTable, kinds: Map<string, CanonicalKind>): TargetSql {
  const exprOf = (name: string) => canonicalSql(kinds.get(name) ?? "other", name);
  const fields = table.columns.map((c) => exprOf(c.name));
  const rowText = `row(${fields.join(", ")})::text`;
  const keyText = table.key.length ? `row(${table.key.map(exprOf).join(", ")})::text` : rowText;
  const sql: TargetSql = {
    from: table.insertedBy
      ? `(select * from ${quoteQualified(table.schema, table.table)} where xmin::text::bigint = any('{${table.insertedBy.filter((x) => /^\d+$/.test(x)).join(",")}}'::bigint[])) as inserted`
      : quoteQualified(table.schema, table.table),
    fields,
    keyText,
    rowText,
    identityText: keyText,
  };
  if (table.key.length === 1) sql.keyColumn = table.key[0]!;
  return sql;
}

/**
 * Per chunk: rows, and the sums modulo 2^32 of bytes 0-3 and of bytes 4-7 of each row's md5 (read as
 * signed 32-bit integers), as 16 hex digits. Sums do not depend on row order, so neither side sorts.
 */
export type ChunkSums = Map<string, { rows: number; checksum: string }>;

export interface TargetAggregate {
  totalRows: number;
  sampledRows?: number;
  chunks: ChunkSums;
}

/** Runs `fn` in a read-only repeatable-read transaction with the canonical session settings. */
export async function inCanonicalSnapshot<T>(client: pg.ClientBase, fn: () => Promise<T>): Promise<T> {
  await client.query("begin isolation level repeatable read read only");
  try {
    for (const [name, value] of Object.entries(canonicalSessionSettings)) {
      await client.query("select set_config($1, $2, true)", [name, value]);
    }
    const result = await fn();
    await client.query("commit");
    return result;
  } catch (error) {
    await client.query("rollback").catch(() => undefined);
    throw error;
  }
}

/** Counts and per-chunk checksums, computed by the server in one pass over the table. */
export async function targetChunkSums(
  client: pg.ClientBase,
  sql: TargetSql,
  strategy: ChunkStrategy,
  sample?: number,
): Promise<TargetAggregate> {
  const chunk = chunkSql(strategy, sql);
  const where = sample === undefined ? "" : `where ${sampleSql(sql.identityText, sample)}`;
  const ordered = strategy.kind === "key-range" && strategy.ordered && sample === undefined;
  const { rows } = await client.query(
    ordered
      ? {
          text: `select chunk, count(*)::bigint as rows, md5(string_agg(r, E'\\n' order by k)) as checksum
             from (select ${chunk} as chunk, ${quoteIdent(sql.keyColumn!)} as k, ${sql.rowText} as r
                     from ${sql.from} offset 0) s
            group by chunk`,
        }
      : {
          text: `select chunk, count(*)::bigint as rows,
                  lpad(to_hex((((coalesce(sum(high), 0) % 4294967296) + 4294967296) % 4294967296)::bigint), 8, '0') ||
                  lpad(to_hex((((coalesce(sum(low), 0) % 4294967296) + 4294967296) % 4294967296)::bigint), 8, '0') as checksum
             from (select chunk, ('x' || left(h, 8))::bit(32)::int as high, ('x' || substr(h, 9, 8))::bit(32)::int as low
                     from (select ${chunk} as chunk, md5(${sql.rowText}) as h from ${sql.from} ${where} offset 0) hashed) s
            group by chunk`,
        },
  );
  const chunks: ChunkSums = new Map();
  let sampledRows = 0;
  for (const r of rows) {
    const n = Number(r.rows);
    sampledRows += n;
    chunks.set(r.chunk === null ? "null" : r.chunk, { rows: n, checksum: r.checksum });
  }
  if (sample === undefined) return { totalRows: sampledRows, chunks };
  const count = await client.query(`select count(*)::bigint as n from ${sql.from}`);
  return { totalRows: Number(count.rows[0].n), sampledRows, chunks };
}

/** The canonical fields of every target row in the given chunks (and the sample, when sampling). */
export async function targetRowsInChunks(
  client: pg.ClientBase,
  sql: TargetSql,
  strategy: ChunkStrategy,
  chunks: readonly string[],
  sample?: number,
): Promise<(string | null)[][]> {
  const select = `select ${sql.fields.map((f, i) => `${f} as c${i}`).join(", ")} from ${sql.from}`;
  const sampled = sample === undefined ? "" : ` and ${sampleSql(sql.identityText, sample)}`;
  const toRows = (rows: Record<string, string | null>[]) =>
    rows.map((r) => sql.fields.map((_, i) => r[`c${i}`] ?? null));
  if (strategy.kind === "key-range") {
    const out: (string | null)[][] = [];
    const key = quoteIdent(sql.keyColumn!);
    for (const chunk of chunks) {
      if (!/^-?\d+$/.test(chunk)) continue;
      const [low, high] = rangeBounds(chunk, strategy.shift);
      const { rows } = await client.query(
        `${select} where ${key} between $1::bigint and $2::bigint${sampled}`,
        [low.toString(), (high - 1n).toString()],
      );
      out.push(...toRows(rows));
    }
    return out;
  }
  const chunk = chunkSql(strategy, sql);
  const { rows } = await client.query(`${select} where ${chunk} = any($1::text[])${sampled}`, [chunks]);
  return toRows(rows);
}

export class VerifyTargetError extends PgshiftError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super("verify_target", message, { details });
  }
}

import type pg from "pg";
import { PgshiftError } from "../errors.ts";
import { guardClient } from "../pg/pool.ts";
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

/**
 * What a verifying transaction sets besides the canonical forms: no JIT. Hashing a table is one long
 * expression per row, and compiling it cost 7-20 % of the query on these servers (measured on a
 * 637k-row table: 1.17 s with JIT, 0.96-1.09 s without); results are the same either way.
 */
const verifySessionSettings: Record<string, string> = { ...canonicalSessionSettings, jit: "off" };

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
  /** The table itself (quoted), when `from` reads all of it: its pages can be split among connections. */
  relation?: string;
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
    ...(table.insertedBy ? {} : { relation: quoteQualified(table.schema, table.table) }),
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
  /** Queries (connections) the hashing was split among. */
  parts?: number;
  sampledRows?: number;
  chunks: ChunkSums;
}

async function applySettings(client: pg.ClientBase): Promise<void> {
  for (const [name, value] of Object.entries(verifySessionSettings))
    await client.query("select set_config($1, $2, true)", [name, value]);
}

/** Runs `fn` in a read-only repeatable-read transaction with the canonical session settings. */
export async function inCanonicalSnapshot<T>(client: pg.ClientBase, fn: () => Promise<T>): Promise<T> {
  await client.query("begin isolation level repeatable read read only");
  try {
    await applySettings(client);
    const result = await fn();
    await client.query("commit");
    return result;
  } catch (error) {
    await client.query("rollback").catch(() => undefined);
    throw error;
  }
}

/** At most this many connections hash one table. */
const MAX_TARGET_PARTS = 4;
const SNAPSHOT_ID = /^[0-9A-Fa-f-]+$/;

/**
 * Runs `fn` with `client` (inside inCanonicalSnapshot) and up to `wanted - 1` more connections that the
 * pool has free, each in a read-only transaction on `client`'s exported snapshot with the same
 * settings, so that one table's hashing can be split among them and still read one state of the
 * data. A connection that cannot take the snapshot is left out (the others take its share); with
 * none free, `fn` gets `client` alone.
 */
export async function withSnapshotPeers<T>(
  pool: pg.Pool,
  client: pg.ClientBase,
  wanted: number,
  fn: (clients: pg.ClientBase[]) => Promise<T>,
): Promise<T> {
  const others: pg.PoolClient[] = [];
  try {
    const max = (pool.options as { max?: number }).max ?? 10;
    const free = max - pool.totalCount + pool.idleCount;
    const extra = Math.min(Math.min(MAX_TARGET_PARTS, Math.floor(wanted)) - 1, free);
    if (extra > 0) {
      const { rows: exported } = await client.query("select pg_export_snapshot() as id");
      const snapshot = String(exported[0].id);
      if (!SNAPSHOT_ID.test(snapshot)) throw new Error(`unexpected snapshot id ${snapshot}`);
      const connected = await Promise.allSettled(Array.from({ length: extra }, () => pool.connect()));
      for (const result of connected)
        if (result.status === "fulfilled") {
          guardClient(result.value);
          others.push(result.value);
        }
      for (const other of [...others]) {
        try {
          await other.query("begin isolation level repeatable read read only");
          await other.query(`set transaction snapshot '${snapshot}'`);
          await applySettings(other);
        } catch {
          others.splice(others.indexOf(other), 1);
          await other.query("rollback").catch(() => undefined);
          other.release(true);
        }
      }
    }
    return await fn([client, ...others]);
  } finally {
    for (const other of others) {
      const ended = await other.query("rollback").then(
        () => true,
        () => false,
      );
      other.release(!ended);
    }
  }
}

/** `ctid` conditions that cut a table of `pages` pages into `parts` ranges (the first and last open). */
export function pageRanges(pages: number, parts: number): string[] {
  if (parts <= 1) return [""];
  const bound = (k: number) => `'(${Math.floor((pages * k) / parts)},0)'::tid`;
  return Array.from({ length: parts }, (_, k) =>
    k === 0
      ? `ctid < ${bound(1)}`
      : k === parts - 1
        ? `ctid >= ${bound(k)}`
        : `ctid >= ${bound(k)} and ctid < ${bound(k + 1)}`,
  );
}

/** The table's size in pages now (its main fork; a table never analyzed has none in pg_class). */
export async function tablePages(client: pg.ClientBase, from: string): Promise<number> {
  const { rows } = await client.query(
    "select (pg_relation_size($1::regclass) / current_setting('block_size')::int)::bigint as pages",
    [from],
  );
  return Number(rows[0]?.pages ?? 0);
}

/** A table smaller than this many pages is hashed by one connection. */
export const SPLIT_MIN_PAGES = 16;

const TWO_32 = 4294967296n;

/** A sum of signed 32-bit values, modulo 2^32, as 8 hex digits of its unsigned value. */
function uint32Hex(sum: bigint): string {
  return (((sum % TWO_32) + TWO_32) % TWO_32).toString(16).padStart(8, "0");
}

/**
 * Where each connection's share of an ordered key-range table begins: key bounds on chunk boundaries,
 * so that every chunk (hashed as one string in key order) is read by one connection.
 */
async function keyRangeBounds(
  client: pg.ClientBase,
  sql: TargetSql,
  shift: number,
  parts: number,
): Promise<bigint[]> {
  const key = quoteIdent(sql.keyColumn!);
  const { rows } = await client.query(
    `select min(${key})::text as lo, max(${key})::text as hi from ${sql.from}`,
  );
  if (rows[0]?.lo === null || rows[0]?.lo === undefined) return [];
  const lo = BigInt(rows[0].lo) >> BigInt(shift);
  const span = (BigInt(rows[0].hi) >> BigInt(shift)) - lo + 1n;
  const n = BigInt(Math.max(1, parts));
  const bounds: bigint[] = [];
  for (let j = 1n; j < n && j <= span; j++) {
    const bound = (lo + (span * j) / n) << BigInt(shift);
    if (bounds.length === 0 || bound > bounds[bounds.length - 1]!) bounds.push(bound);
  }
  return bounds;
}

/**
 * Counts and per-chunk checksums, computed by the server from what it stores. With `clients` beyond
 * the first (withSnapshotPeers: one snapshot), the table is split among them: ordered key-range chunks
 * by key ranges on chunk boundaries, summed chunks by page ranges (their sums add up across parts).
 */
export async function targetChunkSums(
  all: readonly pg.ClientBase[],
  sql: TargetSql,
  strategy: ChunkStrategy,
  sample?: number,
): Promise<TargetAggregate> {
  const client = all[0]!;
  const sampled = sample === undefined ? [] : [sampleSql(sql.identityText, sample)];
  const ordered = strategy.kind === "key-range" && strategy.ordered && sample === undefined;
  const where = (conditions: string[]) => (conditions.length ? ` where ${conditions.join(" and ")}` : "");
  const chunks: ChunkSums = new Map();
  let sampledRows = 0;
  let queries = 1;
  if (ordered) {
    const key = quoteIdent(sql.keyColumn!);
    const bounds = all.length > 1 ? await keyRangeBounds(client, sql, strategy.shift, all.length) : [];
    // part j: keys from bounds[j - 1] (open for the first, which also takes NULL keys) below bounds[j] (open for the last)
    const parts = Array.from({ length: bounds.length + 1 }, (_, j) => {
      const conditions: string[] = [];
      const params: string[] = [];
      if (j > 0) {
        params.push(bounds[j - 1]!.toString());
        conditions.push(`${key} >= $${params.length}::bigint`);
      }
      if (j < bounds.length) {
        params.push(bounds[j]!.toString());
        conditions.push(
          j === 0 ? `(${key} < $1::bigint or ${key} is null)` : `${key} < $${params.length}::bigint`,
        );
      }
      return { conditions, params };
    });
    // chunks grouped as bigint (cheaper to sort than their text), named as text
    queries = parts.length;
    const results = await Promise.all(
      parts.map((part, j) =>
        all[j]!.query(
          `select s.chunk::text as chunk, count(*)::bigint as rows, md5(string_agg(r, E'\\n' order by k)) as checksum
             from (select ${key}::bigint >> ${strategy.shift} as chunk, ${key} as k, ${sql.rowText} as r
                     from ${sql.from}${where(part.conditions)} offset 0) s
            group by s.chunk`,
          part.params,
        ),
      ),
    );
    for (const { rows } of results)
      for (const r of rows) {
        const n = Number(r.rows);
        sampledRows += n;
        chunks.set(r.chunk === null ? "null" : r.chunk, { rows: n, checksum: r.checksum });
      }
  } else {
    const chunk = chunkSql(strategy, sql);
    const split =
      all.length > 1 && sql.relation !== undefined
        ? pageRanges(await tablePages(client, sql.relation), all.length)
        : [""];
    queries = split.length;
    // the row md5's first 16 hex digits as one bigint (one cast instead of two): its high half is the
    // signed int of bytes 0-3, its low half (unsigned) the int of bytes 4-7 modulo 2^32
    const results = await Promise.all(
      split.map((range, j) =>
        all[j]!.query(
          `select chunk, count(*)::bigint as rows, coalesce(sum(v >> 32), 0)::text as high, coalesce(sum(v & 4294967295), 0)::text as low
             from (select ${chunk} as chunk, ('x' || left(md5(${sql.rowText}), 16))::bit(64)::bigint as v
                     from ${sql.from}${where([...sampled, ...(range ? [range] : [])])} offset 0) hashed
            group by chunk`,
        ),
      ),
    );
    const sums = new Map<string, { rows: number; high: bigint; low: bigint }>();
    for (const { rows } of results)
      for (const r of rows) {
        const id = r.chunk === null ? "null" : String(r.chunk);
        const sum = sums.get(id) ?? { rows: 0, high: 0n, low: 0n };
        sum.rows += Number(r.rows);
        sum.high += BigInt(r.high as string);
        sum.low += BigInt(r.low as string);
        sums.set(id, sum);
      }
    for (const [id, sum] of sums) {
      sampledRows += sum.rows;
      chunks.set(id, { rows: sum.rows, checksum: uint32Hex(sum.high) + uint32Hex(sum.low) });
    }
  }
  if (sample === undefined) return { totalRows: sampledRows, parts: queries, chunks };
  const count = await client.query(`select count(*)::bigint as n from ${sql.from}`);
  return { totalRows: Number(count.rows[0].n), sampledRows, parts: queries, chunks };
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

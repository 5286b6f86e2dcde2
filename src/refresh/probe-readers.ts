import pg from "pg";
import { quoteIdent, quoteQualified } from "../pg/quote.ts";
import { primaryKeyColumn } from "./build-next.ts";

export interface ProbeReport {
  clients: number;
  queries: number;
  failed: number;
  /** Failed queries by SQLSTATE ("none" for errors without one, e.g. a dropped connection). */
  failedBySqlstate: Record<string, number>;
  /** Queries by kind: key lookups, and containment (doc @> ...) where a GIN index on doc serves them. */
  byKind?: { key: number; containment: number };
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /**
   * The most versions of one table the readers were answered from: the table each answer came from
   * (database and table oid) is a version.
   */
  versionsSeen?: number;
  /**
   * The mixed-version window: the longest time in which one table was answered from two versions, from
   * the first answer of the newer one (the server's statement start) to the last answer of the older one
   * (the server's clock at the end of that statement); 0 when none overlapped. Each statement reads one
   * version; this is how long two statements in a row could read different ones. Measured on the server's
   * clocks: the two databases of the PgBouncer modes must share a server (or clock) for it to be exact.
   */
  mixedWindowMs?: number;
  /** Why the probe read nothing (no live version yet), when it did not run. */
  skipped?: string;
}

export interface ProbeTarget {
  schema: string;
  table: string;
}

/** Latency samples kept at most (a reservoir would be exact-er; this bounds memory on long builds). */
const MAX_SAMPLES = 200_000;
const SAMPLE_KEYS = 100;

/** The columns a probe query adds: the answering table's oid, its database, and the server's statement start and end. */
const VERSION_COLUMNS = {
  rel: "pgshift probe rel",
  db: "pgshift probe db",
  start: "pgshift probe start",
  end: "pgshift probe end",
} as const;

function versionColumns(rel: string): string {
  const epochMs = (t: string) => `extract(epoch from ${t}) * 1000`;
  return [
    `${rel}::int8 as ${quoteIdent(VERSION_COLUMNS.rel)}`,
    `current_database() as ${quoteIdent(VERSION_COLUMNS.db)}`,
    `${epochMs("statement_timestamp()")}::float8 as ${quoteIdent(VERSION_COLUMNS.start)}`,
    `${epochMs("clock_timestamp()")}::float8 as ${quoteIdent(VERSION_COLUMNS.end)}`,
  ].join(", ");
}

/** Per table, the versions that answered, each with its first statement start and last statement end (server ms). */
class VersionsSeen {
  private readonly tables = new Map<string, Map<string, { first: number; last: number }>>();

  answered(table: string, row: Record<string, unknown>): void {
    const rel = row[VERSION_COLUMNS.rel];
    if (rel === null || rel === undefined) return; // a containment query that matched nothing
    const version = `${String(row[VERSION_COLUMNS.db])}/${String(rel)}`;
    const start = Number(row[VERSION_COLUMNS.start]);
    const end = Number(row[VERSION_COLUMNS.end]);
    let seen = this.tables.get(table);
    if (!seen) this.tables.set(table, (seen = new Map()));
    const span = seen.get(version);
    if (!span) seen.set(version, { first: start, last: end });
    else {
      if (start < span.first) span.first = start;
      if (end > span.last) span.last = end;
    }
  }

  report(): { versionsSeen: number; mixedWindowMs: number } {
    let versionsSeen = 0;
    let mixedWindowMs = 0;
    for (const seen of this.tables.values()) {
      versionsSeen = Math.max(versionsSeen, seen.size);
      // versions in the order they began answering: each one's overlap with the next
      const spans = [...seen.values()].sort((a, b) => a.first - b.first);
      for (let i = 1; i < spans.length; i++)
        mixedWindowMs = Math.max(mixedWindowMs, spans[i - 1]!.last - spans[i]!.first);
    }
    return { versionsSeen, mixedWindowMs };
  }
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

/**
 * N reader clients, each on its own connection, running key lookups (and containment queries on tables
 * with a GIN index on doc) on the live tables (by name, as an
 * application does) until stopped: they measure what readers see during a build and a switch.
 * `stop()` ends them and returns failures by SQLSTATE and latency percentiles.
 */
export async function startProbe(
  pool: pg.Pool,
  clients: number,
  targets: readonly ProbeTarget[],
): Promise<{ stop: () => Promise<ProbeReport> }> {
  const lookups: { kind: "key" | "containment"; table: string; sql: string; keys: unknown[] }[] = [];
  for (const t of targets) {
    const keyColumn = await primaryKeyColumn(pool, t.schema, t.table);
    if (!keyColumn) continue;
    const key = quoteIdent(keyColumn);
    const { rows } = await pool.query(
      `select ${key} as k from ${quoteQualified(t.schema, t.table)} order by random() limit ${SAMPLE_KEYS}`,
    );
    const table = quoteQualified(t.schema, t.table);
    // which version answered (VERSION_COLUMNS), last so that no column of the table can shadow them
    if (rows.length)
      lookups.push({
        kind: "key",
        table,
        sql: `select t.*, ${versionColumns("t.tableoid")} from ${table} t where t.${key} = $1`,
        keys: rows.map((r) => r.k),
      });
    // containment queries where a GIN index on doc serves them (as an application's would)
    const { rows: gin } = await pool.query(
      `select 1 from pg_index i join pg_class c on c.oid = i.indexrelid join pg_am am on am.oid = c.relam
         join pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
        where i.indrelid = to_regclass($1) and am.amname = 'gin' and a.attname = 'doc'`,
      [quoteQualified(t.schema, t.table)],
    );
    if (gin.length === 0) continue;
    const { rows: fragments } = await pool.query(
      `select jsonb_build_object(e.key, e.value)::text as f
         from (select doc from ${quoteQualified(t.schema, t.table)} order by random() limit ${SAMPLE_KEYS}) s,
              lateral (select key, value from jsonb_each(s.doc) where jsonb_typeof(value) = 'string' limit 1) e`,
    );
    if (fragments.length)
      lookups.push({
        kind: "containment",
        table,
        sql: `select count(*), ${versionColumns("max(m.tableoid)")} from (select t.tableoid from ${table} t where t.doc @> $1::jsonb limit 20) m`,
        keys: fragments.map((r) => r.f),
      });
  }
  const empty: ProbeReport = {
    clients,
    queries: 0,
    failed: 0,
    failedBySqlstate: {},
    p50Ms: 0,
    p99Ms: 0,
    maxMs: 0,
  };
  if (lookups.length === 0)
    return { stop: async () => ({ ...empty, skipped: "no live table with a primary key to look up" }) };
  const readers = new pg.Pool({
    ...(pool.options as pg.PoolConfig),
    max: clients,
    application_name: "pgshift refresh probe",
  });
  readers.on("error", () => undefined);
  const samples: number[] = [];
  const versions = new VersionsSeen();
  const failedBySqlstate: Record<string, number> = {};
  let queries = 0;
  const byKind = { key: 0, containment: 0 };
  // stop() asks at this time; each reader ends after a query it began afterwards, so that every reader
  // was answered at least once by what is live when the probe stops (the version just switched to)
  let stopAt = Number.POSITIVE_INFINITY;
  const reader = async (n: number) => {
    let i = n;
    for (;;) {
      const lookup = lookups[i % lookups.length]!;
      const value = lookup.keys[i % lookup.keys.length];
      i += clients;
      const started = performance.now();
      try {
        const { rows } = await readers.query(lookup.sql, [value]);
        if (rows[0]) versions.answered(lookup.table, rows[0]);
      } catch (error) {
        const code = (error as { code?: string }).code ?? "none";
        failedBySqlstate[code] = (failedBySqlstate[code] ?? 0) + 1;
      }
      queries++;
      byKind[lookup.kind]++;
      if (samples.length < MAX_SAMPLES) samples.push(performance.now() - started);
      if (started >= stopAt) break;
    }
  };
  const loops = Array.from({ length: clients }, (_, n) => reader(n));
  return {
    stop: async () => {
      stopAt = performance.now();
      await Promise.all(loops);
      await readers.end().catch(() => undefined);
      const sorted = samples.sort((a, b) => a - b);
      return {
        clients,
        queries,
        failed: Object.values(failedBySqlstate).reduce((a, b) => a + b, 0),
        failedBySqlstate,
        byKind,
        p50Ms: percentile(sorted, 0.5),
        p99Ms: percentile(sorted, 0.99),
        maxMs: sorted[sorted.length - 1] ?? 0,
        ...versions.report(),
      };
    },
  };
}

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
  const lookups: { kind: "key" | "containment"; sql: string; keys: unknown[] }[] = [];
  for (const t of targets) {
    const keyColumn = await primaryKeyColumn(pool, t.schema, t.table);
    if (!keyColumn) continue;
    const key = quoteIdent(keyColumn);
    const { rows } = await pool.query(
      `select ${key} as k from ${quoteQualified(t.schema, t.table)} order by random() limit ${SAMPLE_KEYS}`,
    );
    if (rows.length)
      lookups.push({
        kind: "key",
        sql: `select * from ${quoteQualified(t.schema, t.table)} where ${key} = $1`,
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
        sql: `select count(*) from (select 1 from ${quoteQualified(t.schema, t.table)} where doc @> $1::jsonb limit 20) m`,
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
  const failedBySqlstate: Record<string, number> = {};
  let queries = 0;
  const byKind = { key: 0, containment: 0 };
  let running = true;
  const reader = async (n: number) => {
    let i = n;
    while (running) {
      const lookup = lookups[i % lookups.length]!;
      const value = lookup.keys[i % lookup.keys.length];
      i += clients;
      const started = performance.now();
      try {
        await readers.query(lookup.sql, [value]);
      } catch (error) {
        const code = (error as { code?: string }).code ?? "none";
        failedBySqlstate[code] = (failedBySqlstate[code] ?? 0) + 1;
      }
      queries++;
      byKind[lookup.kind]++;
      if (samples.length < MAX_SAMPLES) samples.push(performance.now() - started);
    }
  };
  const loops = Array.from({ length: clients }, (_, n) => reader(n));
  return {
    stop: async () => {
      running = false;
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
      };
    },
  };
}

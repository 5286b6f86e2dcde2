import { loadModule, parseSync } from "libpg-query";
import pg from "pg";
import { sqlstateOf } from "../pg/errors.ts";
import { withClient } from "../pg/pool.ts";

export interface MaintenanceOptions {
  /** A table is reported when it has at least this many dead tuples (default 10 000) ... */
  deadTuplesMin?: number;
  /** ... and they are at least this share of its tuples (default 0.2). */
  deadRatioMin?: number;
  /** How many statements of pg_stat_statements to list, slowest mean first (default 5). */
  slowest?: number;
  /**
   * Whether a transaction-mode pooler sits in front: "auto" (default) asks PgBouncer's console and
   * compares the URL's port with the server's; "pgbouncer" forces the hazard checks; "none" skips them.
   */
  pooler?: "auto" | "pgbouncer" | "none";
  /** PgBouncer's version when known (the console tells it to its admin and stats users). */
  pgbouncerVersion?: string;
  /** The URL the pool uses (for the console probe and the port comparison). */
  url?: string;
}

export interface TableRef {
  schema: string;
  table: string;
}

export interface DeadTuplesFinding extends TableRef {
  deadTuples: number;
  liveTuples: number;
  /** dead / (live + dead) */
  ratio: number;
  lastVacuum: string | null;
}

export interface SlowStatement {
  query: string;
  calls: number;
  meanMs: number;
  totalMs: number;
}

export type PoolingHazardKind =
  "session_advisory_lock" | "listen" | "session_set" | "named_prepared_statements";

export interface PoolingHazard {
  kind: PoolingHazardKind;
  /** The backend (pid) where it was seen; undefined for a hazard of the configuration. */
  pid?: number;
  applicationName?: string;
  detail: string;
}

export interface MaintenanceReport {
  autovacuum: { on: boolean; trackCounts: boolean; disabledTables: TableRef[] };
  deadTuples: DeadTuplesFinding[];
  /** Tables with rows that were never analyzed (the planner guesses their sizes). */
  neverAnalyzed: TableRef[];
  statements:
    | { state: "installed"; slowest: SlowStatement[] }
    | { state: "not_loaded" | "not_installed" | "not_available"; hint: string };
  pooler: {
    /** "pgbouncer" (its console answered), "proxy" (the server's port differs from the URL's), or null. */
    detected: "pgbouncer" | "proxy" | null;
    version: string | null;
    hazards: PoolingHazard[];
  };
  /** One line per problem, in words; empty when all is well. */
  warnings: string[];
}

const ENABLE_STATEMENTS =
  "add pg_stat_statements to shared_preload_libraries (ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'), restart the server, then CREATE EXTENSION pg_stat_statements";

/** What PgBouncer itself sets on a server connection to match each client's startup parameters. */
const POOLER_TRACKED = [
  "application_name",
  "client_encoding",
  "DateStyle",
  "IntervalStyle",
  "TimeZone",
  "standard_conforming_strings",
];

const OFF_VALUES = new Set(["false", "off", "no", "0", "f", "n"]);

/** True when the relation's options turn autovacuum off (`autovacuum_enabled = false`). */
export function autovacuumDisabled(reloptions: readonly string[] | null): boolean {
  return (reloptions ?? []).some((option) => {
    const [key, value] = option.split("=", 2);
    return key === "autovacuum_enabled" && OFF_VALUES.has((value ?? "").toLowerCase());
  });
}

let parserLoaded: Promise<void> | undefined;

/**
 * What a session's last statement leaves behind on its server connection, which a transaction-mode
 * pooler hands to other clients: LISTEN, and SET without LOCAL (SET TRANSACTION, SET LOCAL and RESET are
 * fine). Parsed with PostgreSQL's parser; a truncated or unparsable text says nothing.
 */
export function sessionStateOf(query: string): PoolingHazardKind | undefined {
  let tree: ReturnType<typeof parseSync>;
  try {
    tree = parseSync(query);
  } catch {
    return undefined;
  }
  for (const { stmt } of tree.stmts ?? []) {
    const node = stmt as unknown as Record<string, Record<string, unknown> | undefined>;
    if (node.ListenStmt) return "listen";
    const set = node.VariableSetStmt;
    if (set && !set.is_local && (set.kind === "VAR_SET_VALUE" || set.kind === "VAR_SET_CURRENT"))
      return "session_set";
  }
  return undefined;
}

/**
 * Maintenance checks for `pgshift check`: autovacuum (on, and tables where it is turned off), tables with
 * many dead tuples or never analyzed, the slowest statements of pg_stat_statements when it is installed,
 * and, in front of a transaction-mode pooler, the session state that pooling would leak or lose.
 */
export async function maintenanceChecks(
  pool: pg.Pool,
  options: MaintenanceOptions = {},
): Promise<MaintenanceReport> {
  const deadMin = options.deadTuplesMin ?? 10_000;
  const ratioMin = options.deadRatioMin ?? 0.2;
  parserLoaded ??= loadModule();
  await parserLoaded;
  const report = await withClient(pool, async (client) => {
    const settings = await client.query<{ autovacuum: string; track_counts: string; port: number }>(
      `select current_setting('autovacuum') as autovacuum, current_setting('track_counts') as track_counts,
              coalesce(inet_server_port(), current_setting('port')::int) as port`,
    );
    const s = settings.rows[0]!;
    const tables = await client.query<{
      schema: string;
      table: string;
      reloptions: string[] | null;
      dead: string;
      live: string;
      analyzed: boolean;
      modified: string;
      last_vacuum: Date | null;
    }>(
      `select t.schemaname as schema, t.relname as table, c.reloptions,
              t.n_dead_tup::text as dead, t.n_live_tup::text as live, t.n_mod_since_analyze::text as modified,
              coalesce(t.last_analyze, t.last_autoanalyze) is not null as analyzed,
              greatest(t.last_vacuum, t.last_autovacuum) as last_vacuum
         from pg_stat_user_tables t join pg_class c on c.oid = t.relid
        order by t.schemaname, t.relname`,
    );
    const disabledTables: TableRef[] = [];
    const deadTuples: DeadTuplesFinding[] = [];
    const neverAnalyzed: TableRef[] = [];
    for (const t of tables.rows) {
      const ref = { schema: t.schema, table: t.table };
      if (autovacuumDisabled(t.reloptions)) disabledTables.push(ref);
      const dead = Number(t.dead);
      const live = Number(t.live);
      const ratio = dead + live > 0 ? dead / (dead + live) : 0;
      if (dead >= deadMin && ratio >= ratioMin)
        deadTuples.push({
          ...ref,
          deadTuples: dead,
          liveTuples: live,
          ratio: Math.round(ratio * 1000) / 1000,
          lastVacuum: t.last_vacuum?.toISOString() ?? null,
        });
      if (!t.analyzed && (live > 0 || Number(t.modified) > 0)) neverAnalyzed.push(ref);
    }
    const statements = await slowStatements(client, options.slowest ?? 5);
    const ownState = await client.query<{ name: string }>(
      `select name from pg_settings where source = 'session' and not (name = any($1))
        union all select 'LISTEN ' || c from pg_listening_channels() c`,
      [POOLER_TRACKED],
    );
    return {
      autovacuum: { on: s.autovacuum === "on", trackCounts: s.track_counts === "on", disabledTables },
      deadTuples,
      neverAnalyzed,
      statements,
      serverPort: Number(s.port),
      ownState: ownState.rows.map((r) => r.name),
    };
  });

  const pooler = await detectPooler(pool, options, report.serverPort);
  const hazards: PoolingHazard[] = [];
  if (pooler.detected === "pgbouncer") {
    hazards.push(...(await sessionHazards(pool)));
    if (report.ownState.length)
      hazards.push({
        kind: report.ownState.some((n) => n.startsWith("LISTEN ")) ? "listen" : "session_set",
        detail: `this check's server connection carries another client's session state: ${report.ownState.join(", ")}`,
      });
    const version = pooler.version ?? options.pgbouncerVersion ?? null;
    if (pooler.detected === "pgbouncer" && version && !atLeast(version, 1, 21))
      hazards.push({
        kind: "named_prepared_statements",
        detail: `PgBouncer ${version} cannot pool named prepared statements in transaction mode (1.21 can, with max_prepared_statements): use unnamed statements (pg: no "name" in queries) or upgrade`,
      });
  }

  const warnings: string[] = [];
  if (!report.autovacuum.on) warnings.push("autovacuum is off: dead tuples pile up and statistics go stale");
  if (!report.autovacuum.trackCounts)
    warnings.push("track_counts is off: autovacuum cannot see which tables need it");
  for (const t of report.autovacuum.disabledTables)
    warnings.push(`autovacuum is turned off for ${t.schema}.${t.table} (autovacuum_enabled = false)`);
  for (const d of report.deadTuples)
    warnings.push(
      `${d.schema}.${d.table} has ${d.deadTuples} dead tuples (${Math.round(d.ratio * 100)} % of its tuples); run VACUUM or check what holds back autovacuum`,
    );
  for (const t of report.neverAnalyzed)
    warnings.push(`${t.schema}.${t.table} was never analyzed; run ANALYZE ${t.schema}.${t.table}`);
  if (pooler.detected === "proxy")
    warnings.push(
      `the server listens on port ${report.serverPort}, not the URL's: a proxy or pooler is in between; if it pools transactions, check again with --pooler pgbouncer`,
    );
  for (const h of hazards)
    warnings.push(
      `transaction pooling: ${h.detail}${h.pid ? ` (pid ${h.pid}${h.applicationName ? `, ${h.applicationName}` : ""})` : ""}`,
    );

  return {
    autovacuum: report.autovacuum,
    deadTuples: report.deadTuples,
    neverAnalyzed: report.neverAnalyzed,
    statements: report.statements,
    pooler: {
      detected: pooler.detected,
      version: pooler.version ?? options.pgbouncerVersion ?? null,
      hazards,
    },
    warnings,
  };
}

async function slowStatements(
  client: pg.ClientBase,
  limit: number,
): Promise<MaintenanceReport["statements"]> {
  const ext = await client.query<{ installed: boolean }>(
    `select installed_version is not null as installed from pg_available_extensions where name = 'pg_stat_statements'`,
  );
  if (!ext.rows.length)
    return {
      state: "not_available",
      hint: "pg_stat_statements is not part of this server's build (contrib)",
    };
  if (!ext.rows[0]!.installed) return { state: "not_installed", hint: ENABLE_STATEMENTS };
  try {
    const { rows } = await client.query<{ query: string; calls: string; mean: number; total: number }>(
      `select s.query, s.calls::text as calls, s.mean_exec_time as mean, s.total_exec_time as total
         from pg_stat_statements s
        where s.dbid = (select oid from pg_database where datname = current_database())
        order by s.mean_exec_time desc limit $1`,
      [limit],
    );
    return {
      state: "installed",
      slowest: rows.map((r) => ({
        query: r.query,
        calls: Number(r.calls),
        meanMs: Math.round(r.mean * 1000) / 1000,
        totalMs: Math.round(r.total * 1000) / 1000,
      })),
    };
  } catch (error) {
    // 55000: the extension exists, but the library was not preloaded
    if (sqlstateOf(error) === "55000") return { state: "not_loaded", hint: ENABLE_STATEMENTS };
    throw error;
  }
}

/** Session state the server shows for other backends: idle sessions holding advisory locks, LISTEN, SET. */
async function sessionHazards(pool: pg.Pool): Promise<PoolingHazard[]> {
  const { rows } = await pool.query<{
    pid: number;
    app: string;
    state: string;
    query: string;
    locks: number;
  }>(
    `select a.pid, a.application_name as app, a.state, a.query,
            (select count(*) from pg_locks l where l.pid = a.pid and l.locktype = 'advisory' and l.granted)::int as locks
       from pg_stat_activity a
      where a.datname = current_database() and a.backend_type = 'client backend' and a.pid <> pg_backend_pid()
        and a.state = 'idle'
      order by a.pid`,
  );
  const hazards: PoolingHazard[] = [];
  for (const r of rows) {
    const who = { pid: r.pid, ...(r.app ? { applicationName: r.app } : {}) };
    // idle, outside a transaction, still holding it: a session-level advisory lock
    if (r.locks > 0)
      hazards.push({
        kind: "session_advisory_lock",
        ...who,
        detail: `a session holds ${r.locks} advisory lock(s) outside a transaction; use pg_advisory_xact_lock`,
      });
    const state = sessionStateOf(r.query);
    if (state === "listen")
      hazards.push({
        kind: "listen",
        ...who,
        detail: "a session LISTENs; notifications need a direct connection",
      });
    if (state === "session_set")
      hazards.push({
        kind: "session_set",
        ...who,
        detail: `SET without LOCAL leaks to other clients: ${oneLine(r.query)}; use SET LOCAL inside the transaction`,
      });
  }
  return hazards;
}

function oneLine(text: string): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > 80 ? `${flat.slice(0, 79)}…` : flat;
}

function atLeast(version: string, major: number, minor: number): boolean {
  const [a = 0, b = 0] = version.split(".").map(Number);
  return a > major || (a === major && b >= minor);
}

/**
 * PgBouncer answers `SHOW VERSION` on its console database "pgbouncer" to its admin and stats users, and
 * refuses others with its own words; a PostgreSQL server says the database does not exist.
 */
async function detectPooler(
  pool: pg.Pool,
  options: MaintenanceOptions,
  serverPort: number,
): Promise<{ detected: "pgbouncer" | "proxy" | null; version: string | null }> {
  if (options.pooler === "none") return { detected: null, version: null };
  const url = options.url ?? (pool.options as { connectionString?: string }).connectionString;
  let parsed: URL | undefined;
  try {
    parsed = url ? new URL(url) : undefined;
  } catch {
    parsed = undefined;
  }
  let version: string | null = null;
  let console = false;
  if (parsed) {
    const consoleUrl = new URL(parsed);
    consoleUrl.pathname = "/pgbouncer";
    const client = new pg.Client({ connectionString: consoleUrl.toString(), connectionTimeoutMillis: 2_000 });
    client.on("error", () => undefined);
    try {
      await client.connect();
      console = true;
      const { rows } = await client.query({ text: "SHOW VERSION", queryMode: "simple" } as pg.QueryConfig);
      version = /(\d+\.\d+(?:\.\d+)?)/.exec(String(Object.values(rows[0] ?? {})[0] ?? ""))?.[1] ?? null;
    } catch (error) {
      const message = error instanceof Error ? error.message : "";
      if (sqlstateOf(error) !== "3D000" && /not allowed|no such user|pgbouncer/i.test(message))
        console = true;
    } finally {
      await client.end().catch(() => undefined);
    }
  }
  if (console || options.pooler === "pgbouncer") return { detected: "pgbouncer", version };
  const urlPort = Number(parsed?.port || 5432);
  return { detected: parsed && urlPort !== serverPort ? "proxy" : null, version: null };
}

import pg from "pg";

/**
 * The backup scenario's database: the shape an application's database has — one large table of
 * readings (bigint identity key, integer foreign key, timestamptz, numeric, text; three indexes) and a
 * few small tables it references — generated in SQL with generate_series, sized to a target in MB as
 * pg_database_size measures it.
 */
export interface BackupDataset {
  database: string;
  /** pg_database_size after VACUUM ANALYZE. */
  bytes: number;
  /** Rows of the large table, and of every table (what a restore must bring back). */
  rows: Record<string, number>;
  /** Bytes per row of the large table with its indexes, measured on a calibration load. */
  bytesPerRow: number;
  generateMs: number;
}

const SITES = 200;
const DEVICES = 5_000;
const STATUS_CODES = ["ok", "warn", "fail", "drift", "gap", "late", "stale", "reset", "calib", "manual"];
const CALIBRATION_ROWS = 200_000;

export const BACKUP_TABLES = ["sites", "devices", "status_codes", "readings"] as const;

const SMALL_TABLES_SQL = `
create table sites (id integer primary key, name text not null, region text not null);
insert into sites select i, 'Site ' || i, (array['north','south','east','west'])[1 + i % 4]
  from generate_series(1, ${SITES}) i;
create table status_codes (code text primary key, description text not null);
insert into status_codes values ${STATUS_CODES.map((c) => `('${c}', 'status ${c}')`).join(", ")};
create table devices (
  id integer primary key,
  site_id integer not null references sites (id),
  model text not null,
  installed_at timestamptz not null
);
insert into devices select i, 1 + i % ${SITES}, 'model-' || (i % 37), timestamptz '2020-01-01' + i * interval '1 hour'
  from generate_series(1, ${DEVICES}) i;
create table readings (
  id bigint primary key,
  device_id integer not null references devices (id),
  recorded_at timestamptz not null,
  value numeric(12, 4) not null,
  status text not null references status_codes (code),
  note text
);`;

const READINGS_INDEXES_SQL = `
create index readings_device_time on readings (device_id, recorded_at);
create index readings_recorded_at on readings (recorded_at);`;

/** Rows from..to (inclusive) of the large table: deterministic values, a note on 6 rows of 7. */
function readingsInsert(from: number, to: number): string {
  const codes = `array[${STATUS_CODES.map((c) => `'${c}'`).join(",")}]`;
  return `insert into readings
    select i, 1 + (i * 7919) % ${DEVICES}, timestamptz '2024-01-01' + i * interval '5 seconds',
           ((i * 104729) % 100000000) / 10000.0, (${codes})[1 + i % ${STATUS_CODES.length}],
           case when i % 7 = 0 then null else md5(i::text) || ' reading ' || (i % 1000) end
      from generate_series(${from}::bigint, ${to}::bigint) i`;
}

/** How many large-table rows make `targetBytes`, given the database's size without them. */
export function rowsForSize(targetBytes: number, baseBytes: number, bytesPerRow: number): number {
  return Math.max(CALIBRATION_ROWS, Math.round((targetBytes - baseBytes) / bytesPerRow));
}

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/**
 * Creates the tables in the (empty) database at `url` and fills the large one until the database is
 * about `targetMb`: a calibration load of 200k rows with its indexes gives the bytes per row; the
 * indexes are dropped, the rest is loaded in `parallel` connections, then indexed and vacuumed.
 */
export async function generateBackupDataset(
  url: string,
  targetMb: number,
  options: { parallel?: number; log?: (message: string) => void } = {},
): Promise<BackupDataset> {
  const started = Date.now();
  const parallel = Math.max(1, options.parallel ?? 2);
  const targetBytes = targetMb * 1024 * 1024;
  const { bytesPerRow, baseBytes } = await withClient(url, async (client) => {
    await client.query(SMALL_TABLES_SQL);
    const empty = await client.query<{ n: string }>("select pg_database_size(current_database()) as n");
    await client.query(readingsInsert(1, CALIBRATION_ROWS));
    await client.query(READINGS_INDEXES_SQL);
    await client.query("vacuum analyze readings");
    const size = await client.query<{ n: string }>("select pg_total_relation_size('readings') as n");
    await client.query("drop index readings_device_time, readings_recorded_at");
    return { bytesPerRow: Number(size.rows[0]!.n) / CALIBRATION_ROWS, baseBytes: Number(empty.rows[0]!.n) };
  });
  const rows = rowsForSize(targetBytes, baseBytes, bytesPerRow);
  options.log?.(
    `backup: generating ${rows.toLocaleString("en-US")} readings (${Math.round(bytesPerRow)} bytes/row with indexes) for ${targetMb} MB`,
  );
  const remaining = rows - CALIBRATION_ROWS;
  const slice = Math.ceil(remaining / parallel);
  await Promise.all(
    Array.from({ length: parallel }, (_, i) => {
      const from = CALIBRATION_ROWS + 1 + i * slice;
      const to = Math.min(rows, from + slice - 1);
      return from > to ? Promise.resolve() : withClient(url, (c) => c.query(readingsInsert(from, to)));
    }),
  );
  return withClient(url, async (client) => {
    await client.query(READINGS_INDEXES_SQL);
    await client.query("vacuum analyze");
    await client.query("checkpoint");
    const size = await client.query<{ n: string; db: string }>(
      "select pg_database_size(current_database()) as n, current_database() as db",
    );
    const counts: Record<string, number> = {};
    for (const table of BACKUP_TABLES) {
      const r = await client.query<{ n: string }>(`select count(*) as n from ${table}`);
      counts[table] = Number(r.rows[0]!.n);
    }
    return {
      database: size.rows[0]!.db,
      bytes: Number(size.rows[0]!.n),
      rows: counts,
      bytesPerRow: Math.round(bytesPerRow * 10) / 10,
      generateMs: Date.now() - started,
    };
  });
}

/** Row counts of the dataset's tables in a restored copy (null for a table that is missing). */
export async function restoredRows(url: string): Promise<Record<string, number | null>> {
  return withClient(url, async (client) => {
    const counts: Record<string, number | null> = {};
    for (const table of BACKUP_TABLES) {
      try {
        const r = await client.query<{ n: string }>(`select count(*) as n from ${table}`);
        counts[table] = Number(r.rows[0]!.n);
      } catch {
        counts[table] = null;
      }
    }
    return counts;
  });
}

/** Whether a restored copy holds every row of every table, and its indexes (a restore is "ready" then). */
export async function restoredComplete(
  url: string,
  expected: Record<string, number>,
): Promise<{ complete: boolean; rows: Record<string, number | null>; indexes: number }> {
  const rows = await restoredRows(url);
  const indexes = await withClient(url, async (client) => {
    const r = await client.query<{ n: string }>(
      "select count(*) as n from pg_indexes where schemaname = 'public' and tablename = any($1)",
      [[...BACKUP_TABLES]],
    );
    return Number(r.rows[0]!.n);
  });
  const complete = BACKUP_TABLES.every((t) => rows[t] === expected[t]) && indexes === EXPECTED_INDEXES;
  return { complete, rows, indexes };
}

/** Primary keys of the four tables plus the large table's two secondary indexes. */
export const EXPECTED_INDEXES = 6;

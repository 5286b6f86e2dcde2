import type pg from "pg";
import type { ImportPlan } from "../schema/plan.ts";

/**
 * What an import recorded in the target (pgshift.import_runs, pgshift.quarantine): its plan, so that
 * `pgshift verify` compares with exactly the names and types the import chose, and the rows it
 * quarantined, which are legitimately absent from the target.
 */
export interface StoredRun {
  runId: string;
  status: string;
  plan: ImportPlan;
  startedAt: string;
}

async function tableExists(pool: pg.Pool, qualified: string): Promise<boolean> {
  const { rows } = await pool.query("select to_regclass($1) is not null as ok", [qualified]);
  return rows[0].ok;
}

/** The latest import run of this SQLite file (absolute path) into `schema` (any schema when absent). */
export async function findStoredRun(
  pool: pg.Pool,
  sourcePath: string,
  schema?: string,
): Promise<StoredRun | undefined> {
  if (!(await tableExists(pool, "pgshift.import_runs"))) return undefined;
  const { rows } = await pool.query(
    `select run_id, status, plan, started_at::text as started_at from pgshift.import_runs
      where source_path = $1 and ($2::text is null or target_schema = $2)
      order by (status = 'completed') desc, started_at desc limit 1`,
    [sourcePath, schema ?? null],
  );
  const run = rows[0];
  if (!run) return undefined;
  return { runId: run.run_id, status: run.status, plan: run.plan as ImportPlan, startedAt: run.started_at };
}

/**
 * Every table imported from this SQLite file into `schema` (the latest run's schema when absent), across
 * runs: a one-table `--tables X --if-exists replace` leaves the other tables of earlier runs in place,
 * and verification covers them all. Each table comes with the plan of the run that last created or
 * loaded it (a run that got past creating its tables); the plan's other fields are findStoredRun's.
 */
export async function findStoredRuns(
  pool: pg.Pool,
  sourcePath: string,
  schema?: string,
): Promise<(StoredRun & { tableRuns: Map<string, string> }) | undefined> {
  const latest = await findStoredRun(pool, sourcePath, schema);
  if (!latest) return undefined;
  const { rows } = await pool.query(
    `select r.run_id, r.plan from pgshift.import_runs r
      where r.source_path = $1 and r.target_schema = $2
        and (r.status = 'completed' or exists (select 1 from pgshift.import_steps s
                                                where s.run_id = r.run_id and s.step = 'schema' and s.status = 'done'))
      order by r.started_at desc`,
    [sourcePath, latest.plan.targetSchema],
  );
  const tables: ImportPlan["tables"] = [];
  const tableRuns = new Map<string, string>();
  const add = (runId: string, plan: ImportPlan) => {
    for (const table of plan.tables) {
      if (tableRuns.has(table.sourceName)) continue;
      tableRuns.set(table.sourceName, runId);
      tables.push(table);
    }
  };
  // Newest first: a table's plan is that of the last run that created or loaded it.
  for (const row of rows) add(row.run_id, row.plan as ImportPlan);
  if (tables.length === 0) add(latest.runId, latest.plan);
  return { ...latest, plan: { ...latest.plan, tables }, tableRuns };
}

/** The latest run id of this source into this schema (for quarantine look-ups after an import). */
export async function latestRunId(
  pool: pg.Pool,
  sourcePath: string,
  schema: string,
): Promise<string | undefined> {
  if (!(await tableExists(pool, "pgshift.import_runs"))) return undefined;
  const { rows } = await pool.query(
    "select run_id from pgshift.import_runs where source_path = $1 and target_schema = $2 order by started_at desc limit 1",
    [sourcePath, schema],
  );
  return rows[0]?.run_id;
}

/** Rowids the run quarantined, per target table ("schema.table" -> rowids). */
export async function quarantinedRowids(pool: pg.Pool, runId: string): Promise<Map<string, bigint[]>> {
  const found = new Map<string, bigint[]>();
  if (!(await tableExists(pool, "pgshift.quarantine"))) return found;
  const { rows } = await pool.query(
    `select target_schema, target_table, location from pgshift.quarantine
      where run_id = $1 and location like 'rowid %'`,
    [runId],
  );
  for (const row of rows) {
    const rowid = /^rowid (-?\d+)$/.exec(row.location)?.[1];
    if (rowid === undefined) continue;
    const key = `${row.target_schema}.${row.target_table}`;
    const list = found.get(key);
    if (list) list.push(BigInt(rowid));
    else found.set(key, [BigInt(rowid)]);
  }
  return found;
}

/**
 * The tables of a run that hold rows other runs put there, with the transactions that inserted this
 * run's own (the xid each chunk's checkpoint recorded): source table -> xids. That is a table the run
 * appended to while it had rows, or one a later `--if-exists append` run (of any source) added rows
 * to. Other tables are not listed: all their rows are the run's, and the whole table is compared.
 */
export async function appendedBy(pool: pg.Pool, runId: string): Promise<Map<string, string[]>> {
  const found = new Map<string, string[]>();
  const { rows } = await pool.query(
    `select c.source_table, array_agg(c.xid::text) as xids, bool_and(c.xid is not null) as recorded
       from pgshift.import_chunks c join pgshift.import_runs r on r.run_id = c.run_id
      where c.run_id = $1 and c.status = 'done'
        and (coalesce((r.options->'baselines'->>c.source_table)::bigint, 0) > 0
             or exists (select 1 from pgshift.import_runs l join pgshift.import_chunks lc on lc.run_id = l.run_id
                         where l.target_schema = r.target_schema and l.started_at > r.started_at
                           and l.options->>'ifExists' = 'append' and lc.target_table = c.target_table
                           and lc.status = 'done'))
      group by c.source_table`,
    [runId],
  );
  // A run recorded before chunks kept their xid cannot be told apart: it is verified as a whole table.
  for (const row of rows) if (row.recorded) found.set(row.source_table, row.xids);
  return found;
}

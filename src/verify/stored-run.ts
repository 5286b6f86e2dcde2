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

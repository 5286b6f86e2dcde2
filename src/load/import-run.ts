import { randomBytes } from "node:crypto";
import { statSync } from "node:fs";
import type pg from "pg";
import { PgshiftError, UsageError } from "../errors.ts";
import { withClient } from "../pg/pool.ts";
import { quoteQualified } from "../pg/quote.ts";
import type { ImportPlan } from "../schema/plan.ts";
import type { IfExists } from "./import-sqlite.ts";
import type { BadValuePolicy } from "./quarantine.ts";
import { assertReplaceable, findDependents } from "./replace-dependents.ts";

/** An import run's row in pgshift.import_runs: started (with its chunks) or found again to resume. */
export function sourceFingerprint(path: string): { size: number; mtimeMs: number } {
  const stat = statSync(path);
  return { size: stat.size, mtimeMs: stat.mtimeMs };
}

export async function findRunToResume(
  pool: pg.Pool,
  path: string,
  schema: string,
  resume: true | string,
): Promise<{
  runId: string;
  plan: ImportPlan;
  options: { ifExists?: IfExists; onBadValue?: BadValuePolicy; cascade?: boolean };
  size: string | null;
  mtimeMs: number | null;
}> {
  const { rows } =
    typeof resume === "string"
      ? await pool.query("select * from pgshift.import_runs where run_id = $1", [resume])
      : await pool.query(
          `select * from pgshift.import_runs where source_path = $1 and target_schema = $2 and status <> 'completed'
           order by started_at desc limit 1`,
          [path, schema],
        );
  const run = rows[0];
  if (!run)
    throw new UsageError(
      typeof resume === "string"
        ? `no import run ${resume} in this database`
        : `no unfinished import of ${path} into schema ${schema} to resume; run without --resume`,
    );
  if (run.status === "completed")
    throw new UsageError(`import run ${run.run_id} already completed; nothing to resume`);
  return {
    runId: run.run_id,
    plan: run.plan,
    options: run.options,
    size: run.source_size,
    mtimeMs: run.source_mtime_ms,
  };
}

export async function createRun(
  pool: pg.Pool,
  plan: ImportPlan,
  path: string,
  spec: string,
  ifExists: IfExists,
  policy: BadValuePolicy,
  cascade = false,
): Promise<string> {
  const schema = plan.targetSchema;
  const targets = [...plan.tables.map((t) => t.targetName), ...plan.views.map((v) => v.targetName)];
  const { rows: existing } = await pool.query(
    `select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = $1 and c.relname = any($2) and c.relkind in ('r', 'p', 'v', 'm')`,
    [schema, targets],
  );
  if (existing.length > 0 && ifExists === "fail") {
    // --resume is offered only when there is an unfinished run of this source to continue.
    const { rows: unfinished } = await pool.query(
      "select 1 from pgshift.import_runs where source_path = $1 and target_schema = $2 and status <> 'completed' limit 1",
      [path, schema],
    );
    throw new PgshiftError(
      "target_exists",
      `already in schema ${schema}: ${existing.map((r) => r.relname).join(", ")}; ${unfinished.length ? "--resume continues the unfinished import, " : ""}--if-exists append adds the rows to them, --if-exists replace would drop them and every row they hold`,
      { exitCode: 2, details: { existing: existing.map((r) => r.relname) } },
    );
  }
  // Refused here, before the run exists: the user's objects would go with the replaced tables.
  if (existing.length > 0 && ifExists === "replace")
    assertReplaceable(
      await withClient(pool, (c) =>
        findDependents(
          c,
          schema,
          existing.map((r) => r.relname),
        ),
      ),
      cascade,
    );
  const baselines: Record<string, number> = {};
  if (ifExists === "append") {
    for (const table of plan.tables) {
      if (!existing.some((r) => r.relname === table.targetName)) continue;
      const { rows } = await pool.query(
        `select count(*)::bigint as n from ${quoteQualified(schema, table.targetName)}`,
      );
      baselines[table.sourceName] = Number(rows[0].n);
    }
  }
  const runId = `${new Date()
    .toISOString()
    .replace(/[-:.TZ]/g, "")
    .slice(0, 14)}-${randomBytes(3).toString("hex")}`;
  const fingerprint = sourceFingerprint(path);
  await withClient(pool, async (client) => {
    await client.query("begin");
    try {
      await client.query(
        `insert into pgshift.import_runs (run_id, source, source_path, source_size, source_mtime_ms, target_schema, status, phase, plan, options)
         values ($1, $2, $3, $4, $5, $6, 'running', 'schema', $7, $8)`,
        [
          runId,
          spec,
          path,
          fingerprint.size,
          fingerprint.mtimeMs,
          schema,
          JSON.stringify(plan),
          JSON.stringify({ ifExists, onBadValue: policy, cascade, baselines }),
        ],
      );
      for (const table of plan.tables) {
        for (const chunk of table.chunks) {
          await client.query(
            `insert into pgshift.import_chunks (run_id, source_table, target_table, chunk, after_rowid, through_rowid)
             values ($1, $2, $3, $4, $5, $6)`,
            [
              runId,
              table.sourceName,
              table.targetName,
              chunk.chunk,
              chunk.afterRowid ?? null,
              chunk.throughRowid ?? null,
            ],
          );
        }
      }
      await client.query("commit");
    } catch (error) {
      await client.query("rollback").catch(() => undefined);
      throw error;
    }
  });
  return runId;
}

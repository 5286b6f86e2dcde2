import { performance } from "node:perf_hooks";
import type pg from "pg";
import { PgshiftError, UsageError } from "../../errors.ts";
import { LockKey, withAdvisoryLock } from "../../pg/advisory-lock.ts";
import { withClient } from "../../pg/pool.ts";
import { quoteQualified } from "../../pg/quote.ts";
import type { ImportPlan } from "../../schema/plan.ts";
import type { SequenceState } from "./import-data-only.ts";

export interface UndoTableResult {
  table: string;
  /** truncate: the table was empty before the run and holds only the run's rows; delete: by the run's xids. */
  how: "truncate" | "delete";
  rowsRemoved: number;
  /** Rows the run loaded; more than removed means rows were changed since (their xmin moved). */
  rowsLoaded: number;
}

export interface UndoResult {
  runId: string;
  tables: UndoTableResult[];
  sequencesRestored: number;
  warnings: string[];
  seconds: number;
}

/**
 * Removes exactly what one `--if-exists append` or data-only run wrote: the rows its chunks'
 * transactions inserted (by xmin), or a TRUNCATE of a table that was empty before the run and holds
 * only those rows; then puts serial/identity sequences back where they were. Never drops a table.
 * One transaction, constraints deferred: all of it, or nothing.
 *
 *   const undone = await undoImport({ pool, runId: "20261201165000-a1b2c3" });
 */
export async function undoImport(options: { pool: pg.Pool; runId: string }): Promise<UndoResult> {
  const started = performance.now();
  const { pool, runId } = options;
  const { rows: runs } = await pool
    .query("select plan, options, phase from pgshift.import_runs where run_id = $1", [runId])
    .catch((error: unknown) => {
      throw new UsageError(`no import run ${runId} in this database (${(error as Error).message})`);
    });
  const run = runs[0];
  if (!run) throw new UsageError(`no import run ${runId} in this database`);
  if (run.phase === "undone") throw new UsageError(`import run ${runId} was already undone`);
  if (run.options?.ifExists !== "append")
    throw new UsageError(
      `import run ${runId} created its tables (--if-exists ${run.options?.ifExists ?? "fail"}); --undo only removes what a --data-only or --if-exists append run added`,
    );
  const plan = run.plan as ImportPlan;
  const baselines: Record<string, number> = run.options.baselines ?? {};
  const sequences: SequenceState[] = run.options.sequences ?? [];
  const { rows: chunks } = await pool.query(
    `select source_table, array_agg(xid::text) filter (where xid is not null) as xids,
            coalesce(sum(rows_loaded), 0)::bigint as loaded
       from pgshift.import_chunks where run_id = $1 and status = 'done' group by source_table`,
    [runId],
  );
  const result: UndoResult = { runId, tables: [], sequencesRestored: 0, warnings: [], seconds: 0 };
  await withAdvisoryLock(
    pool,
    LockKey.import,
    () =>
      withClient(pool, async (client) => {
        await client.query("begin");
        try {
          await client.query("set local lock_timeout = '10s'");
          await client.query("set constraints all deferred");
          const tables = [...plan.tables]
            .reverse()
            .filter((t) => chunks.some((c) => c.source_table === t.sourceName));
          const loadedOf = (t: { sourceName: string }) =>
            Number(chunks.find((c) => c.source_table === t.sourceName)!.loaded);
          // A table empty before the run that holds only the run's rows is truncated, together with
          // the others alike that reference it (TRUNCATE refuses a table referenced from outside the set).
          const onlyRuns = new Set<string>();
          for (const table of tables) {
            if ((baselines[table.sourceName] ?? 0) !== 0) continue;
            const { rows: counts } = await client.query(
              `select count(*)::bigint as n from ${quoteQualified(plan.targetSchema, table.targetName)}`,
            );
            if (Number(counts[0].n) === loadedOf(table)) onlyRuns.add(table.targetName);
          }
          const referrers = await referencingTables(client, plan.targetSchema, [...onlyRuns]);
          let changed = true;
          while (changed) {
            changed = false;
            for (const name of [...onlyRuns])
              if ((referrers.get(name) ?? []).some((r) => !onlyRuns.has(r))) {
                onlyRuns.delete(name);
                changed = true;
              }
          }
          if (onlyRuns.size)
            await client.query(
              `truncate ${[...onlyRuns].map((n) => quoteQualified(plan.targetSchema, n)).join(", ")}`,
            );
          // Children before parents, so that immediate foreign keys never see an orphan.
          for (const table of tables) {
            const loaded = loadedOf(table);
            let removed = loaded;
            const how: UndoTableResult["how"] = onlyRuns.has(table.targetName) ? "truncate" : "delete";
            if (how === "delete") {
              const xids: string[] = chunks.find((c) => c.source_table === table.sourceName)!.xids ?? [];
              const deleted = await client.query(
                `delete from ${quoteQualified(plan.targetSchema, table.targetName)} where xmin::text::bigint = any($1::bigint[])`,
                [xids],
              );
              removed = deleted.rowCount ?? 0;
            }
            if (removed !== loaded)
              result.warnings.push(
                `${table.targetName}: run ${runId} loaded ${loaded} rows, ${removed} removed (rows changed since the run carry another transaction id and were kept)`,
              );
            result.tables.push({ table: table.targetName, how, rowsRemoved: removed, rowsLoaded: loaded });
          }
          for (const s of sequences) {
            await client.query("select setval($1::regclass, $2::bigint, $3)", [
              s.sequence,
              s.lastValue,
              s.isCalled,
            ]);
            result.sequencesRestored++;
          }
          await client.query(
            `update pgshift.import_runs set phase = 'undone', updated_at = now(),
               options = options || jsonb_build_object('undoneAt', now()) where run_id = $1`,
            [runId],
          );
          await client.query("commit");
        } catch (error) {
          await client.query("rollback").catch(() => undefined);
          throw error instanceof PgshiftError
            ? error
            : new PgshiftError(
                "undo_failed",
                `undo of run ${runId} failed, nothing was changed: ${(error as Error).message}`,
                {
                  cause: error,
                },
              );
        }
      }),
    { waitMs: 0, what: "another pgshift import into this database" },
  );
  result.seconds = Math.round(performance.now() - started) / 1000;
  return result;
}

/** For each of `tables`, the other tables whose foreign keys reference it. */
async function referencingTables(
  client: pg.ClientBase,
  schema: string,
  tables: readonly string[],
): Promise<Map<string, string[]>> {
  const { rows } = await client.query(
    `select r.relname as referenced, array_agg(distinct c.relname::text) as referrers
       from pg_constraint k join pg_class r on r.oid = k.confrelid join pg_namespace n on n.oid = r.relnamespace
       join pg_class c on c.oid = k.conrelid
      where k.contype = 'f' and n.nspname = $1 and r.relname = any($2) and c.oid <> r.oid
      group by r.relname`,
    [schema, tables],
  );
  return new Map(rows.map((r) => [r.referenced, r.referrers]));
}

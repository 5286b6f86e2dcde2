import type Database from "better-sqlite3";
import type pg from "pg";
import { isConnectionLost } from "../pg/errors.ts";
import { withClient } from "../pg/pool.ts";
import { type RetryOptions, withRetry } from "../pg/retry.ts";
import type { JobProgress, Logger, ProgressCallback } from "../progress.ts";
import type { ImportPlan } from "../schema/plan.ts";
import type { ChunkWorker } from "./chunk-workers.ts";
import { crashPoint } from "./crash-points.ts";
import type { IfExists, ImportSqliteOptions, StepResult } from "./import-sqlite.ts";
import { readSteps, recordStep, type StepRecord } from "./import-state.ts";
import type { BadValuePolicy } from "./quarantine.ts";

/**
 * What every stage of one import run shares (the run, its plan, the source, the pool, the steps
 * recorded so far), and the helpers that run a stage's steps: once, in one transaction with their record.
 */
export interface RunContext {
  runId: string;
  /** Tables whose keys, indexes and ANALYZE are done (started as soon as their rows were in). */
  finished: Set<string>;
  useThreads: boolean;
  sourcePath: string;
  /** Encoding threads, one per lane; empty: encode in this thread. */
  workers: ChunkWorker[];
  plan: ImportPlan;
  db: Database.Database;
  pool: pg.Pool;
  options: ImportSqliteOptions;
  policy: BadValuePolicy;
  jobs: number;
  ifExists: IfExists;
  /** With replace: the user's objects depending on the replaced tables may be dropped (--cascade). */
  cascade: boolean;
  steps: Map<string, StepRecord>;
  stepResults: StepResult[];
  warnings: string[];
  /** The user's objects dropped by replace --cascade, as the result lists them. */
  dropped: string[];
  onProgress: ProgressCallback;
  /** The run's overall figure: rows of all tables, the phase running now. */
  job: JobProgress;
  logger: Logger;
  /** Rows read so far per source table, for progress. */
  progress: Map<string, number>;
  totalRows: number;
}

/** Runs `tasks` with at most `jobs` at once; stops taking new ones after the first failure, then rethrows it. */
export async function runParallel<T>(
  items: readonly T[],
  jobs: number,
  task: (item: T, lane: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failure: unknown;
  const lane = async (index: number) => {
    while (failure === undefined && next < items.length) {
      const item = items[next++]!;
      try {
        await task(item, index);
      } catch (error) {
        failure ??= error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(jobs, items.length)) }, (_, i) => lane(i)));
  if (failure !== undefined) throw failure;
}

/** Runs `work` and records `step` in one transaction, unless the step is already recorded. */
export async function step(
  ctx: RunContext,
  name: string,
  work: (client: pg.PoolClient) => Promise<"done" | "skipped" | undefined>,
  points: {
    beforeCommit?: Parameters<typeof crashPoint>[0];
    afterCommit?: Parameters<typeof crashPoint>[0];
  } = {},
): Promise<StepResult> {
  const known = ctx.steps.get(name);
  if (known && known.status !== "failed") {
    const result: StepResult = {
      step: name,
      status: known.status,
      ...(known.detail ? { detail: known.detail } : {}),
    };
    ctx.stepResults.push(result);
    return result;
  }
  // A step's work and its record commit together: after a lost connection it is retried, unless the
  // lost COMMIT did land (then its record says so).
  const result = await withRetry(
    async (attempt): Promise<StepResult> => {
      if (attempt > 0) {
        const stored = (await withClient(ctx.pool, (c) => readSteps(c, ctx.runId))).get(name);
        if (stored && stored.status !== "failed")
          return { step: name, status: stored.status, ...(stored.detail ? { detail: stored.detail } : {}) };
      }
      return withClient(ctx.pool, async (client) => {
        await client.query("begin");
        try {
          const status = (await work(client)) ?? "done";
          await recordStep(client, ctx.runId, name, status);
          if (points.beforeCommit) crashPoint(points.beforeCommit);
          await client.query("commit");
          if (points.afterCommit) crashPoint(points.afterCommit);
          return { step: name, status } as StepResult;
        } catch (error) {
          await client.query("rollback").catch(() => undefined);
          // not the step's failure: the run stops (or retries) instead of recording it as failed
          if (isConnectionLost(error)) throw error;
          const detail = error instanceof Error ? error.message : String(error);
          await recordStep(client, ctx.runId, name, "failed", detail).catch(() => undefined);
          return { step: name, status: "failed", detail } as StepResult;
        }
      });
    },
    retryConnectionLoss(ctx, `step ${name}`),
  );
  ctx.steps.set(name, {
    step: name,
    status: result.status as StepRecord["status"],
    detail: result.detail ?? null,
  });
  ctx.stepResults.push(result);
  return result;
}

export async function relationExists(client: pg.ClientBase, schema: string, name: string): Promise<boolean> {
  const { rows } = await client.query(
    "select 1 from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 and c.relname = $2",
    [schema, name],
  );
  return rows.length > 0;
}

export async function constraintExists(
  client: pg.ClientBase,
  schema: string,
  table: string,
  name: string,
): Promise<boolean> {
  const { rows } = await client.query(
    `select 1 from pg_constraint k join pg_class c on c.oid = k.conrelid join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = $1 and c.relname = $2 and k.conname = $3`,
    [schema, table, name],
  );
  return rows.length > 0;
}

/** Retries of work that is exactly-once by its checkpoint: lost connections only, not after a stop request. */
export function retryConnectionLoss(ctx: RunContext, what: string): RetryOptions {
  return {
    retries: 4,
    retryOn: (error) => isConnectionLost(error) && !ctx.options.signal?.aborted,
    onRetry: ({ attempt, delayMs, error }) =>
      ctx.logger.warn(
        `${what}: connection lost (${(error as Error)?.message ?? error}); retry ${attempt} in ${delayMs} ms`,
        { attempt, delayMs },
      ),
  };
}

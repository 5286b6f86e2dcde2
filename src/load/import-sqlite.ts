import { randomBytes } from "node:crypto";
import { existsSync, statSync } from "node:fs";
import { availableParallelism } from "node:os";
import { resolve as resolvePath } from "node:path";
import { performance } from "node:perf_hooks";
import type Database from "better-sqlite3";
import type pg from "pg";
import { PgshiftError, UsageError } from "../errors.ts";
import { LockKey, withAdvisoryLock } from "../pg/advisory-lock.ts";
import { stopIfAborted } from "../pg/abort.ts";
import { openCopy } from "../pg/copy-writer.ts";
import { isConnectionLost, sqlstateOf } from "../pg/errors.ts";
import { ensureInternalSchema } from "../pg/internal-schema.ts";
import { connectionErrorOf, type TargetIdentity, targetOf, withClient } from "../pg/pool.ts";
import { quoteQualified } from "../pg/quote.ts";
import { type RetryOptions, withRetry } from "../pg/retry.ts";
import { type Logger, type ProgressCallback, silentLogger } from "../progress.ts";
import { loadSqlParser } from "../schema/expression.ts";
import type { NamingPolicy } from "../schema/naming.ts";
import {
  buildImportPlan,
  type ChunkPlan,
  type ImportPlan,
  type PlanNote,
  planSql,
  type TablePlan,
} from "../schema/plan.ts";
import { readSqliteCatalog } from "../sources/sqlite/sqlite-catalog.ts";
import { openSqlite, rowidName, THREADS_MIN_SOURCE_BYTES } from "../sources/sqlite/sqlite-rows.ts";
import { scanTable, type TableStats } from "../sources/sqlite/sqlite-scan.ts";
import { siblingModule } from "../version.ts";
import { BadValueError, type ChunkJob, type ChunkOutput, encodeChunk } from "./chunk-encoder.ts";
import { ChunkWorker } from "./chunk-workers.ts";
import { crashPoint } from "./crash-points.ts";
import {
  importPart,
  readChunks,
  readSteps,
  recordStep,
  type StepRecord,
  setRunPhase,
} from "./import-state.ts";
import { type BadValuePolicy, insertQuarantine, type QuarantineEntry, quarantinePart } from "./quarantine.ts";

export type IfExists = "fail" | "replace" | "append";

/** What verification returns; `identical` decides the exit code. Built by src/verify. */
export interface VerificationOutcome {
  identical: boolean;
  [key: string]: unknown;
}

export type VerifyHook = (input: {
  plan: ImportPlan;
  sourcePath: string;
  pool: pg.Pool;
  onProgress?: ProgressCallback;
}) => Promise<VerificationOutcome>;

export interface ImportSqliteOptions {
  /** The SQLite file. */
  path: string;
  /** The source as the user wrote it (for reports), default `sqlite:PATH`. */
  spec?: string;
  pool: pg.Pool;
  /** Target schema, default "public". */
  schema?: string;
  /** Only these source tables (default: all). */
  tables?: readonly string[];
  exclude?: readonly string[];
  naming?: NamingPolicy;
  /** Tables/chunks loaded at once, and index builds in parallel. Default 4. */
  jobs?: number;
  /** When a target table already exists: fail (default), replace (drop and recreate), append. */
  ifExists?: IfExists;
  /** Plan only: return the DDL, touch nothing. */
  dryRun?: boolean;
  onBadValue?: BadValuePolicy;
  /** Continue the latest unfinished run of this source into this schema (or the run with this id). */
  resume?: boolean | string;
  /** false: skip verification; a function: use it; default: src/verify's verifyImport when present. */
  verify?: boolean | VerifyHook;
  /**
   * Scan and encode in worker threads, one per job. Default: only with 4 or more cores; with fewer,
   * PostgreSQL's COPY needs the other core and threads measured slower than the calling thread.
   */
  threads?: boolean;
  /** Rows per chunk (one COPY transaction and checkpoint each). Default 100 000. */
  chunkRows?: number;
  onProgress?: ProgressCallback;
  logger?: Logger;
  /** Stops the run at the next chunk or phase boundary (committed chunks stay; --resume goes on). */
  signal?: AbortSignal;
}

export interface TableResult {
  source: string;
  target: string;
  /** complete: every chunk committed and the server count matches; incomplete: resume needed. */
  status: "complete" | "incomplete" | "failed";
  rowsRead: number;
  rowsLoaded: number;
  rowsQuarantined: number;
  /** count(*) read back from PostgreSQL after the load (minus rows there before, with --if-exists append). */
  rowsInTarget?: number;
  /** Values converted, per target column. */
  conversions: Record<string, number>;
  chunks: { done: number; total: number };
  seconds: number;
  error?: string;
}

export interface StepResult {
  step: string;
  status: "done" | "failed" | "skipped" | "not-run";
  detail?: string;
}

export interface ImportResult {
  ok: boolean;
  runId?: string;
  resumed: boolean;
  dryRun: boolean;
  source: { path: string; spec: string };
  target: TargetIdentity;
  schema: string;
  plan: ImportPlan;
  /** The DDL in execution order (always filled; what --dry-run prints). */
  sql: string[];
  tables: TableResult[];
  steps: StepResult[];
  notes: PlanNote[];
  /** Things that did not fail the import but need attention (constraints left NOT VALID, views not created). */
  warnings: string[];
  totals: {
    rowsRead: number;
    rowsLoaded: number;
    rowsQuarantined: number;
    conversions: number;
  };
  phases: Record<string, number>;
  verification?: VerificationOutcome;
  error?: { code: string; message: string; details?: Record<string, unknown> };
  /** How to finish or undo, when the import did not complete. */
  nextSteps: string[];
  seconds: number;
}

const DEFAULT_CHUNK_ROWS = 100_000;

interface RunContext {
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
  steps: Map<string, StepRecord>;
  stepResults: StepResult[];
  warnings: string[];
  onProgress: ProgressCallback;
  logger: Logger;
  /** Rows read so far per source table, for progress. */
  progress: Map<string, number>;
  totalRows: number;
}

/** Runs `tasks` with at most `jobs` at once; stops taking new ones after the first failure, then rethrows it. */
async function runParallel<T>(
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

function sourceFingerprint(path: string): { size: number; mtimeMs: number } {
  const stat = statSync(path);
  return { size: stat.size, mtimeMs: stat.mtimeMs };
}

async function serverHasIcu(pool: pg.Pool): Promise<boolean> {
  const { rows } = await pool.query(
    "select exists (select 1 from pg_collation where collprovider = 'i') as icu",
  );
  return Boolean(rows[0]?.icu);
}

/**
 * Imports a SQLite database into PostgreSQL: plan -> tables -> COPY (parallel, chunked, exactly-once
 * checkpoints) -> keys -> indexes (parallel) -> CHECK/foreign keys (NOT VALID, then VALIDATE) -> identity
 * sequences -> views -> ANALYZE -> count check -> verification. Never prints; returns a result set.
 *
 *   const result = await importSqlite({ path: "app.db", pool, schema: "app" });
 *   if (!result.ok) console.error(result.nextSteps.join("\n"));
 */
export async function importSqlite(options: ImportSqliteOptions): Promise<ImportResult> {
  const started = performance.now();
  const path = resolvePath(options.path);
  const spec = options.spec ?? `sqlite:${options.path}`;
  const schema = options.schema ?? "public";
  const jobs = Math.max(1, options.jobs ?? 4);
  const onProgress = options.onProgress ?? (() => undefined);
  const logger = options.logger ?? silentLogger;
  const phases: Record<string, number> = {};
  /** The phase running now (the last one `timed` started): recorded on the run when it fails. */
  let currentPhase = "plan";
  const timed = async <T>(phase: string, fn: () => Promise<T>): Promise<T> => {
    stopIfAborted(options.signal);
    currentPhase = phase;
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      phases[phase] = Math.round(performance.now() - t0) / 1000 + (phases[phase] ?? 0);
    }
  };
  await loadSqlParser();
  if (!existsSync(path))
    throw new PgshiftError("source_not_found", `SQLite file ${options.path} does not exist`, {
      details: { path },
    });
  const db = openSqlite(path);
  const cores = availableParallelism();
  const useThreads = options.threads ?? cores >= 4;
  // Scanning and encoding run in worker threads, one per lane (see chunk-worker.ts). The scan has the
  // machine to itself, so it uses threads on two cores too when the file is large enough to pay for
  // starting them, unless threads are switched off.
  const scanThreads =
    useThreads ||
    (options.threads !== false && cores >= 2 && statSync(path).size >= THREADS_MIN_SOURCE_BYTES);
  const workers: ChunkWorker[] =
    !scanThreads || options.resume
      ? []
      : Array.from({ length: useThreads ? jobs : Math.min(jobs, cores) }, () => new ChunkWorker(path));
  try {
    let plan: ImportPlan;
    let runId: string | undefined;
    let resumed = false;
    let ifExists: IfExists = options.ifExists ?? "fail";
    let policy: BadValuePolicy = options.onBadValue ?? "fail";
    if (options.resume) {
      await ensureInternalSchema(options.pool, [quarantinePart, importPart]);
      const found = await findRunToResume(options.pool, path, schema, options.resume);
      const now = sourceFingerprint(path);
      if (found.size !== null && (Number(found.size) !== now.size || found.mtimeMs !== now.mtimeMs))
        throw new PgshiftError(
          "source_changed",
          `${options.path} changed since run ${found.runId} started; resuming would mix two versions. Start over with --if-exists replace`,
          { details: { runId: found.runId } },
        );
      plan = found.plan;
      runId = found.runId;
      ifExists = found.options.ifExists ?? ifExists;
      policy = options.onBadValue ?? found.options.onBadValue ?? policy;
      resumed = true;
      logger.info(`resuming import run ${runId}`, { runId });
    } else {
      plan = await timed("plan", async () => {
        const catalog = readSqliteCatalog(db);
        const stats = new Map<string, TableStats>();
        const wanted = catalog.tables.filter(
          (table) =>
            (!options.tables?.length ||
              options.tables.some((t) => t.toLowerCase() === table.name.toLowerCase())) &&
            !options.exclude?.some((t) => t.toLowerCase() === table.name.toLowerCase()),
        );
        assertRowidAddressable(wanted, options.path);
        await runParallel(wanted, Math.max(1, workers.length), async (table, lane) => {
          const worker = workers[lane];
          stats.set(table.name, worker ? await worker.scan(table) : scanTable(db, table));
        });
        for (const name of options.tables ?? []) {
          if (!catalog.tables.some((t) => t.name.toLowerCase() === name.toLowerCase()))
            throw new UsageError(
              `table ${name} is not in ${options.path}; its tables are: ${catalog.tables.map((t) => t.name).join(", ")}`,
            );
        }
        return buildImportPlan(catalog, stats, {
          sourcePath: path,
          sourceSpec: spec,
          targetSchema: schema,
          naming: options.naming ?? "keep",
          ...(options.tables ? { tables: options.tables } : {}),
          ...(options.exclude ? { exclude: options.exclude } : {}),
          chunkRows: options.chunkRows ?? DEFAULT_CHUNK_ROWS,
          nocase: (await serverHasIcu(options.pool)) ? "icu" : "none",
        });
      });
    }
    // Threads that only scanned go now: on this machine encoding runs in the calling thread.
    if (!useThreads) await Promise.all(workers.splice(0).map((w) => w.close()));
    const base: ImportResult = {
      ok: false,
      resumed,
      dryRun: Boolean(options.dryRun),
      source: { path, spec },
      target: targetOf(options.pool),
      schema,
      plan,
      sql: planSql(plan),
      tables: [],
      steps: [],
      notes: plan.notes,
      warnings: [],
      totals: {
        rowsRead: 0,
        rowsLoaded: 0,
        rowsQuarantined: 0,
        conversions: 0,
      },
      phases,
      nextSteps: [],
      seconds: 0,
    };
    if (options.dryRun) {
      base.ok = true;
      base.tables = plan.tables.map((t) => ({
        source: t.sourceName,
        target: t.targetName,
        status: "incomplete",
        rowsRead: 0,
        rowsLoaded: 0,
        rowsQuarantined: 0,
        conversions: {},
        chunks: { done: 0, total: t.chunks.length },
        seconds: 0,
      }));
      base.seconds = Math.round(performance.now() - started) / 1000;
      return base;
    }
    await ensureInternalSchema(options.pool, [quarantinePart, importPart]);
    return await withAdvisoryLock(
      options.pool,
      LockKey.import,
      async () => {
        if (!runId) runId = await createRun(options.pool, plan, path, spec, ifExists, policy);
        base.runId = runId;
        crashPoint("import:after-run-created");
        const ctx: RunContext = {
          runId,
          finished: new Set(),
          useThreads,
          sourcePath: path,
          workers,
          plan,
          db,
          pool: options.pool,
          options,
          policy,
          jobs,
          ifExists,
          steps: await withClient(options.pool, (c) => readSteps(c, runId!)),
          stepResults: base.steps,
          warnings: base.warnings,
          onProgress,
          logger,
          progress: new Map(),
          totalRows: plan.tables.reduce((sum, t) => sum + t.rows, 0),
        };
        let failure: unknown;
        try {
          await timed("schema", () => createSchema(ctx));
          // The data phase ends with the last row committed; keys, indexes and ANALYZE of tables
          // that finished loading late are still being built then: that rest is the finish phase.
          const { finishing } = await timed("data", () => loadData(ctx));
          await timed("finish", () => finishing);
          crashPoint("data:before-count-check");
          await timed("count", () => checkCounts(ctx, base));
          await timed("keys", () => buildKeys(ctx));
          await timed("indexes", () => buildIndexes(ctx));
          await timed("constraints", () => addConstraints(ctx));
          await timed("identity", () => setIdentities(ctx));
          await timed("views", () => createViews(ctx));
          await timed("analyze", () => analyzeTables(ctx));
          crashPoint("verify:before");
          const verification = await timed("verify", () =>
            runVerification(ctx, path).catch((error: unknown) => {
              throw new PgshiftError(
                "verify_failed",
                `the data is loaded, but verification could not run: ${error instanceof Error ? error.message : String(error)}; run again with --resume to verify, or --no-verify to skip it`,
                { cause: error },
              );
            }),
          );
          if (verification) {
            base.verification = verification;
            if (!verification.identical)
              throw new PgshiftError(
                "verify_mismatch",
                "verification found differences between the SQLite file and PostgreSQL",
                { exitCode: 3 },
              );
          }
          crashPoint("run:before-complete");
          await withClient(options.pool, (c) => setRunPhase(c, runId!, "done", "completed"));
          crashPoint("run:after-complete");
        } catch (error) {
          failure = error;
          const message = error instanceof Error ? error.message : String(error);
          await withClient(options.pool, (c) =>
            setRunPhase(c, runId!, currentPhase, "failed", message),
          ).catch(() => undefined);
        }
        await summarize(ctx, base).catch((error: unknown) => {
          // the server may be gone: what is complete stays unknown until --resume reads the checkpoints
          failure ??= error;
          base.warnings.push(
            `could not read which chunks are complete: ${String((error as Error)?.message ?? error)}`,
          );
        });
        if (failure !== undefined) {
          const err =
            connectionErrorOf(failure, options.pool) ??
            (failure instanceof PgshiftError
              ? failure
              : new PgshiftError("import_failed", String((failure as Error)?.message ?? failure), {
                  cause: failure,
                }));
          base.error = {
            code: err.code,
            message: err.message,
            details: err.details,
          };
          base.ok = false;
          base.nextSteps = [
            `resume: pgshift import ${spec} --schema ${schema} --resume   (continues run ${runId}: committed chunks are kept, the rest is redone)`,
            `roll back: pgshift import ${spec} --schema ${schema} --if-exists replace   (starts over), or drop the imported tables: ${plan.tables.map((t) => quoteQualified(schema, t.targetName)).join(", ")}`,
          ];
        } else {
          base.ok =
            base.tables.every((t) => t.status === "complete") &&
            !base.steps.some(
              (s) =>
                s.status === "failed" &&
                !s.step.startsWith("validate:") &&
                !s.step.startsWith("view:") &&
                !s.step.startsWith("add:"),
            );
        }
        base.seconds = Math.round(performance.now() - started) / 1000;
        return base;
      },
      { waitMs: 0, what: "another pgshift import into this database" },
    );
  } finally {
    await Promise.all(workers.map((w) => w.close()));
    db.close();
  }
}

async function findRunToResume(
  pool: pg.Pool,
  path: string,
  schema: string,
  resume: true | string,
): Promise<{
  runId: string;
  plan: ImportPlan;
  options: { ifExists?: IfExists; onBadValue?: BadValuePolicy };
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

async function createRun(
  pool: pg.Pool,
  plan: ImportPlan,
  path: string,
  spec: string,
  ifExists: IfExists,
  policy: BadValuePolicy,
): Promise<string> {
  const schema = plan.targetSchema;
  const targets = [...plan.tables.map((t) => t.targetName), ...plan.views.map((v) => v.targetName)];
  const { rows: existing } = await pool.query(
    `select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = $1 and c.relname = any($2) and c.relkind in ('r', 'p', 'v', 'm')`,
    [schema, targets],
  );
  if (existing.length > 0 && ifExists === "fail")
    throw new PgshiftError(
      "target_exists",
      `already in schema ${schema}: ${existing.map((r) => r.relname).join(", ")}; pass --if-exists replace to drop and recreate them, --if-exists append to add the rows, or --resume to continue an unfinished import`,
      { exitCode: 2, details: { existing: existing.map((r) => r.relname) } },
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
          JSON.stringify({ ifExists, onBadValue: policy, baselines }),
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

/** Runs `work` and records `step` in one transaction, unless the step is already recorded. */
async function step(
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

async function relationExists(client: pg.ClientBase, schema: string, name: string): Promise<boolean> {
  const { rows } = await client.query(
    "select 1 from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 and c.relname = $2",
    [schema, name],
  );
  return rows.length > 0;
}

async function constraintExists(
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

async function createSchema(ctx: RunContext): Promise<void> {
  const { plan } = ctx;
  crashPoint("schema:before-create");
  const result = await step(
    ctx,
    "schema",
    async (client) => {
      for (const sql of plan.setupSql) await client.query(sql);
      if (ctx.ifExists === "replace") {
        for (const view of [...plan.views].reverse())
          await client.query(
            `drop view if exists ${quoteQualified(plan.targetSchema, view.targetName)} cascade`,
          );
        for (const table of plan.tables)
          await client.query(
            `drop table if exists ${quoteQualified(plan.targetSchema, table.targetName)} cascade`,
          );
      }
      for (const table of plan.tables) {
        if (
          ctx.ifExists === "append" &&
          (await relationExists(client, plan.targetSchema, table.targetName))
        ) {
          await checkAppendColumns(client, plan.targetSchema, table);
          continue;
        }
        await client.query(table.createSql);
      }
      return "done";
    },
    {
      beforeCommit: "schema:before-commit",
      afterCommit: "schema:after-commit",
    },
  );
  if (result.status === "failed")
    throw new PgshiftError("schema_failed", `creating the tables failed: ${result.detail}`);
}

async function checkAppendColumns(client: pg.ClientBase, schema: string, table: TablePlan): Promise<void> {
  const { rows } = await client.query(
    `select a.attname from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = $1 and c.relname = $2 and a.attnum > 0 and not a.attisdropped`,
    [schema, table.targetName],
  );
  const present = new Set(rows.map((r) => r.attname));
  const missing = table.columns.filter((c) => !present.has(c.targetName)).map((c) => c.targetName);
  if (missing.length)
    throw new PgshiftError(
      "append_mismatch",
      `cannot append to ${schema}.${table.targetName}: it has no column(s) ${missing.join(", ")}; use --if-exists replace`,
    );
}

function emitProgress(ctx: RunContext, table: TablePlan, finished = false): void {
  const done = ctx.progress.get(table.sourceName) ?? 0;
  ctx.onProgress({
    task: table.targetName,
    done,
    total: table.rows,
    unit: "rows",
    ...(finished ? { finished } : {}),
  });
  let all = 0;
  for (const n of ctx.progress.values()) all += n;
  ctx.onProgress({
    task: "all tables",
    done: all,
    total: ctx.totalRows,
    unit: "rows",
  });
}

/** Loads every pending chunk; resolves when all rows are in, with the builds still running on tables that finished late. */
async function loadData(ctx: RunContext): Promise<{ finishing: Promise<void> }> {
  const chunks = await withClient(ctx.pool, (c) => readChunks(c, ctx.runId));
  const byTable = new Map(ctx.plan.tables.map((t) => [t.sourceName, t]));
  const pending: { table: TablePlan; chunk: ChunkPlan }[] = [];
  for (const record of chunks) {
    const table = byTable.get(record.sourceTable)!;
    if (record.status === "done") {
      ctx.progress.set(table.sourceName, (ctx.progress.get(table.sourceName) ?? 0) + record.rowsRead);
      continue;
    }
    pending.push({
      table,
      chunk: table.chunks.find((c) => c.chunk === record.chunk)!,
    });
  }
  // Largest tables first, so that the small ones fill the gaps at the end.
  pending.sort((a, b) => b.table.rows - a.table.rows || a.chunk.chunk - b.chunk.chunk);
  const remaining = new Map<string, number>();
  for (const p of pending) remaining.set(p.table.sourceName, (remaining.get(p.table.sourceName) ?? 0) + 1);
  const slots = Math.max(1, Math.min(ctx.jobs, pending.length));
  const workers = ctx.workers;
  if (workers.length === 0 && ctx.useThreads && pending.length > 0)
    for (let i = 0; i < slots; i++) workers.push(new ChunkWorker(ctx.sourcePath));
  // A table whose rows are all in gets its keys, indexes and ANALYZE at once, one table at a time
  // (one extra connection) while the lanes go on loading the others, then several at once.
  const finisher = new Finisher(ctx);
  try {
    // Each lane owns one worker: a worker encodes one chunk at a time.
    await runParallel(pending, slots, async ({ table, chunk }, lane) => {
      // A lost connection is retried here, at the chunk boundary: the chunk's rows and its checkpoint
      // commit together, so a retry loads it exactly once (or skips it when the lost commit did land).
      await withRetry(
        async (attempt) => {
          if (attempt > 0) {
            if (await chunkDone(ctx, table, chunk)) return;
            // the lane's encoding thread stopped with the failed COPY: a new one takes over
            if (workers[lane]) {
              await workers[lane].close().catch(() => undefined);
              workers[lane] = new ChunkWorker(ctx.sourcePath);
            }
          }
          stopIfAborted(ctx.options.signal);
          await withClient(ctx.pool, (client) => loadChunk(ctx, client, table, chunk, workers[lane]));
        },
        retryConnectionLoss(ctx, `chunk ${chunk.chunk} of ${table.sourceName}`),
      );
      const left = remaining.get(table.sourceName)! - 1;
      remaining.set(table.sourceName, left);
      if (left === 0) {
        emitProgress(ctx, table, true);
        finisher.add(table);
      }
    });
  } catch (error) {
    // After a failure the run stops: builds under way end, and --resume builds the rest in order.
    finisher.stop();
    await finisher.drained().catch(() => undefined);
    throw error;
  }
  // The last row is in: the builds left may use every lane.
  finisher.widen(ctx.jobs);
  // The threads are not needed after the data phase: their memory goes back now.
  await Promise.all(workers.splice(0).map((w) => w.close()));
  let all = 0;
  for (const n of ctx.progress.values()) all += n;
  ctx.onProgress({
    task: "all tables",
    done: all,
    total: ctx.totalRows,
    unit: "rows",
    finished: true,
  });
  return { finishing: finisher.drained() };
}

/**
 * Builds keys, indexes and ANALYZE of tables whose rows are all in (finishTable), `limit` tables at
 * a time, in the order they were added. The first failure stops it: nothing new starts, and drained()
 * rejects with that failure once the builds under way have ended.
 */
class Finisher {
  private readonly queue: TablePlan[] = [];
  private running = 0;
  private limit = 1;
  private stopped = false;
  private failure: { error: unknown } | undefined;
  private waiters: (() => void)[] = [];

  constructor(private readonly ctx: RunContext) {}

  add(table: TablePlan): void {
    this.queue.push(table);
    this.pump();
  }

  widen(limit: number): void {
    this.limit = Math.max(this.limit, limit);
    this.pump();
  }

  stop(): void {
    this.stopped = true;
    this.pump();
  }

  private pump(): void {
    while (!this.stopped && !this.failure && this.running < this.limit && this.queue.length > 0) {
      const table = this.queue.shift()!;
      this.running++;
      finishTable(this.ctx, table).then(
        () => this.settle(),
        (error: unknown) => {
          this.failure ??= { error };
          this.settle();
        },
      );
    }
    if (this.running === 0 && (this.queue.length === 0 || this.stopped || this.failure)) {
      for (const wake of this.waiters.splice(0)) wake();
    }
  }

  private settle(): void {
    this.running--;
    this.pump();
  }

  /** Resolves when nothing is running and nothing more will start; rejects with the first failure. */
  async drained(): Promise<void> {
    if (!(this.running === 0 && (this.queue.length === 0 || this.stopped || this.failure)))
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    if (this.failure) throw this.failure.error;
  }
}

/** Retries of work that is exactly-once by its checkpoint: lost connections only, not after a stop request. */
function retryConnectionLoss(ctx: RunContext, what: string): RetryOptions {
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

async function chunkDone(ctx: RunContext, table: TablePlan, chunk: ChunkPlan): Promise<boolean> {
  const { rows } = await ctx.pool.query(
    "select status from pgshift.import_chunks where run_id = $1 and source_table = $2 and chunk = $3",
    [ctx.runId, table.sourceName, chunk.chunk],
  );
  return rows[0]?.status === "done";
}

async function loadChunk(
  ctx: RunContext,
  client: pg.PoolClient,
  table: TablePlan,
  chunk: ChunkPlan,
  worker: ChunkWorker | undefined,
  wholeRows = true,
): Promise<void> {
  crashPoint("data:chunk-start");
  const t0 = performance.now();
  const schema = ctx.plan.targetSchema;
  let counted = 0;
  await client.query("begin");
  try {
    // Safe for exactly-once: a lost commit loses the rows and their checkpoint together.
    await client.query("set local synchronous_commit = off");
    const copy = openCopy(client, {
      schema,
      table: table.targetName,
      columns: table.columns.map((c) => c.targetName),
    });
    let flushes = 0;
    const sink = async (data: string | Uint8Array, rowsRead: number) => {
      // The write is issued before the crash point, so "data:mid-copy" kills with COPY data in flight.
      const written = copy.write(data);
      flushes++;
      if (flushes === 1) crashPoint("data:mid-copy");
      ctx.progress.set(table.sourceName, (ctx.progress.get(table.sourceName) ?? 0) + (rowsRead - counted));
      counted = rowsRead;
      emitProgress(ctx, table);
      await written;
    };
    const job: ChunkJob = { table, chunk, policy: ctx.policy, wholeRows };
    let output: ChunkOutput;
    try {
      output = worker ? await worker.run(job, sink) : await encodeChunk(ctx.db, job, sink);
    } catch (error) {
      await copy.abort(error as Error);
      throw error;
    }
    const loaded = await copy.end();
    const read = output.rowsRead;
    crashPoint("data:before-quarantine");
    const entries: QuarantineEntry[] = output.quarantined.map((q) => ({
      runId: ctx.runId,
      source: ctx.plan.source.spec,
      targetSchema: schema,
      targetTable: table.targetName,
      location: q.location,
      column: q.column,
      reason: q.reason,
      raw: q.raw,
      rawFormat: "sqlite-row-json",
    }));
    for (let i = 0; i < entries.length; i += 500) await insertQuarantine(client, entries.slice(i, i + 500));
    crashPoint("data:before-checkpoint");
    const conversions: Record<string, number> = {};
    table.columns.forEach((c, i) => {
      if (output.conversions[i]) conversions[c.targetName] = output.conversions[i]!;
    });
    const seconds = (performance.now() - t0) / 1000;
    const updated = await client.query(
      `update pgshift.import_chunks set status = 'done', rows_read = $4, rows_loaded = $5, rows_quarantined = $6,
         conversions = $7, seconds = $8, committed_at = now()
       where run_id = $1 and source_table = $2 and chunk = $3 and status = 'pending'`,
      [
        ctx.runId,
        table.sourceName,
        chunk.chunk,
        read,
        loaded,
        entries.length,
        JSON.stringify(conversions),
        seconds,
      ],
    );
    if (updated.rowCount !== 1)
      throw new PgshiftError(
        "checkpoint_conflict",
        `chunk ${chunk.chunk} of ${table.sourceName} was already committed by another process`,
      );
    if (loaded + entries.length !== read)
      throw new PgshiftError(
        "count_mismatch",
        `table ${table.sourceName} chunk ${chunk.chunk}: read ${read} rows but the server loaded ${loaded} and ${entries.length} were quarantined`,
      );
    crashPoint("data:before-commit");
    await client.query("commit");
    crashPoint("data:after-commit");
    ctx.progress.set(table.sourceName, (ctx.progress.get(table.sourceName) ?? 0) + (read - counted));
  } catch (error) {
    await client.query("rollback").catch(() => undefined);
    ctx.progress.set(table.sourceName, (ctx.progress.get(table.sourceName) ?? 0) - counted);
    // SQL-built text goes to the server unchecked (invalid UTF-8, say): when the server refuses a
    // value, the chunk is encoded again in JavaScript, which finds the row and applies the policy.
    if (wholeRows && sqlstateOf(error)?.startsWith("22"))
      return loadChunk(ctx, client, table, chunk, worker, false);
    throw error;
  }
}

async function checkCounts(ctx: RunContext, result: ImportResult): Promise<void> {
  const chunks = await withClient(ctx.pool, (c) => readChunks(c, ctx.runId));
  const { rows } = await ctx.pool.query("select options from pgshift.import_runs where run_id = $1", [
    ctx.runId,
  ]);
  const baselines: Record<string, number> = rows[0]?.options?.baselines ?? {};
  const problems: string[] = [];
  for (const table of ctx.plan.tables) {
    const loaded = chunks
      .filter((c) => c.sourceTable === table.sourceName)
      .reduce((n, c) => n + c.rowsLoaded, 0);
    const { rows: counted } = await ctx.pool.query(
      `select count(*)::bigint as n from ${quoteQualified(ctx.plan.targetSchema, table.targetName)}`,
    );
    const inTarget = Number(counted[0].n) - (baselines[table.sourceName] ?? 0);
    if (inTarget !== loaded)
      problems.push(`${table.targetName}: ${loaded} rows loaded but ${inTarget} in PostgreSQL`);
  }
  void result;
  if (problems.length)
    throw new PgshiftError("count_mismatch", `row counts differ after loading: ${problems.join("; ")}`);
}

async function buildTableKeys(ctx: RunContext, table: TablePlan): Promise<void> {
  const schema = ctx.plan.targetSchema;
  for (const key of table.keys) {
    crashPoint("keys:before");
    const r = await step(
      ctx,
      `key:${table.targetName}:${key.targetName}`,
      async (client) => {
        if (await constraintExists(client, schema, table.targetName, key.targetName)) return "skipped";
        await client.query(key.sql);
        return "done";
      },
      { beforeCommit: "keys:before-commit", afterCommit: "keys:after-commit" },
    );
    if (r.status === "failed")
      ctx.warnings.push(`key not created: ${table.targetName} ${key.kind} ${key.targetName}: ${r.detail}`);
  }
}

async function buildTableIndex(ctx: RunContext, index: TablePlan["indexes"][number]): Promise<void> {
  const schema = ctx.plan.targetSchema;
  crashPoint("index:before");
  const r = await step(
    ctx,
    `index:${index.targetName}`,
    async (client) => {
      if (await relationExists(client, schema, index.targetName)) return "skipped";
      await client.query(index.sql);
      return "done";
    },
    { beforeCommit: "index:before-commit", afterCommit: "index:after-commit" },
  );
  if (r.status === "failed") ctx.warnings.push(`index ${index.targetName} not created: ${r.detail}`);
}

async function analyzeTable(ctx: RunContext, table: TablePlan): Promise<void> {
  const name = `analyze:${table.targetName}`;
  if (ctx.steps.get(name)?.status === "done") return;
  crashPoint("analyze:before");
  await withClient(ctx.pool, async (client) => {
    await client.query(`analyze ${quoteQualified(ctx.plan.targetSchema, table.targetName)}`);
    await recordStep(client, ctx.runId, name, "done");
  });
  ctx.steps.set(name, { step: name, status: "done", detail: null });
  crashPoint("analyze:after");
}

/**
 * Keys, indexes and ANALYZE of one table whose rows are all in: run while other tables still load,
 * so that PostgreSQL builds them while pgshift is busy reading and encoding.
 */
async function finishTable(ctx: RunContext, table: TablePlan): Promise<void> {
  await buildTableKeys(ctx, table);
  for (const index of table.indexes) await buildTableIndex(ctx, index);
  await analyzeTable(ctx, table);
  ctx.finished.add(table.sourceName);
}

async function buildKeys(ctx: RunContext): Promise<void> {
  const tables = ctx.plan.tables.filter((t) => !ctx.finished.has(t.sourceName));
  await runParallel(tables, ctx.jobs, (table) => buildTableKeys(ctx, table));
}

async function buildIndexes(ctx: RunContext): Promise<void> {
  const all = ctx.plan.tables
    .filter((t) => !ctx.finished.has(t.sourceName))
    .flatMap((table) => table.indexes.map((index) => ({ table, index })));
  await runParallel(all, ctx.jobs, ({ index }) => buildTableIndex(ctx, index));
}

async function addConstraints(ctx: RunContext): Promise<void> {
  const schema = ctx.plan.targetSchema;
  // Adding NOT VALID is instant but locks both tables of a foreign key: one at a time.
  for (const table of ctx.plan.tables) {
    for (const constraint of [...table.checks, ...table.foreignKeys]) {
      crashPoint("constraint:before-add");
      const r = await step(ctx, `add:${table.targetName}:${constraint.targetName}`, async (client) => {
        if (await constraintExists(client, schema, table.targetName, constraint.targetName)) return "skipped";
        await client.query(constraint.addSql);
        return "done";
      });
      crashPoint("constraint:after-add");
      if (r.status === "failed")
        ctx.warnings.push(
          `${constraint.kind} ${constraint.targetName} on ${table.targetName} not created (${constraint.sourceSql}): ${r.detail}`,
        );
    }
  }
  // VALIDATE scans without blocking writers; validations of one table run one after another.
  await runParallel(ctx.plan.tables, ctx.jobs, async (table) => {
    for (const constraint of [...table.checks, ...table.foreignKeys]) {
      if (ctx.steps.get(`add:${table.targetName}:${constraint.targetName}`)?.status === "failed") continue;
      crashPoint("constraint:before-validate");
      const r = await step(ctx, `validate:${table.targetName}:${constraint.targetName}`, async (client) => {
        await client.query(constraint.validateSql);
        return "done";
      });
      crashPoint("constraint:after-validate");
      if (r.status === "failed")
        ctx.warnings.push(
          `${constraint.kind} ${constraint.targetName} on ${table.targetName} left NOT VALID (enforced for new rows only): ${r.detail}`,
        );
    }
  });
}

async function setIdentities(ctx: RunContext): Promise<void> {
  for (const table of ctx.plan.tables) {
    if (!table.identitySql) continue;
    crashPoint("identity:before");
    const r = await step(ctx, `identity:${table.targetName}`, async (client) => {
      await client.query(table.identitySql!);
      return "done";
    });
    crashPoint("identity:after");
    if (r.status === "failed")
      throw new PgshiftError(
        "identity_failed",
        `setting the identity of ${table.targetName} failed: ${r.detail}`,
      );
  }
}

async function createViews(ctx: RunContext): Promise<void> {
  for (const view of ctx.plan.views) {
    if (!view.sql) continue;
    crashPoint("view:before");
    const r = await step(ctx, `view:${view.targetName}`, async (client) => {
      await client.query(`set local search_path = ${quoteQualified(undefined, ctx.plan.targetSchema)}`);
      if (ctx.ifExists === "append" && (await relationExists(client, ctx.plan.targetSchema, view.targetName)))
        return "skipped";
      await client.query(view.sql!);
      return "done";
    });
    crashPoint("view:after");
    if (r.status === "failed")
      ctx.warnings.push(
        `view ${view.sourceName} not created: ${r.detail}. Its SQLite SQL: ${view.sourceSql}`,
      );
  }
}

async function analyzeTables(ctx: RunContext): Promise<void> {
  const tables = ctx.plan.tables.filter((t) => !ctx.finished.has(t.sourceName));
  await runParallel(tables, ctx.jobs, (table) => analyzeTable(ctx, table));
}

async function runVerification(
  ctx: RunContext,
  sourcePath: string,
): Promise<VerificationOutcome | undefined> {
  const option = ctx.options.verify;
  if (option === false) return undefined;
  let hook: VerifyHook | undefined = typeof option === "function" ? option : undefined;
  if (!hook) {
    // Loaded lazily: verification reads back from the server after the load and is skipped with --no-verify.
    const module = (await import(siblingModule(import.meta.url, "../verify/index").href)) as {
      verifyImport: VerifyHook;
    };
    hook = module.verifyImport;
  }
  if (!hook) return undefined;
  return hook({
    plan: ctx.plan,
    sourcePath,
    pool: ctx.pool,
    onProgress: ctx.onProgress,
  });
}

async function summarize(ctx: RunContext, result: ImportResult): Promise<void> {
  const chunks = await withClient(ctx.pool, (c) => readChunks(c, ctx.runId));
  result.tables = ctx.plan.tables.map((table) => {
    const mine = chunks.filter((c) => c.sourceTable === table.sourceName);
    const done = mine.filter((c) => c.status === "done");
    const conversions: Record<string, number> = {};
    for (const chunk of done)
      for (const [k, v] of Object.entries(chunk.conversions)) conversions[k] = (conversions[k] ?? 0) + v;
    const entry: TableResult = {
      source: table.sourceName,
      target: table.targetName,
      status: done.length === mine.length ? "complete" : "incomplete",
      rowsRead: done.reduce((n, c) => n + c.rowsRead, 0),
      rowsLoaded: done.reduce((n, c) => n + c.rowsLoaded, 0),
      rowsQuarantined: done.reduce((n, c) => n + c.rowsQuarantined, 0),
      conversions,
      chunks: { done: done.length, total: mine.length },
      seconds: Math.round(done.reduce((n, c) => n + c.seconds, 0) * 1000) / 1000,
    };
    return entry;
  });
  const totals = result.totals;
  for (const t of result.tables) {
    totals.rowsRead += t.rowsRead;
    totals.rowsLoaded += t.rowsLoaded;
    totals.rowsQuarantined += t.rowsQuarantined;
    totals.conversions += Object.values(t.conversions).reduce((a, b) => a + b, 0);
  }
}

export { BadValueError };

/**
 * pgshift reads, chunks, resumes and re-reads rows of rowid tables by SQLite's row id, under the name
 * no column takes (rowid, _rowid_ or oid). A table whose columns take all three is refused before
 * anything is created, with the way out, instead of failing half-way.
 */
function assertRowidAddressable(
  tables: readonly { name: string; withoutRowid: boolean; columns: readonly { name: string }[] }[],
  path: string,
): void {
  const hidden = tables.filter(
    (t) => !t.withoutRowid && rowidName(t.columns.map((c) => c.name)) === undefined,
  );
  if (hidden.length === 0) return;
  const names = hidden.map((t) => t.name);
  throw new PgshiftError(
    "rowid_hidden",
    `${names.map((n) => `table "${n}"`).join(", ")} in ${path} ${names.length > 1 ? "have" : "has"} columns named rowid, _rowid_ and oid, which hide every name of SQLite's row id that pgshift reads rows by; rename one of them in a copy of the database (ALTER TABLE ... RENAME COLUMN oid TO ...) or leave the table out with --exclude ${names.join(",")}`,
    { details: { tables: names } },
  );
}

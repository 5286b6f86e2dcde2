import { existsSync, statSync } from "node:fs";
import { availableParallelism } from "node:os";
import { resolve as resolvePath } from "node:path";
import { performance } from "node:perf_hooks";
import type pg from "pg";
import { assertImportSchema } from "../config/reserved-schema.ts";
import { PgshiftError, UsageError } from "../errors.ts";
import { stopIfAborted } from "../pg/abort.ts";
import { LockKey, withAdvisoryLock } from "../pg/advisory-lock.ts";
import { openCopy } from "../pg/copy-writer.ts";
import { sqlstateOf } from "../pg/errors.ts";
import { ensureInternalSchema } from "../pg/internal-schema.ts";
import { connectionErrorOf, type TargetIdentity, targetOf, withClient } from "../pg/pool.ts";
import { withRetry } from "../pg/retry.ts";
import { quoteQualified } from "../pg/quote.ts";
import { JobProgress, type Logger, type ProgressCallback, silentLogger } from "../progress.ts";
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
import { siblingModule } from "../version.ts";
import { BadValueError, type ChunkJob, type ChunkOutput, encodeChunk } from "./chunk-encoder.ts";
import { ChunkWorker } from "./chunk-workers.ts";
import { assertColumnsFit } from "./column-limit.ts";
import { crashPoint } from "./crash-points.ts";
import { EncryptionKeyError } from "../crypto/crypto-errors.ts";
import { encryptionPart } from "../crypto/encryption-registry.ts";
import type { Keyring } from "../crypto/keyring.ts";
import { RECORD_MAC_COLUMN } from "../crypto/record-mac.ts";
import type { ColumnEncryptionOptions } from "../schema/encrypted-columns.ts";
import { RowSealer, sealsRows } from "./row-sealer.ts";
import { assertResumeMatches, importPart, readChunks, readSteps, setRunPhase } from "./import-state.ts";
import { countSchemaObjects, type SchemaObjects } from "./object-counts.ts";
import { assertNamedObjects } from "./source-names.ts";
import { createTriggers, type UntranslatedObject, untranslatedObjects } from "./create-triggers.ts";
import { type BadValuePolicy, insertQuarantine, type QuarantineEntry, quarantinePart } from "./quarantine.ts";
import { createSchema } from "./create-schema.ts";
import {
  addConstraints,
  analyzeTables,
  buildIndexes,
  buildKeys,
  createViews,
  Finisher,
  setIdentities,
} from "./finish-steps.ts";
import { createRun, findRunToResume, sourceFingerprint } from "./import-run.ts";
import { appendUndoSql, nextSteps } from "./next-steps.ts";
import { verificationConnectionError } from "./verification-outcome.ts";
import type { EarlySourceSums } from "../verify/early-source-sums.ts";
import { startEarlyVerification, verifiesWhileLoading } from "./early-verification.ts";
import { planForeignKeysToExistingTables } from "./outside-foreign-keys.ts";
import { recreateDependents } from "./replace-dependents.ts";
import { type RunContext, retryConnectionLoss, runParallel, step } from "./run-context.ts";
import { scanTables } from "./scan-tables.ts";

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
  /** The source side, computed while loading (with the default verification). */
  early?: EarlySourceSums;
  /** The keys of encrypted columns (their values are decrypted and compared). */
  keyring?: Keyring;
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
  /**
   * With replace: also drop the user's objects that depend on the replaced tables (views, foreign
   * keys...), listed in `dropped`. Without it, such objects make the import refuse (exit 2).
   */
  cascade?: boolean;
  /** Plan only: return the DDL, touch nothing. */
  dryRun?: boolean;
  onBadValue?: BadValuePolicy;
  /** Continue the latest unfinished run of this source into this schema (or the run with this id). */
  resume?: boolean | string;
  /** false: skip verification; a function: use it; default: src/verify's verifyImport when present. */
  verify?: boolean | VerifyHook;
  /**
   * Compute the default verification's source side in a worker thread while loading, instead of after
   * it. Default: on two cores or more, for a source of 32 MiB or more.
   */
  verifyWhileLoading?: boolean;
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
  /** `--to` as the user gave it (password redacted), repeated in next-step hints. */
  hintTo?: string;
  /**
   * Columns encrypted at rest, as "table.column" (source names): created as jsonb holding AES-256-GCM
   * envelopes, decrypted with decryptRow(). Needs `keyring`. See docs/encryption.md.
   */
  encryptedColumns?: readonly string[];
  /** Encrypted columns that also get a blind index for equality lookups ("table.column"). */
  blindIndexColumns?: readonly string[];
  /** A keyed record MAC (`record_mac`) per row of every table with encrypted columns. */
  integrity?: boolean;
  /** The keys for encryptedColumns/integrity (loadKeyring()); needed again to resume such a run. */
  keyring?: Keyring;
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
  /** The user's objects that --if-exists replace --cascade dropped (pgshift's own are recreated). */
  dropped: string[];
  /** Views and triggers of the source that are not in the target: not translatable, or rejected by PostgreSQL. */
  untranslated: UntranslatedObject[];
  totals: {
    rowsRead: number;
    rowsLoaded: number;
    rowsQuarantined: number;
    conversions: number;
  };
  phases: Record<string, number>;
  verification?: VerificationOutcome;
  /** The encrypted columns and their type change (also among `notes`); absent when nothing is encrypted. */
  encryption?: {
    keyId?: string;
    columns: {
      table: string;
      column: string;
      originalType: string;
      storedType: "jsonb";
      blindIndex: boolean;
    }[];
    /** Target tables with a record MAC per row in record_mac. */
    recordMacs: string[];
  };
  /** Per kind of schema object (indexes, foreign keys, views...): how many the source had, how many were created. */
  objects?: SchemaObjects;
  error?: { code: string; message: string; details?: Record<string, unknown> };
  /** How to finish or undo, when the import did not complete. */
  nextSteps: string[];
  seconds: number;
}

const DEFAULT_CHUNK_ROWS = 100_000;

async function serverVersionNum(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query("select current_setting('server_version_num')::int as v");
  return Number(rows[0]?.v);
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
  assertImportSchema(schema);
  const jobs = Math.max(1, options.jobs ?? 4);
  const onProgress = options.onProgress ?? (() => undefined);
  const logger = options.logger ?? silentLogger;
  const job = new JobProgress(onProgress, "import", "rows");
  const encryption = columnEncryptionOf(options);
  const phases: Record<string, number> = {};
  /** The phase running now (the last one `timed` started): recorded on the run when it fails. */
  let currentPhase = "plan";
  const timed = async <T>(phase: string, fn: () => Promise<T>): Promise<T> => {
    stopIfAborted(options.signal);
    currentPhase = phase;
    job.phase(phase);
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
  let early: EarlySourceSums | undefined;
  try {
    let plan: ImportPlan;
    let runId: string | undefined;
    let resumed = false;
    let ifExists: IfExists = options.ifExists ?? "fail";
    let cascade = Boolean(options.cascade);
    let policy: BadValuePolicy = options.onBadValue ?? "fail";
    if (options.resume) {
      await ensureInternalSchema(options.pool, [quarantinePart, importPart]);
      const found = await findRunToResume(options.pool, path, schema, options.resume);
      assertResumeMatches(found.runId, found.plan, options);
      const now = sourceFingerprint(path);
      if (found.size !== null && (Number(found.size) !== now.size || found.mtimeMs !== now.mtimeMs))
        throw new PgshiftError(
          "source_changed",
          `${options.path} changed since run ${found.runId} started; resuming would mix two versions. ${
            found.options.ifExists === "append"
              ? `Remove the rows run ${found.runId} appended (${appendUndoSql(
                  found.plan,
                  found.runId,
                  found.plan.tables,
                ).join(" ")}), then import again with --if-exists append`
              : "Starting over with --if-exists replace would drop the tables this run loaded and every row in them"
          }`,
          { details: { runId: found.runId } },
        );
      plan = found.plan;
      if (plan.tables.some(sealsRows) && !options.keyring)
        throw new EncryptionKeyError(
          `run ${found.runId} encrypts columns (${plan.tables
            .flatMap((t) =>
              t.columns.filter((c) => c.encrypted).map((c) => `${t.sourceName}.${c.sourceName}`),
            )
            .join(", ")}): resume it with the same keys (--keys FILE)`,
        );
      runId = found.runId;
      ifExists = found.options.ifExists ?? ifExists;
      cascade = found.options.cascade ?? cascade;
      policy = options.onBadValue ?? found.options.onBadValue ?? policy;
      resumed = true;
      logger.info(`resuming import run ${runId}`, { runId });
    } else {
      plan = await timed("plan", async () => {
        const catalog = readSqliteCatalog(db);
        const wanted = catalog.tables.filter(
          (table) =>
            (!options.tables?.length ||
              options.tables.some((t) => t.toLowerCase() === table.name.toLowerCase())) &&
            !options.exclude?.some((t) => t.toLowerCase() === table.name.toLowerCase()),
        );
        assertRowidAddressable(wanted, options.path);
        assertNamedObjects(wanted, catalog.views, options.path);
        assertColumnsFit(wanted, options.path);
        const stats = await scanTables(db, wanted, workers);
        for (const name of options.tables ?? []) {
          if (!catalog.tables.some((t) => t.name.toLowerCase() === name.toLowerCase()))
            throw new UsageError(
              `table ${name} is not in ${options.path}; its tables are: ${catalog.tables.map((t) => t.name).join(", ")}`,
            );
        }
        const built = buildImportPlan(catalog, stats, {
          sourcePath: path,
          sourceSpec: spec,
          targetSchema: schema,
          naming: options.naming ?? "keep",
          ...(options.tables ? { tables: options.tables } : {}),
          ...(options.exclude ? { exclude: options.exclude } : {}),
          chunkRows: options.chunkRows ?? DEFAULT_CHUNK_ROWS,
          nocase: (await serverHasIcu(options.pool)) ? "icu" : "none",
          serverVersion: await serverVersionNum(options.pool),
          ...(encryption ? { encryption } : {}),
        });
        if (options.tables?.length || options.exclude?.length)
          await planForeignKeysToExistingTables(options.pool, built, catalog);
        return built;
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
      // Plan decisions that will make something fail later (a NOT NULL column losing its DEFAULT).
      warnings: plan.notes.filter((n) => n.severity === "warning").map((n) => `${n.object}: ${n.message}`),
      dropped: [],
      untranslated: untranslatedObjects(plan),
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
    if (plan.tables.some(sealsRows))
      base.encryption = {
        ...(options.keyring ? { keyId: options.keyring.activeId } : {}),
        columns: plan.tables.flatMap((t) =>
          t.columns.flatMap((c) =>
            c.encrypted
              ? [
                  {
                    table: t.targetName,
                    column: c.targetName,
                    originalType: c.encrypted.originalType,
                    storedType: "jsonb" as const,
                    blindIndex: c.encrypted.blindIndex,
                  },
                ]
              : [],
          ),
        ),
        recordMacs: plan.tables.filter((t) => t.recordMac).map((t) => t.targetName),
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
    await ensureInternalSchema(
      options.pool,
      plan.tables.some(sealsRows)
        ? [quarantinePart, importPart, encryptionPart]
        : [quarantinePart, importPart],
    );
    return await withAdvisoryLock(
      options.pool,
      LockKey.import,
      async () => {
        if (!runId) runId = await createRun(options.pool, plan, path, spec, ifExists, policy, cascade);
        base.runId = runId;
        crashPoint("import:after-run-created");
        const totalRows = plan.tables.reduce((sum, t) => sum + t.rows, 0);
        job.expect({ total: totalRows, after: options.verify === false ? 0 : totalRows });
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
          cascade,
          steps: await withClient(options.pool, (c) => readSteps(c, runId!)),
          stepResults: base.steps,
          warnings: base.warnings,
          dropped: base.dropped,
          onProgress,
          logger,
          progress: new Map(),
          job,
          totalRows,
        };
        let failure: unknown;
        try {
          // Verification's source side needs only the file and the plan: it starts now, beside the load.
          if (verifiesWhileLoading(options, path)) early = await startEarlyVerification(plan, path);
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
          await timed("views", () => createViews(ctx, base.untranslated));
          await timed("triggers", async () => {
            const failed = await createTriggers(ctx.plan, ctx.ifExists === "append", (name, work) =>
              step(ctx, name, work),
            );
            base.untranslated.push(...failed);
            for (const f of failed)
              ctx.warnings.push(`trigger ${f.name} not created: ${f.reason}. Its SQLite SQL: ${f.sql}`);
          });
          await timed("dependents", () => recreateDependents(ctx));
          await timed("analyze", () => analyzeTables(ctx));
          crashPoint("verify:before");
          const verification = await timed("verify", () =>
            runVerification(ctx, path, early).catch((error: unknown) => {
              throw new PgshiftError(
                "verify_failed",
                `the data is loaded, but verification could not run: ${error instanceof Error ? error.message : String(error)}; run again with --resume to verify, or --no-verify to skip it`,
                { cause: error },
              );
            }),
          );
          if (verification) {
            base.verification = verification;
            const cut = verificationConnectionError(verification);
            if (cut) throw cut;
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
        base.objects = countSchemaObjects(plan, base.steps);
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
          base.nextSteps = await nextSteps(options.pool, {
            spec,
            schema,
            ...(options.hintTo ? { to: options.hintTo } : {}),
            ...(options.tables?.length ? { tables: options.tables } : {}),
            ...(options.exclude?.length ? { exclude: options.exclude } : {}),
            runId: runId!,
            plan,
            ifExists,
            code: err.code,
          }).catch(() => []);
        } else {
          base.ok =
            base.tables.every((t) => t.status === "complete") &&
            !base.steps.some(
              (s) =>
                s.status === "failed" &&
                !s.step.startsWith("validate:") &&
                !s.step.startsWith("view:") &&
                !s.step.startsWith("add:") &&
                !s.step.startsWith("trigger:") &&
                // pgshift's views and foreign keys recreated after a replace: warnings, as when first made.
                !s.step.startsWith("recreate:"),
            );
        }
        base.seconds = Math.round(performance.now() - started) / 1000;
        return base;
      },
      { waitMs: 0, what: "another pgshift import into this database" },
    );
  } finally {
    await early?.close();
    await Promise.all(workers.map((w) => w.close()));
    db.close();
  }
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
  ctx.job.update(all);
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
  ctx.job.update(all);
  return { finishing: finisher.drained() };
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
    const sealer = sealsRows(table) ? new RowSealer(table, ctx.options.keyring!) : undefined;
    const copy = openCopy(client, {
      schema,
      table: table.targetName,
      columns: [...table.columns.map((c) => c.targetName), ...(table.recordMac ? [RECORD_MAC_COLUMN] : [])],
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
      // the keys stay in this thread: a table that seals rows is encoded here
      output = worker && !sealer ? await worker.run(job, sink) : await encodeChunk(ctx.db, job, sink, sealer);
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
         conversions = $7, seconds = $8, committed_at = now(), xid = txid_current() % 4294967296
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

async function runVerification(
  ctx: RunContext,
  sourcePath: string,
  early: EarlySourceSums | undefined,
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
    ...(early ? { early } : {}),
    ...(ctx.options.keyring ? { keyring: ctx.options.keyring } : {}),
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

/** The plan's encryption options, validated; undefined when nothing is encrypted. */
function columnEncryptionOf(options: ImportSqliteOptions): ColumnEncryptionOptions | undefined {
  const columns = options.encryptedColumns ?? [];
  const blind = options.blindIndexColumns ?? [];
  if (columns.length === 0 && blind.length === 0 && !options.integrity) return undefined;
  if (columns.length === 0)
    throw new UsageError(
      `${blind.length ? "--blind-index" : "--integrity"} on a SQLite import applies to encrypted columns: name them with --encrypt-columns TABLE.COLUMN,...`,
    );
  if (!options.keyring && !options.dryRun)
    throw new EncryptionKeyError(
      "encrypted columns and integrity MACs need keys: pass --keys FILE or --keys env:VAR (library: keyring, from loadKeyring())",
    );
  if (options.onBadValue === "quarantine")
    throw new UsageError(
      "--on-bad-value quarantine cannot be combined with --encrypt-columns: a bad row would be kept, plaintext and all, in pgshift.quarantine",
    );
  return { columns, blindIndex: blind, integrity: Boolean(options.integrity) };
}

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

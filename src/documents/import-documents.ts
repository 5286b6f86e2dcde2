import { randomBytes, randomUUID } from "node:crypto";
import { availableParallelism } from "node:os";
import type pg from "pg";
import { assertImportSchema } from "../config/reserved-schema.ts";
import type { EmptyAs } from "../sources/csv/csv-source.ts";
import { ExitCode, PgshiftError, UsageError } from "../errors.ts";
import { type BadValuePolicy, quarantinePart } from "../load/quarantine.ts";
import { copyBufferFor } from "../pg/copy-buffer.ts";
import { CopyFanout } from "../pg/copy-fanout.ts";
import { InterruptedError } from "../pg/abort.ts";
import { ConnectionLostError, PgError } from "../pg/errors.ts";
import { ensureInternalSchema } from "../pg/internal-schema.ts";
import { connectionErrorOf, guardClient, inTransaction, withClient } from "../pg/pool.ts";
import { quoteIdent, quoteQualified } from "../pg/quote.ts";
import type { ProgressCallback } from "../progress.ts";
import { fitIdentifier } from "../schema/naming.ts";
import {
  createTableSql,
  documentTablePlan,
  type ExtraColumnSpec,
  indexDefinitions,
  type KeySpec,
  parseColumnSpec,
  parseKeySpecs,
  primaryKeyName,
  primaryKeySql,
  type TablePlan,
  type TargetKind,
  typedTablePlan,
} from "./document-table.ts";
import { valueExceedsDepth } from "./json-depth.ts";
import { formatPointer, parsePointer } from "./json-pointer.ts";
import {
  type DocumentInput,
  type ResolvedSource,
  resolveDocumentSource,
  spillToFile,
} from "./resolve-source.ts";
import {
  type DuplicatePolicy,
  DuplicateKeyError,
  type LoadedRecordObserver,
  RecordLoader,
} from "./record-loader.ts";
import { type BuiltRow, DocumentBytesBuilder, DocumentRowBuilder, TypedRowBuilder } from "./row-builder.ts";
import type { SourceProgress, SourceRecord } from "./source-record.ts";
import { type TypedColumn, TypeInference } from "./typed-inference.ts";
import { DocumentSealer, type FieldEncryptionOptions } from "../crypto/document-sealer.ts";
import {
  assertImportCompatible,
  encryptionPart,
  forgetEncryptedTable,
  registerEncryptedTable,
} from "../crypto/encryption-registry.ts";
import { SealingRowBuilder } from "../crypto/sealing-row-builder.ts";

export { BadRecordError, type DuplicatePolicy, DuplicateKeyError } from "./record-loader.ts";
export type ImportMode = "insert" | "upsert" | "replace";

/** `encryptedPaths`, `blindIndexPaths`, `integrity` with a `keyring`: see src/crypto and docs/encryption.md. */
export interface ImportDocumentsOptions extends FieldEncryptionOptions {
  pool: pg.Pool;
  /** "json:DIR", "json:FILE", "ndjson:FILE(.gz)", "csv:FILE", a SourceSpec, or an (async) iterable of plain objects. */
  from: DocumentInput;
  /** Label of an iterable source in locations and provenance (default "iterable"). */
  sourceLabel?: string;
  schema?: string;
  /** Default: the file or directory name. Required for an iterable. */
  table?: string;
  /** JSON pointer(s) of the key, optionally typed: "/k_number", ["/country", "/id:bigint"]. */
  key?: string | readonly string[];
  /** JSON pointer of the records array in each file's envelope ("/results"). */
  records?: string;
  mode?: ImportMode;
  /**
   * With upsert: delete rows whose key is not in this import. Only after a complete, error-free read (no
   * record quarantined, no file cut short): otherwise no row is deleted and `mirrorSkipped` says why.
   */
  mirror?: boolean;
  /**
   * Share of the table's rows (0 to 1) a mirror may delete in one import; more fails the import, nothing
   * committed (default 0.5; 1 turns the guard off).
   */
  maxDelete?: number;
  /**
   * Let a source without a single loaded record empty the table (--mode replace) or delete all its rows
   * (--mirror); without it such an import fails, nothing committed.
   */
  allowEmpty?: boolean;
  /** Extra typed columns of a document table: "decision_date=/decision_date:date". */
  columns?: readonly string[];
  onBadValue?: BadValuePolicy;
  duplicates?: DuplicatePolicy;
  /** GIN (jsonb_path_ops) index on doc. */
  gin?: boolean;
  /** Trigram indexes on text paths ("/device_name"); on columns of a typed table. */
  trgm?: string | readonly string[];
  /** Typed table instead of a document table (default: true for CSV, false otherwise). */
  typed?: boolean;
  /** Typed tables: nested objects become one column per leaf. */
  flatten?: boolean;
  delimiter?: string;
  encoding?: string;
  /** CSV: an unquoted empty field is NULL ("null", default) or an empty string ("empty"); `""` is always "". */
  emptyAs?: EmptyAs;
  /**
   * COPY streams loading at once, each on its own connection from `pool` (several backends parse jsonb
   * in parallel). Default: for files the machine's cores, 2 to 4, for an iterable 1; never more than the
   * pool has free beside the import's own connection. 1 loads on the import's connection alone.
   */
  jobs?: number;
  runId?: string;
  onProgress?: ProgressCallback;
  /** Stops the import between chunks; its transaction rolls back, so nothing of it is committed. */
  signal?: AbortSignal;
  /**
   * Sees every record of a document table as it loads (not used for typed tables): a SourceDigests
   * computes verification's source side in the import's own pass, for verifyDocuments' `sourceDigests`.
   */
  loadedRecords?: LoadedRecordObserver;
}

export interface ImportDocumentsResult {
  runId: string;
  source: string;
  target: { schema: string; table: string; kind: TargetKind };
  /** The `table` asked for when it was longer than PostgreSQL's 63 bytes (`target.table` is the name used). */
  tableRequested?: string;
  mode: ImportMode;
  mirror: boolean;
  tableCreated: boolean;
  columns: { name: string; type: string }[];
  keyColumns: string[];
  files: number;
  /** Every record the source held (good or bad): recordsRead = recordsLoaded + quarantined. */
  recordsRead: number;
  /** Records written through COPY (server-confirmed count). */
  recordsLoaded: number;
  quarantined: number;
  inserted: number;
  updated: number;
  unchanged: number;
  deleted: number;
  /** Why --mirror deleted nothing although asked to (the source was not read completely). */
  mirrorSkipped?: string;
  /** First deleted keys (with --mirror), at most 100. */
  deletedKeys: unknown[];
  duplicates: {
    policy: DuplicatePolicy;
    count: number;
    sample: { key: string; location: string; firstIn: string }[];
  };
  /** First problems (quarantined records), at most 100. */
  problems: { location: string; reason: string }[];
  indexes: string[];
  /** What was encrypted and MACed, under which key id (never key material). */
  encryption?: { keyId: string; encryptedPaths: string[]; blindIndexPaths: string[]; integrity: boolean };
  durationMs: number;
  recordsPerSecond: number;
}

const SAMPLE = 100;
/** Share of a table's rows one --mirror import may delete unless told otherwise. */
export const DEFAULT_MAX_DELETE = 0.5;
/** COPY streams by default: the machine's cores, 2 to 4 (as the CLI's --jobs). */
const DEFAULT_JOBS = Math.max(2, Math.min(4, availableParallelism()));

function tableNameFrom(name: string): string {
  const cleaned = name.replace(/[^\p{L}\p{N}_]+/gu, "_").replace(/^_+|_+$/g, "");
  return fitIdentifier(cleaned === "" ? "documents" : cleaned);
}

function listOf(value: string | readonly string[] | undefined): string[] {
  if (value === undefined) return [];
  return (typeof value === "string" ? [value] : [...value])
    .flatMap((v) => v.split(","))
    .map((v) => v.trim())
    .filter(Boolean);
}

/**
 * Imports JSON documents (a directory of .json files, one large JSON file, NDJSON, CSV, or plain objects
 * from an iterable) into a document table (keys + `doc jsonb` + provenance) or a typed table, in one
 * transaction. Bad records are quarantined or fail the import per `onBadValue`; the rest loads.
 *
 * @example
 *   await importDocuments({ pool, from: "ndjson:recalls.ndjson", key: "/recall_number", mode: "upsert" });
 */
export async function importDocuments(options: ImportDocumentsOptions): Promise<ImportDocumentsResult> {
  const started = performance.now();
  const runId = options.runId ?? randomUUID();
  const mode = options.mode ?? "insert";
  const mirror = Boolean(options.mirror);
  const policy = options.onBadValue ?? "fail";
  const duplicatePolicy = options.duplicates ?? "fail";
  if (!["insert", "upsert", "replace"].includes(mode))
    throw new UsageError(`--mode must be insert, upsert or replace, not "${mode}"`);
  if (!["fail", "quarantine"].includes(policy))
    throw new UsageError(`--on-bad-value must be fail or quarantine, not "${policy}"`);
  if (!["fail", "last-wins"].includes(duplicatePolicy))
    throw new UsageError(`--duplicates must be fail or last-wins, not "${duplicatePolicy}"`);
  const keys = parseKeySpecs(options.key);
  if (mirror && mode !== "upsert")
    throw new UsageError("--mirror goes with --mode upsert (replace mirrors already)");
  if (mode === "upsert" && keys.length === 0)
    throw new UsageError("--mode upsert needs --key POINTER to match rows");
  if (options.records !== undefined) parsePointer(options.records);
  const maxDelete = options.maxDelete ?? DEFAULT_MAX_DELETE;
  if (!(maxDelete >= 0 && maxDelete <= 1))
    throw new UsageError(`--max-delete must be a share from 0 % to 100 %, not ${maxDelete * 100} %`);

  let resolved: ResolvedSource = await resolveDocumentSource(options.from, {
    ...(options.records !== undefined ? { records: options.records } : {}),
    ...(options.delimiter !== undefined ? { delimiter: options.delimiter } : {}),
    ...(options.encoding !== undefined ? { encoding: options.encoding } : {}),
    ...(options.emptyAs !== undefined ? { emptyAs: options.emptyAs } : {}),
    ...(options.sourceLabel !== undefined ? { label: options.sourceLabel } : {}),
  });
  const typed = options.typed ?? resolved.kind === "csv";
  if (resolved.kind === "iterable" && !options.table)
    throw new UsageError("importing from an iterable needs `table`");
  const schema = options.schema ?? "public";
  // PostgreSQL truncates names beyond 63 bytes, so two long names could be one table: shortened with a
  // hash suffix instead (as SQLite tables are), and reported
  assertImportSchema(schema);
  const table =
    options.table !== undefined ? fitIdentifier(options.table) : tableNameFrom(resolved.source.defaultTable);
  const extras: ExtraColumnSpec[] = (options.columns ?? []).map(parseColumnSpec);
  if (typed && extras.length > 0)
    throw new UsageError("--column adds columns to a document table; a typed table has every field already");
  const trgm = listOf(options.trgm);
  // crypto hook: encrypted fields, blind indexes and record MACs (src/crypto)
  const sealer = DocumentSealer.from(options);
  if (sealer) {
    if (typed)
      throw new UsageError("encrypted fields and --integrity apply to document tables; pass --no-typed");
    if (policy === "quarantine")
      throw new UsageError(
        "--on-bad-value quarantine would keep bad records, plaintext and all, in pgshift.quarantine; use fail with --encrypt/--integrity",
      );
    sealer.assertNotExposed([
      ...keys.map((k) => ({ what: `--key ${k.pointer}`, path: k.path })),
      ...extras.map((e) => ({ what: `--column ${e.name}`, path: e.path })),
      ...trgm.map((t) => ({ what: `--trgm ${t}`, path: parsePointer(t) })),
    ]);
  }

  try {
    if (typed && !resolved.rereadable) resolved = await spillToFile(resolved);
    const csv = resolved.kind === "csv";
    let plan: TablePlan;
    let builder: { build(record: SourceRecord): BuiltRow };
    let bytesBuilder: DocumentBytesBuilder | undefined;
    let typedColumns: TypedColumn[] | undefined;
    if (typed) {
      const scan = await inferColumns(resolved, Boolean(options.flatten), csv, options.onProgress, table);
      typedColumns = scan.columns;
      // A field no record has is often a source that could not be read: say that first, with file:line.
      const missing = (what: string) =>
        new UsageError(
          scan.firstProblem
            ? `${scan.firstProblem.location}: ${scan.firstProblem.reason} (and then ${what}: no record read has that field)`
            : `${what}: no record has that field`,
        );
      const keyColumns = keys.map((key) => {
        const column = typedColumns!.find((c) => formatPointer(c.path) === formatPointer(key.path));
        if (!column) throw missing(`--key ${key.pointer}`);
        return column.name;
      });
      const typedKeys: KeySpec[] = keys.map((key, i) => ({
        ...key,
        column: keyColumns[i]!,
      }));
      const trgmColumns = trgm.map((pointer) => {
        const path = parsePointer(pointer);
        const column = typedColumns!.find((c) => formatPointer(c.path) === formatPointer(path));
        if (!column) throw missing(`--trgm ${pointer}`);
        return column.name;
      });
      plan = typedTablePlan({
        schema,
        table,
        columns: typedColumns,
        keyColumns,
        trgmColumns,
      });
      builder = new TypedRowBuilder(typedColumns, typedKeys, Boolean(options.flatten));
    } else {
      plan = documentTablePlan({
        schema,
        table,
        keys,
        extraColumns: extras,
        gin: Boolean(options.gin),
        trgmPaths: trgm.map(parsePointer),
        ...(sealer
          ? {
              integrity: sealer.integrity,
              blindIndexPaths: sealer.paths.filter((p) => p.blindIndex).map((p) => p.path),
            }
          : {}),
      });
      const rows = new DocumentRowBuilder(keys, extras);
      // crypto hook: sealed rows take the exact path (the bytes fast path stores the source bytes as they are)
      builder = sealer ? new SealingRowBuilder(rows, sealer, keys.length) : rows;
      bytesBuilder = sealer ? undefined : new DocumentBytesBuilder(keys, extras);
    }
    await ensureInternalSchema(options.pool, sealer ? [quarantinePart, encryptionPart] : [quarantinePart]);
    // crypto hook: no plaintext into a table with encrypted fields, no second set of paths
    await assertImportCompatible(options.pool, { schema, table, replace: mode === "replace" }, sealer);
    // an iterable is typically a backfill's batch: small, and one stream needs no tables of its own
    const jobs = Math.max(1, Math.floor(options.jobs ?? (resolved.kind === "iterable" ? 1 : DEFAULT_JOBS)));
    const outcome = await whole(options.pool, () =>
      withClient(options.pool, (client) =>
        withImportLock(client, plan, () =>
          withLanes(options.pool, client, plan.schema, jobs, (lanes, stages) =>
            inTransaction(client, () =>
              loadInTransaction(client, {
                plan,
                builder,
                bytesBuilder,
                lanes,
                stages,
                resolved,
                mode,
                mirror,
                maxDelete,
                allowEmpty: Boolean(options.allowEmpty),
                policy,
                duplicatePolicy,
                runId,
                onProgress: options.onProgress,
                signal: options.signal,
                sealer,
                // what the verifier compares against the source: plain document tables only
                observer: typed || sealer ? undefined : options.loadedRecords,
              }),
            ),
          ),
        ),
      ),
    );
    const durationMs = Math.round(performance.now() - started);
    return {
      runId,
      source: resolved.source.label,
      target: { schema, table, kind: plan.kind },
      ...(options.table !== undefined && options.table !== table ? { tableRequested: options.table } : {}),
      mode,
      mirror,
      tableCreated: outcome.tableCreated,
      columns: plan.columns.map((c) => ({ name: c.name, type: c.type })),
      keyColumns: plan.keyColumns,
      files: outcome.files,
      recordsRead: outcome.recordsRead,
      recordsLoaded: outcome.recordsLoaded,
      quarantined: outcome.quarantined,
      inserted: outcome.inserted,
      updated: outcome.updated,
      unchanged: outcome.unchanged,
      deleted: outcome.deleted,
      ...(outcome.mirrorSkipped ? { mirrorSkipped: outcome.mirrorSkipped } : {}),
      deletedKeys: outcome.deletedKeys,
      duplicates: {
        policy: duplicatePolicy,
        count: outcome.duplicateCount,
        sample: outcome.duplicateSample,
      },
      problems: outcome.problems,
      indexes: outcome.indexes,
      ...(sealer
        ? {
            encryption: {
              keyId: sealer.keyring.activeId,
              encryptedPaths: sealer.paths.map((p) => p.pointer),
              blindIndexPaths: sealer.paths.filter((p) => p.blindIndex).map((p) => p.pointer),
              integrity: sealer.integrity,
            },
          }
        : {}),
      durationMs,
      recordsPerSecond: Math.round(outcome.recordsRead / Math.max(durationMs / 1000, 0.001)),
    };
  } finally {
    await resolved.cleanup();
  }
}

async function inferColumns(
  resolved: ResolvedSource,
  flatten: boolean,
  csv: boolean,
  onProgress: ProgressCallback | undefined,
  table: string,
): Promise<{ columns: TypedColumn[]; firstProblem: { location: string; reason: string } | undefined }> {
  const inference = new TypeInference({ flatten, csv });
  let scanned = 0;
  let firstProblem: { location: string; reason: string } | undefined;
  for await (const item of resolved.source.read(sourceProgress(onProgress, "type scan"))) {
    if (item.kind !== "record") {
      if (item.kind === "problem") firstProblem ??= { location: item.location, reason: item.reason };
      continue;
    }
    const value = item.value;
    // flattening recurses into objects: a record nested too deep is left to the row builder, which rejects it
    if (
      value !== null &&
      typeof value === "object" &&
      !Array.isArray(value) &&
      !(flatten && valueExceedsDepth(value))
    )
      inference.add(value as Record<string, unknown>);
    scanned++;
  }
  onProgress?.({
    task: `${table} (type scan)`,
    done: scanned,
    unit: "records",
    finished: true,
  });
  return { columns: inference.columns(["_source_file", "_content_hash", "_loaded_at"]), firstProblem };
}

/** The source read (bytes of a file, or files of a directory) is the import's overall figure in `phase`. */
function sourceProgress(onProgress: ProgressCallback | undefined, phase: string) {
  if (!onProgress) return undefined;
  return (p: SourceProgress) => {
    if (p.totalBytes !== undefined)
      onProgress({ task: "import", scope: "job", phase, done: p.bytes, total: p.totalBytes, unit: "bytes" });
    else
      onProgress({
        task: "import",
        scope: "job",
        phase,
        done: p.files,
        ...(p.totalFiles ? { total: p.totalFiles } : {}),
        unit: "files",
      });
  };
}

interface LoadContext {
  plan: TablePlan;
  builder: { build(record: SourceRecord): BuiltRow };
  /** The bytes fast path of `builder` (document tables). */
  bytesBuilder: DocumentBytesBuilder | undefined;
  /** Connections of the parallel COPY streams; empty: one stream, in the import's transaction. */
  lanes: pg.PoolClient[];
  /** Tables committed outside the transaction (parallel loads), dropped if the import does not finish. */
  stages: string[];
  resolved: ResolvedSource;
  mode: ImportMode;
  mirror: boolean;
  maxDelete: number;
  allowEmpty: boolean;
  policy: BadValuePolicy;
  duplicatePolicy: DuplicatePolicy;
  runId: string;
  onProgress: ProgressCallback | undefined;
  signal: AbortSignal | undefined;
  /** Encrypted fields / record MACs: recorded in pgshift.encrypted_tables with the rows. */
  sealer: DocumentSealer | undefined;
  observer: LoadedRecordObserver | undefined;
}

/** What the load step reports; the rest of the result is known before it starts. */
type LoadOutcome = Pick<
  ImportDocumentsResult,
  | "tableCreated"
  | "files"
  | "recordsRead"
  | "recordsLoaded"
  | "quarantined"
  | "inserted"
  | "updated"
  | "unchanged"
  | "deleted"
  | "mirrorSkipped"
  | "deletedKeys"
  | "problems"
  | "indexes"
> & {
  duplicateCount: number;
  duplicateSample: ImportDocumentsResult["duplicates"]["sample"];
};

const FORMATTED_TYPES: Record<string, string> = {
  "timestamp without time zone": "timestamp",
  "timestamp with time zone": "timestamptz",
};

/** Whether values planned as `planned` go into an existing column of type `existing` unaltered. */
function fitsExisting(existing: string, planned: string): boolean {
  const have = FORMATTED_TYPES[existing] ?? existing;
  if (have === planned || have === "text") return true;
  if (have === "numeric" && (planned === "bigint" || planned === "integer")) return true;
  if (have === "bigint" && planned === "integer") return true;
  if ((have === "timestamp" || have === "timestamptz") && planned === "date") return true;
  return false;
}

async function tableColumns(
  client: pg.ClientBase,
  schema: string,
  table: string,
): Promise<{ name: string; type: string }[] | undefined> {
  const { rows } = await client.query(
    `select a.attname, format_type(a.atttypid, null) as type from pg_attribute a
       join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = $1 and c.relname = $2 and a.attnum > 0 and not a.attisdropped and c.relkind in ('r', 'p')
      order by a.attnum`,
    [schema, table],
  );
  if (rows.length > 0) return rows.map((r) => ({ name: r.attname as string, type: r.type as string }));
  const exists = await client.query(
    `select 1 from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 and c.relname = $2`,
    [schema, table],
  );
  if (exists.rowCount)
    throw new UsageError(`${schema}.${table} exists but is not a table; choose another --table`);
  return undefined;
}

/**
 * One import per table at a time: a session lock, so that it also covers the tables a parallel load
 * commits before the import's transaction does (and their removal after a failure).
 */
async function withImportLock<T>(client: pg.PoolClient, plan: TablePlan, fn: () => Promise<T>): Promise<T> {
  const lockName = `pgshift.import:${plan.schema}.${plan.table}`;
  const { rows } = await client.query("select pg_try_advisory_lock(hashtextextended($1, 0)) as ok", [
    lockName,
  ]);
  if (!rows[0].ok)
    throw new PgshiftError(
      "import_running",
      `another pgshift import into ${plan.schema}.${plan.table} is running; wait for it to finish, then re-run`,
    );
  try {
    return await fn();
  } finally {
    // a lost connection has released it already
    await client
      .query("select pg_advisory_unlock(hashtextextended($1, 0))", [lockName])
      .catch(() => undefined);
  }
}

/** Staging tables a failed import could not drop (server gone), reported by whole(). */
const leftStages = new WeakMap<pg.Pool, string[]>();

/**
 * Runs the import so that a lost connection or an interruption ends in an error that says what state
 * the target is in: the import is one transaction, so nothing of it was committed, and the same command
 * imports again. Staging tables that could not be dropped are named (the next import drops them).
 */
async function whole<T>(pool: pg.Pool, fn: () => Promise<T>): Promise<T> {
  leftStages.delete(pool);
  try {
    return await fn();
  } catch (error) {
    const left = leftStages.get(pool) ?? [];
    leftStages.delete(pool);
    const stagesNote = left.length
      ? `; staging table(s) ${left.join(", ")} are left behind (the next import drops them)`
      : "";
    const next = `the import is one transaction and was rolled back; run the same command again${stagesNote}`;
    if (error instanceof InterruptedError)
      throw new PgshiftError("interrupted", `${error.message}: ${next}`, {
        cause: error,
        details: { ...error.details, committed: false, stagingTablesLeft: left },
      });
    const lost = connectionErrorOf(error, pool);
    if (lost)
      throw new ConnectionLostError(
        `${lost.message}; ${next.replace("rolled back", "rolled back (unless the connection broke during its COMMIT)")}`,
        error,
        {
          ...lost.details,
          stagingTablesLeft: left,
        },
      );
    throw error;
  }
}

/**
 * Connections for parallel COPY streams: `jobs` of them when the pool has them free (never waiting for
 * one) and the schema exists already (the streams' table must be committed, and creating a schema is
 * this import's transaction's business); otherwise none, and the import loads on its own connection.
 * Afterwards drops whatever `fn` recorded in `stages` that still exists (a failed import's tables).
 */
async function withLanes<T>(
  pool: pg.Pool,
  client: pg.PoolClient,
  schema: string,
  jobs: number,
  fn: (lanes: pg.PoolClient[], stages: string[]) => Promise<T>,
): Promise<T> {
  const lanes: pg.PoolClient[] = [];
  const stages: string[] = [];
  const max = (pool.options as { max?: number }).max ?? 10;
  const free = max - pool.totalCount + pool.idleCount;
  const wanted = jobs >= 2 ? Math.min(jobs, free) : 0;
  if (wanted >= 2) {
    const { rowCount } = await client.query("select 1 from pg_namespace where nspname = $1", [schema]);
    if (rowCount) {
      // guarded as each arrives: an application's own Pool has no error listener of ours on its clients,
      // and a lane that waits for the others unguarded dies with the process if its backend is terminated
      const connected = await Promise.allSettled(
        Array.from({ length: wanted }, () =>
          pool.connect().then((lane) => {
            guardClient(lane);
            return lane;
          }),
        ),
      );
      // fewer connections than hoped (a server limit): what there is, if it is still several
      for (const result of connected) if (result.status === "fulfilled") lanes.push(result.value);
      if (lanes.length < 2) for (const lane of lanes.splice(0)) lane.release();
    }
  }
  let failed = false;
  try {
    return await fn(lanes, stages);
  } catch (error) {
    failed = true;
    throw error;
  } finally {
    // the import's own connection may be the one that broke: a fresh one drops what it cannot
    const left: string[] = [];
    for (const name of stages) {
      const drop = `drop table if exists ${quoteQualified(schema, name)}`;
      const dropped = await client
        .query(drop)
        .catch(() => withClient(pool, (fresh) => fresh.query(drop)))
        .then(
          () => true,
          () => false,
        );
      if (!dropped) left.push(name);
    }
    if (failed && left.length > 0)
      leftStages.set(
        pool,
        left.map((name) => `${schema}.${name}`),
      );
    // a lane whose COPY was abandoned is not handed to anyone else
    for (const lane of lanes) lane.release(failed);
  }
}

async function loadInTransaction(client: pg.PoolClient, ctx: LoadContext): Promise<LoadOutcome> {
  const { plan, mode } = ctx;
  const qualified = quoteQualified(plan.schema, plan.table);
  await client.query(`create schema if not exists ${quoteIdent(plan.schema)}`);
  const existing = await tableColumns(client, plan.schema, plan.table);
  if (existing && mode !== "replace") {
    const byName = new Map(existing.map((c) => [c.name, c.type]));
    const missing = plan.columns.map((c) => c.name).filter((name) => !byName.has(name));
    if (missing.length > 0)
      throw new UsageError(
        `${plan.schema}.${plan.table} exists without column(s) ${missing.join(", ")}; add them, or choose another --table (--mode replace would drop the table and every row in it)`,
      );
    for (const column of plan.columns) {
      const have = byName.get(column.name)!;
      if (!fitsExisting(have, column.type))
        throw new UsageError(
          `${plan.schema}.${plan.table}.${column.name} is ${have}, but this import's values are ${column.type}; alter the column, or choose another --table (--mode replace would drop the table and every row in it)`,
        );
    }
  }
  const keys = plan.keyColumns;
  const lastWins = ctx.duplicatePolicy === "last-wins" && keys.length > 0;
  // Several COPY streams cannot share this transaction: they load a table of their own, committed
  // but not yet the target, which this transaction then renames (a new table) or merges (a stage).
  const lanes = ctx.lanes;
  const parallel = lanes.length > 0;
  const staged = mode === "upsert" || lastWins || (parallel && mode === "insert" && existing !== undefined);
  const onLane = async (sql: string) => {
    await lanes[0]!.query(sql);
  };
  const newTable = fitIdentifier(`${plan.table}__pgshift_new`);
  let loadTable = plan.table;
  let renameLoaded = false;
  let fresh = false;
  let tableCreated = false;
  if (mode === "replace") {
    loadTable = newTable;
    const drop = `drop table if exists ${quoteQualified(plan.schema, loadTable)}`;
    if (parallel && !staged) {
      ctx.stages.push(loadTable);
      await onLane(drop);
      await onLane(createTableSql(plan, loadTable));
    } else {
      await client.query(drop);
      await client.query(createTableSql(plan, loadTable));
    }
    fresh = true;
    tableCreated = !existing;
  } else if (!existing) {
    if (parallel && !staged) {
      loadTable = newTable;
      renameLoaded = true;
      ctx.stages.push(loadTable);
      await onLane(`drop table if exists ${quoteQualified(plan.schema, loadTable)}`);
      await onLane(createTableSql(plan, loadTable));
    } else await client.query(createTableSql(plan, plan.table, mode === "upsert"));
    fresh = mode !== "upsert";
    tableCreated = true;
  }
  const loadColumns = plan.columns.filter((c) => plan.loadColumns.includes(c.name));
  const columnTypes = loadColumns.map((c) => c.type as string);
  let copyTarget = {
    schema: plan.schema,
    table: loadTable,
    columns: plan.loadColumns,
  };
  let stage: string | undefined;
  if (staged) {
    const columns = [...loadColumns.map((c) => `${quoteIdent(c.name)} ${c.type}`), `"pgshift_ord" bigint`];
    if (parallel) {
      // unlogged: the stage is read once, in this transaction, and dropped
      const stageName = fitIdentifier(`${plan.table}__pgshift_stage`);
      ctx.stages.push(stageName);
      stage = quoteQualified(plan.schema, stageName);
      await onLane(`drop table if exists ${stage}`);
      await onLane(`create unlogged table ${stage} (${columns.join(", ")})`);
      copyTarget = { schema: plan.schema, table: stageName, columns: [...plan.loadColumns, "pgshift_ord"] };
    } else {
      const stageName = `pgshift_stage_${randomBytes(4).toString("hex")}`;
      stage = quoteIdent(stageName);
      await client.query(`create temp table ${stage} (${columns.join(", ")}) on commit drop`);
      copyTarget = { schema: "", table: stageName, columns: [...plan.loadColumns, "pgshift_ord"] };
    }
    columnTypes.push("bigint");
  }

  // --- load ---
  const buffer = copyBufferFor(columnTypes);
  const sink = new CopyFanout(parallel ? lanes : [client], { ...copyTarget, format: buffer.format });
  const loader = new RecordLoader({
    builder: ctx.builder,
    bytesBuilder: ctx.bytesBuilder,
    columnTypes,
    ordinals: staged,
    keyed: keys.length > 0,
    buffer,
    sink,
    client,
    sinkOnClient: !parallel,
    policy: ctx.policy,
    duplicatePolicy: ctx.duplicatePolicy,
    runId: ctx.runId,
    sourceLabel: ctx.resolved.source.label,
    targetSchema: plan.schema,
    targetTable: plan.table,
    task: plan.table,
    onProgress: ctx.onProgress,
    sourceProgress: sourceProgress(ctx.onProgress, "load"),
    signal: ctx.signal,
    observer: ctx.observer,
  });
  try {
    await loader.load(ctx.resolved.source);
  } catch (error) {
    throw explainLoadError(error, plan);
  }
  const { recordsRead, recordsLoaded, quarantined, duplicateCount } = loader;
  if (recordsRead !== recordsLoaded + quarantined) {
    throw new PgshiftError(
      "count_mismatch",
      `read ${recordsRead} records but loaded ${recordsLoaded} and quarantined ${quarantined}; nothing was committed`,
    );
  }
  if (renameLoaded) {
    await client.query(
      `alter table ${quoteQualified(plan.schema, loadTable)} rename to ${quoteIdent(plan.table)}`,
    );
    loadTable = plan.table;
  }

  // --- merge staged rows, build indexes, swap ---
  let inserted = recordsLoaded;
  let updated = 0;
  let unchanged = 0;
  let deleted = 0;
  let deletedKeys: unknown[] = [];
  let mirrorSkipped: string | undefined;
  const loadQualified = quoteQualified(plan.schema, loadTable);
  const columnList = plan.loadColumns.map(quoteIdent).join(", ");
  const keyList = keys.map(quoteIdent).join(", ");
  if (stage) {
    const pick = lastWins
      ? `select distinct on (${keyList}) ${columnList} from ${stage} order by ${keyList}, "pgshift_ord" desc`
      : `select ${columnList} from ${stage}`;
    if (mode === "upsert") {
      const sets = plan.loadColumns
        .filter((c) => !keys.includes(c))
        .map((c) => `${quoteIdent(c)} = excluded.${quoteIdent(c)}`);
      sets.push(`${quoteIdent(plan.provenance.loadedAt)} = now()`);
      const hash = quoteIdent(plan.provenance.contentHash);
      const { rows: counts } = await client.query(
        `with merged as (
           insert into ${qualified} as t (${columnList}) ${pick}
           on conflict (${keyList}) do update set ${sets.join(", ")}
           where t.${hash} is distinct from excluded.${hash}
           returning (xmax = 0) as inserted
         )
         select count(*) filter (where inserted)::bigint as inserted, count(*) filter (where not inserted)::bigint as updated from merged`,
      );
      inserted = Number(counts[0].inserted);
      updated = Number(counts[0].updated);
      const distinct = recordsLoaded - (lastWins ? duplicateCount : 0);
      unchanged = distinct - inserted - updated;
      if (ctx.mirror && quarantined > 0) {
        // a record that did not load may be a key still in the source: deleting its row would lose it
        mirrorSkipped = `${quarantined} record(s) of the source were quarantined (a bad record, or a file not read to its end), so --mirror deleted no row; fix the source and re-import to mirror it`;
      } else if (ctx.mirror) {
        const match = keys.map((k) => `s.${quoteIdent(k)} = t.${quoteIdent(k)}`).join(" and ");
        const keyExpression =
          keys.length === 1
            ? `t.${quoteIdent(keys[0]!)}`
            : `jsonb_build_array(${keys.map((k) => `t.${quoteIdent(k)}`).join(", ")})`;
        const { rows: gone } = await client.query(
          `with gone as (
             delete from ${qualified} t where not exists (select 1 from ${stage} s where ${match})
             returning ${keyExpression} as key
           )
           select count(*)::bigint as deleted, (array_agg(key))[1:${SAMPLE}] as sample from gone`,
        );
        deleted = Number(gone[0].deleted);
        deletedKeys = gone[0].sample ?? [];
        // the guards: refused deletions roll the whole import back (this transaction)
        const held = deleted + (await rowCount(client, qualified)) - inserted;
        const target = `${plan.schema}.${plan.table}`;
        if (deleted > 0 && recordsLoaded === 0 && !ctx.allowEmpty)
          throw new EmptySourceError(
            `the source has no record to load, so --mirror would delete all ${deleted} row(s) of ${target}; nothing was committed (pass --allow-empty if the table should be emptied)`,
          );
        if (deleted > ctx.maxDelete * held && !(recordsLoaded === 0 && ctx.allowEmpty))
          throw new PgshiftError(
            "mirror_delete_limit",
            `--mirror would delete ${deleted} of the ${held} row(s) of ${target} (${percent(deleted / held)}), more than --max-delete ${percent(ctx.maxDelete)}; nothing was committed. Check that the source is complete, or pass a higher --max-delete`,
            { exitCode: ExitCode.failure, details: { deleted, rows: held, maxDelete: ctx.maxDelete } },
          );
      }
    } else {
      try {
        const result = await client.query(`insert into ${loadQualified} (${columnList}) ${pick}`);
        inserted = result.rowCount ?? 0;
      } catch (error) {
        throw explainLoadError(error, plan);
      }
    }
    if (parallel) await client.query(`drop table ${stage}`);
  }
  const indexes: string[] = [];
  if (fresh && keys.length > 0) {
    const name = mode === "replace" ? fitIdentifier(`${plan.table}_pkey__new`) : primaryKeyName(plan.table);
    await client.query(primaryKeySql(plan, loadTable, name));
    indexes.push(primaryKeyName(plan.table));
  }
  if (plan.trgmPaths.length > 0) await ensureTrigram(client);
  const suffix = mode === "replace" ? "__new" : "";
  const definitions = indexDefinitions(plan, loadTable, suffix);
  for (const index of definitions) {
    await client.query(index.sql);
    indexes.push(index.name.replace(/__new$/, ""));
  }
  if (mode === "replace") {
    if (existing) {
      deleted = await rowCount(client, qualified);
      if (deleted > 0 && recordsLoaded === 0 && !ctx.allowEmpty)
        throw new EmptySourceError(
          `the source has no record to load, so --mode replace would empty ${plan.schema}.${plan.table} (${deleted} row(s)); nothing was committed (pass --allow-empty if the table should be emptied)`,
        );
      try {
        await client.query(`drop table ${qualified}`);
      } catch (error) {
        if ((error as { code?: string }).code !== "2BP01") throw error;
        throw new PgshiftError(
          "replace_blocked",
          `--mode replace swaps in a new ${plan.schema}.${plan.table}, but other objects depend on the old one (${(error as { detail?: string }).detail ?? (error as Error).message}); drop or recreate them around the import (--mode upsert --mirror would keep the table, but delete every row this source does not have)`,
          { cause: error },
        );
      }
    }
    await client.query(`alter table ${loadQualified} rename to ${quoteIdent(plan.table)}`);
    if (keys.length > 0)
      await client.query(
        `alter table ${qualified} rename constraint ${quoteIdent(fitIdentifier(`${plan.table}_pkey__new`))} to ${quoteIdent(primaryKeyName(plan.table))}`,
      );
    for (const index of definitions) {
      await client.query(
        `alter index ${quoteQualified(plan.schema, index.name)} rename to ${quoteIdent(index.name.replace(/__new$/, ""))}`,
      );
    }
  }
  // Statistics for the planner right away (autovacuum refines them later): the row count and the
  // distribution of keys and typed columns from a small sample. jsonb's @> estimates use no column
  // statistics, so the document column, expensive to sample, is left out.
  const analyzed = plan.columns.filter((c) => c.name !== plan.docColumn).map((c) => quoteIdent(c.name));
  // crypto hook: readers, verify --integrity and keys rotate learn what is protected, in this transaction
  if (ctx.sealer)
    await registerEncryptedTable(
      client,
      { schema: plan.schema, table: plan.table, keyColumns: keys },
      ctx.sealer,
    );
  else if (mode === "replace") await forgetEncryptedTable(client, plan.schema, plan.table);
  await client.query("set local default_statistics_target = 10");
  await client.query(`analyze ${qualified} (${analyzed.join(", ")})`);
  return {
    tableCreated,
    files: Math.max(loader.filesReported, loader.files),
    recordsRead,
    recordsLoaded,
    quarantined,
    inserted,
    updated,
    unchanged,
    deleted,
    ...(mirrorSkipped ? { mirrorSkipped } : {}),
    deletedKeys,
    duplicateCount,
    duplicateSample: loader.duplicateSample,
    problems: loader.problems,
    indexes,
  };
}

/** A source with nothing to load would empty a table (--mode replace, --mirror) without --allow-empty. */
export class EmptySourceError extends PgshiftError {
  constructor(message: string) {
    super("empty_source", message, { exitCode: ExitCode.failure });
  }
}

async function rowCount(client: pg.ClientBase, qualified: string): Promise<number> {
  const { rows } = await client.query(`select count(*)::bigint as n from ${qualified}`);
  return Number(rows[0].n);
}

function percent(share: number): string {
  return `${Math.round(share * 1000) / 10} %`;
}

async function ensureTrigram(client: pg.ClientBase): Promise<void> {
  const { rows } = await client.query("select 1 from pg_extension where extname = 'pg_trgm'");
  if (rows.length > 0) return;
  try {
    await client.query("create extension if not exists pg_trgm");
  } catch (error) {
    throw new PgshiftError(
      "missing_extension",
      `trigram indexes need the pg_trgm extension, which could not be created (${(error as Error).message}); ask an administrator to run "create extension pg_trgm", or leave out --trgm`,
      { cause: error },
    );
  }
}

/** A key that exists already (insert mode into a filled table) becomes a message that says what to do. */
function explainLoadError(error: unknown, plan: TablePlan): unknown {
  const code = (error as { code?: string; sqlstate?: string }).sqlstate ?? (error as { code?: string }).code;
  if (code === "23505") {
    const detail =
      (error instanceof PgError ? error.fields.detail : (error as { detail?: string }).detail) ?? "";
    return new DuplicateKeyError(
      `${plan.schema}.${plan.table} already has a row with that key (${detail}); re-run with --mode upsert to update it (--mode replace would drop the table and every row in it)`,
      { detail },
    );
  }
  return error;
}

import { createHash } from "node:crypto";
import { availableParallelism } from "node:os";
import type pg from "pg";
import { asPgshiftError } from "../errors.ts";
import { setTimeout as sleep } from "node:timers/promises";
import { crashPoint } from "../load/crash-points.ts";
import { InterruptedError } from "../pg/abort.ts";
import { connectionErrorOf, withClient } from "../pg/pool.ts";
import { backoffDelay } from "../pg/retry.ts";
import type { ProgressCallback } from "../progress.ts";
import { type CanonicalKind, recordText } from "./canonical.ts";
import { type ChunkStrategy, chooseStrategy, md5, rangeBounds } from "./chunking.ts";
import type { CanonicalRow, SourceTableReader } from "./source-reader.ts";
import { forEachRow, RowPlacement, type SourceAggregate, sourceChunkSums } from "./source-sums.ts";
import {
  type ChunkSums,
  describeTargetTable,
  inCanonicalSnapshot,
  targetChunkSums,
  targetRowsInChunks,
  SPLIT_MIN_PAGES,
  tablePages,
  type TargetSql,
  targetSql,
  withSnapshotPeers,
} from "./target-side.ts";
import type { ChangedRow, RowKey, TableVerification, VerifyTable } from "./types.ts";
import { EncryptedTableError } from "../crypto/crypto-errors.ts";
import { decryptedTargetChunkSums } from "./decrypted-target.ts";

export interface VerifyTablesOptions {
  pool: pg.Pool;
  tables: readonly VerifyTable[];
  /** Opens the source side of one table. */
  openSource: (table: VerifyTable) => SourceTableReader;
  /** Fraction of rows (0 < P <= 1) to compare, chosen by a hash of the key; full when absent. */
  sample?: number;
  /** Tables verified at once. */
  jobs?: number;
  /**
   * Connections that split one table's server-side hashing among them. Default: the cores when the
   * table's source side is already computed (the import's early sums), else one.
   */
  targetConnections?: number;
  /** Indexes into `tables`: the order in which to start them (default: as given). Results keep the given order. */
  order?: readonly number[];
  /** Keys listed per kind of difference and table. */
  maxDiffs?: number;
  /** Mismatched chunks narrowed down to rows per table. */
  maxNarrowChunks?: number;
  /** Average rows per chunk. */
  chunkRows?: number;
  onProgress?: ProgressCallback;
  /** Stops between tables: the tables not started are reported as errors with code "interrupted". */
  signal?: AbortSignal;
  /**
   * For a table with encrypted columns (VerifyColumn.encrypted): turns a stored row's canonical fields
   * (envelopes as jsonb text) into the decrypted ones; the target side is then summed here instead of
   * by the server (decrypted-target.ts). Undefined: the table is reported as an error (no keys).
   */
  decryptor?: (table: VerifyTable) => ((stored: CanonicalRow) => CanonicalRow) | undefined;
  /**
   * Computes a table's source-side chunk checksums elsewhere (a worker thread, or earlier). When
   * absent, when it returns undefined, or when it fails, `openSource`'s reader is read in this thread.
   */
  sourceSums?: (
    table: VerifyTable,
    strategy: ChunkStrategy,
    sample: number | undefined,
    onProgress: (done: number) => void,
  ) => Promise<SourceAggregate> | undefined;
}

/**
 * How a table's rows are chunked, from source figures: both sides use it. `integerKey`: its single key
 * is an integer on both sides. Ordered key ranges unless sampling (which needs each key's hash).
 */
export function verifyStrategy(
  table: VerifyTable,
  figures: {
    rows: number;
    integerKey: boolean;
    keyRange?: { min: bigint; max: bigint } | undefined;
    chunkRows?: number | undefined;
    sample?: number | undefined;
  },
): ChunkStrategy {
  const strategy = chooseStrategy({
    rows: figures.rows,
    hasKey: table.key.length > 0,
    integerKey: figures.integerKey,
    ...(figures.keyRange ? { keyRange: figures.keyRange } : {}),
    ...(figures.chunkRows ? { chunkRows: figures.chunkRows } : {}),
  });
  if (strategy.kind === "key-range" && figures.sample === undefined) strategy.ordered = true;
  return strategy;
}

/** Whether two strategies chunk rows the same way (so that sums computed for one serve the other). */
export function sameStrategy(a: ChunkStrategy, b: ChunkStrategy): boolean {
  if (a.kind === "key-range" && b.kind === "key-range")
    return a.shift === b.shift && Boolean(a.ordered) === Boolean(b.ordered);
  if (a.kind === "key-range" || b.kind === "key-range") return false;
  return a.kind === b.kind && a.buckets === b.buckets;
}

/** Verifies tables in parallel (`jobs` at a time); one result per table, in the given order. */
export async function verifyTables(options: VerifyTablesOptions): Promise<TableVerification[]> {
  const results: TableVerification[] = new Array(options.tables.length);
  let next = 0;
  const order = options.order ?? options.tables.map((_, i) => i);
  const worker = async () => {
    for (;;) {
      if (next >= order.length) return;
      const index = order[next++]!;
      const table = options.tables[index]!;
      if (options.signal?.aborted) {
        results[index] = interrupted(table, options.signal);
        continue;
      }
      // Verification only reads: a table whose connection was lost is verified again from the start.
      let result = await verifyTable(options, table);
      for (let attempt = 0; attempt < TABLE_RETRIES && lostConnection(result); attempt++) {
        if (options.signal?.aborted) break;
        await sleep(backoffDelay(attempt, 200, 5_000, Math.random));
        result = await verifyTable(options, table);
      }
      results[index] = result;
    }
  };
  const jobs = Math.max(1, Math.min(options.jobs ?? 2, options.tables.length));
  await Promise.all(Array.from({ length: jobs }, worker));
  return results;
}

const TABLE_RETRIES = 3;

/** Whether `promise` has already settled (checked after one turn of the event loop); false without one. */
async function settledNow(promise: Promise<unknown> | undefined): Promise<boolean> {
  if (!promise) return false;
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  await new Promise((resolve) => setImmediate(resolve));
  return settled;
}

/**
 * Connections that hash one table's target side: as many as there are cores (a table's hashing is one
 * query per connection, CPU-bound on the server) for a table of some size, when the pool has them free.
 */
async function targetParts(client: pg.ClientBase, sql: TargetSql, wanted?: number): Promise<number> {
  if (sql.relation === undefined) return 1;
  return (await tablePages(client, sql.relation)) >= SPLIT_MIN_PAGES ? (wanted ?? availableParallelism()) : 1;
}

function lostConnection(result: TableVerification): boolean {
  return result.status === "error" && result.error?.code === "connection_lost";
}

function interrupted(table: VerifyTable, signal: AbortSignal): TableVerification {
  const result = blankTableVerification(table, "error", table.key.length === 0 ? "row-hash" : "key-range");
  const error = new InterruptedError(signal.reason);
  result.error = { code: error.code, message: `${error.message}: not verified` };
  result.complete = false;
  return result;
}

/** sha256 over the sorted chunk lines: one figure per side for the report. */
function tableChecksum(chunks: ChunkSums): string {
  const hash = createHash("sha256");
  for (const chunk of [...chunks.keys()].sort()) {
    const c = chunks.get(chunk)!;
    hash.update(`${chunk}:${c.rows}:${c.checksum}\n`);
  }
  return hash.digest("hex");
}

function compareChunkId(a: string, b: string): number {
  const na = /^-?\d+$/.test(a);
  const nb = /^-?\d+$/.test(b);
  if (na && nb) {
    const x = BigInt(a);
    const y = BigInt(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (na !== nb) return na ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

const MAX_SHOWN = 200;
/** What a diff shows for a value of an encrypted column. */
const ENCRYPTED_SHOWN = "(encrypted: value not shown)";

/** A canonical value as shown in a diff: marked when the source value had no canonical form, cut when long. */
function shown(value: string | null): string | null {
  if (value === null) return null;
  let text = value.charCodeAt(0) === 0 ? `(unconvertible) ${value.slice(1)}` : value;
  if (text.length > MAX_SHOWN) text = `${text.slice(0, MAX_SHOWN)}… (${value.length} chars)`;
  return text;
}

/** A table's verification before anything is counted: the one shape every verifier starts from. */
export function blankTableVerification(
  names: { sourceTable: string; schema: string; table: string },
  status: TableVerification["status"],
  strategy: TableVerification["chunking"]["strategy"],
): TableVerification {
  return {
    sourceTable: names.sourceTable,
    schema: names.schema,
    table: names.table,
    status,
    sourceRows: 0,
    targetRows: 0,
    chunking: { strategy, chunks: 0, mismatched: 0, narrowed: 0 },
    checksums: { source: "", target: "" },
    missing: [],
    extra: [],
    changed: [],
    quarantinedRows: 0,
    missingRows: 0,
    extraRows: 0,
    changedRows: 0,
    complete: true,
    problems: [],
    timings: { sourceMs: 0, targetMs: 0 },
    durationMs: 0,
  };
}

function emptyResult(
  table: VerifyTable,
  strategy: TableVerification["chunking"]["strategy"],
): TableVerification {
  return blankTableVerification(table, "identical", strategy);
}

async function verifyTable(options: VerifyTablesOptions, table: VerifyTable): Promise<TableVerification> {
  const started = Date.now();
  const task = `verify ${table.table}`;
  const result = emptyResult(table, table.key.length === 0 ? "row-hash" : "key-range");
  let reader: SourceTableReader | undefined;
  try {
    reader = options.openSource(table);
    const source = reader;
    await withClient(options.pool, (client) =>
      inCanonicalSnapshot(client, async () => {
        result.sourceRows = await source.count();
        const described = await describeTargetTable(client, table.schema, table.table);
        crashPoint("verify:table-snapshot");
        if (!described) {
          result.problems.push(`table ${table.schema}.${table.table} does not exist in the target`);
          result.missingRows = result.sourceRows;
          return;
        }
        const kinds = new Map<string, CanonicalKind>(described.map((c) => [c.name, c.kind]));
        const decrypt = table.columns.some((c) => c.encrypted) ? options.decryptor?.(table) : undefined;
        if (table.columns.some((c) => c.encrypted) && !decrypt)
          throw new EncryptedTableError(
            `${table.schema}.${table.table} has encrypted columns (${table.columns
              .filter((c) => c.encrypted)
              .map((c) => c.name)
              .join(", ")}): verifying their values needs the keys (--keys FILE)`,
          );
        for (const column of table.columns) {
          const actual = described.find((c) => c.name === column.name);
          if (!actual) result.problems.push(`column ${column.name} does not exist in the target`);
          else if (column.encrypted) {
            if (actual.kind !== "jsonb")
              result.problems.push(
                `column ${column.name} is ${actual.type} in the target, but the plan encrypts it (jsonb envelopes)`,
              );
          } else if (actual.kind !== column.kind)
            result.problems.push(
              `column ${column.name} is ${actual.type} in the target, but the plan chose ${column.pgType}`,
            );
        }
        for (const key of table.key) {
          if (!table.columns.some((c) => c.name === key))
            result.problems.push(`key column ${key} is not among the verified columns`);
        }
        if (result.problems.some((p) => p.includes("does not exist") || p.startsWith("key column"))) {
          const count = await client.query(
            `select count(*)::bigint as n from ${targetSql(table, kinds).from}`,
          );
          result.targetRows = Number(count.rows[0].n);
          return;
        }
        const keyKind =
          table.key.length === 1 ? table.columns.find((c) => c.name === table.key[0])?.kind : undefined;
        const integerKey = keyKind === "integer" && kinds.get(table.key[0]!) === "integer";
        const keyRange = integerKey ? await source.integerKeyRange() : undefined;
        const strategy = verifyStrategy(table, {
          rows: result.sourceRows,
          integerKey,
          keyRange,
          chunkRows: options.chunkRows,
          sample: options.sample,
        });
        result.chunking.strategy = strategy.kind;
        const sql = targetSql(table, kinds);
        const placement = new RowPlacement(table, strategy, options.sample);
        const compareStarted = Date.now();
        const sourceProgress = (done: number) =>
          options.onProgress?.({ task, done, total: result.sourceRows, unit: "rows" });
        const elsewhere = options.sourceSums?.(table, strategy, options.sample, sourceProgress);
        // The server's hashing takes more cores only when the source side is already computed (the
        // import's early sums): otherwise the source readers are the slower side and need the CPU.
        const parts =
          options.targetConnections !== undefined || (await settledNow(elsewhere))
            ? await targetParts(client, sql, options.targetConnections)
            : 1;
        const targetPromise = (
          decrypt
            ? decryptedTargetChunkSums(
                client,
                sql,
                new RowPlacement(table, strategy, options.sample),
                decrypt,
                options.sample,
              )
            : withSnapshotPeers(options.pool, client, parts, (clients) =>
                targetChunkSums(clients, sql, strategy, options.sample),
              )
        ).then((sums) => {
          result.timings.targetMs = Date.now() - compareStarted;
          return sums;
        });
        targetPromise.catch(() => undefined);
        const sourceAgg = elsewhere
          ? await elsewhere
              // A worker that cannot start or dies costs speed, not the verification.
              .catch(() => sourceChunkSums(source, placement, sourceProgress))
          : await sourceChunkSums(source, placement, sourceProgress);
        result.timings.sourceMs = Date.now() - compareStarted;
        const target = await targetPromise;
        result.targetRows = target.totalRows;
        if ((target.parts ?? 1) > 1) result.chunking.targetConnections = target.parts;
        if (options.sample !== undefined) {
          result.sample = {
            fraction: options.sample,
            sourceRows: sourceAgg.rows,
            targetRows: target.sampledRows ?? 0,
          };
        }
        result.checksums = { source: tableChecksum(sourceAgg.chunks), target: tableChecksum(target.chunks) };
        const all = new Set([...sourceAgg.chunks.keys(), ...target.chunks.keys()]);
        result.chunking.chunks = all.size;
        const mismatched = [...all]
          .filter((chunk) => {
            const s = sourceAgg.chunks.get(chunk);
            const t = target.chunks.get(chunk);
            return s?.rows !== t?.rows || s?.checksum !== t?.checksum;
          })
          .sort(compareChunkId);
        result.chunking.mismatched = mismatched.length;
        if (mismatched.length === 0) return;
        const narrow = mismatched.slice(0, options.maxNarrowChunks ?? 16);
        result.chunking.narrowed = narrow.length;
        result.complete = narrow.length === mismatched.length;
        await narrowChunks(options, table, source, placement, narrow, result, async () => {
          const rows = await targetRowsInChunks(client, sql, strategy, narrow, options.sample);
          return decrypt ? rows.map(decrypt) : rows;
        });
      }),
    );
    const differs =
      result.problems.length > 0 ||
      result.chunking.mismatched > 0 ||
      result.sourceRows !== result.targetRows ||
      result.checksums.source !== result.checksums.target;
    result.status = differs ? "mismatch" : "identical";
  } catch (error) {
    const failure = connectionErrorOf(error, options.pool) ?? asPgshiftError(error);
    result.status = "error";
    result.error = { code: failure.code, message: failure.message };
  } finally {
    reader?.close();
    result.durationMs = Date.now() - started;
    options.onProgress?.({
      task,
      done: result.sourceRows,
      total: result.sourceRows,
      unit: "rows",
      finished: true,
    });
  }
  return result;
}

interface KeyedRow {
  keyText: string;
  fields: CanonicalRow;
}

/** Narrows mismatched chunks to rows: missing, extra and changed, with the differing columns. */
async function narrowChunks(
  options: VerifyTablesOptions,
  table: VerifyTable,
  source: SourceTableReader,
  placement: RowPlacement,
  chunks: readonly string[],
  result: TableVerification,
  loadTarget: () => Promise<CanonicalRow[]>,
): Promise<void> {
  const wanted = new Set(chunks);
  const sourceRows = new Map<string, KeyedRow[]>();
  const add = (map: Map<string, KeyedRow[]>, row: KeyedRow) => {
    const list = map.get(row.keyText);
    if (list) list.push(row);
    else map.set(row.keyText, [row]);
  };
  const collect = (batches: Iterable<CanonicalRow[]> | AsyncIterable<CanonicalRow[]>) =>
    forEachRow(batches, (fields) => {
      const rowText = recordText(fields);
      const chunk = placement.place(fields, rowText, md5(rowText));
      if (chunk === undefined || !wanted.has(chunk)) return;
      add(sourceRows, { keyText: placement.keyText(fields, rowText), fields });
    });
  const strategy = placement.strategy;
  if (strategy.kind === "key-range" && chunks.every((c) => /^-?\d+$/.test(c))) {
    for (const chunk of chunks) {
      const [low, high] = rangeBounds(chunk, strategy.shift);
      await collect(source.rows([low, high - 1n]));
    }
  } else {
    await collect(source.rows());
  }
  const targetRows = new Map<string, KeyedRow[]>();
  for (const fields of await loadTarget()) {
    const rowText = recordText(fields);
    add(targetRows, { keyText: placement.keyText(fields, rowText), fields });
  }

  const maxDiffs = options.maxDiffs ?? 20;
  const keyOf = (fields: CanonicalRow): RowKey => {
    const names = table.key.length ? table.key : table.columns.map((c) => c.name);
    const indexes = table.key.length ? placement.keyIndexes : table.columns.map((_, i) => i);
    return Object.fromEntries(names.map((name, i) => [name, shown(fields[indexes[i]!] ?? null)]));
  };
  const missing: KeyedRow[] = [];
  const extra: KeyedRow[] = [];
  const changed: [KeyedRow, KeyedRow][] = [];
  for (const keyText of new Set([...sourceRows.keys(), ...targetRows.keys()])) {
    const fromSource = [...(sourceRows.get(keyText) ?? [])];
    const fromTarget = [...(targetRows.get(keyText) ?? [])];
    // Pair equal rows first (duplicates are possible without a key), then the rest as changed.
    for (let i = fromSource.length - 1; i >= 0; i--) {
      const text = recordText(fromSource[i]!.fields);
      const j = fromTarget.findIndex((t) => recordText(t.fields) === text);
      if (j >= 0) {
        fromSource.splice(i, 1);
        fromTarget.splice(j, 1);
      }
    }
    while (fromSource.length && fromTarget.length) changed.push([fromSource.shift()!, fromTarget.shift()!]);
    missing.push(...fromSource);
    extra.push(...fromTarget);
  }
  const byKey = keyComparator(table, placement);
  missing.sort(byKey);
  extra.sort(byKey);
  changed.sort((a, b) => byKey(a[0], b[0]));
  result.missingRows = missing.length;
  result.extraRows = extra.length;
  result.changedRows = changed.length;
  result.missing = missing.slice(0, maxDiffs).map((r) => keyOf(r.fields));
  result.extra = extra.slice(0, maxDiffs).map((r) => keyOf(r.fields));
  result.changed = changed.slice(0, maxDiffs).map(([s, t]): ChangedRow => ({
    key: keyOf(s.fields),
    columns: table.columns
      .map((column, i) => ({ column: column.name, source: s.fields[i] ?? null, target: t.fields[i] ?? null }))
      .filter((d) => d.source !== d.target)
      .map((d) =>
        // the values of an encrypted column stay out of reports: that they differ is what is said
        table.columns.find((c) => c.name === d.column)?.encrypted
          ? { column: d.column, source: ENCRYPTED_SHOWN, target: ENCRYPTED_SHOWN }
          : { column: d.column, source: shown(d.source), target: shown(d.target) },
      ),
  }));
}

function keyComparator(table: VerifyTable, placement: RowPlacement): (a: KeyedRow, b: KeyedRow) => number {
  const integerKey = table.key.length === 1 && placement.strategy.kind === "key-range";
  return (a, b) => {
    if (integerKey) {
      const x = a.fields[placement.keyIndexes[0]!];
      const y = b.fields[placement.keyIndexes[0]!];
      if (x && y && /^-?\d+$/.test(x) && /^-?\d+$/.test(y)) return compareChunkId(x, y);
    }
    return a.keyText < b.keyText ? -1 : a.keyText > b.keyText ? 1 : 0;
  };
}

import type { EmptyAs } from "../sources/csv/csv-source.ts";
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { join, relative, resolve } from "node:path";
import type pg from "pg";
import { type ExtraColumnSpec, parseColumnSpec, parseKeySpecs } from "../documents/document-table.ts";
import { MAX_DOCUMENT_DEPTH } from "../documents/json-depth.ts";
import { formatPointer } from "../documents/json-pointer.ts";
import { type DocumentInput, resolveDocumentSource } from "../documents/resolve-source.ts";
import { DocumentRowBuilder } from "../documents/row-builder.ts";
import { UsageError } from "../errors.ts";
import { withClient } from "../pg/pool.ts";
import { quoteIdent, quoteQualified } from "../pg/quote.ts";
import type { ProgressCallback } from "../progress.ts";
import { fitIdentifier } from "../schema/naming.ts";
import { parseSourceSpec, type SourceSpec } from "../sources/source-spec.ts";
import { jsonbText } from "./canonical-json.ts";
import { documentJsonbText } from "./canonical-document.ts";
import { DEFAULT_CHUNK_ROWS, hashChunk, md5 } from "./chunking.ts";
import { fileFingerprint } from "./sqlite-source.ts";
import type { SourceFingerprint } from "./source-reader.ts";
import type { ChunkFigures, SourceDigests } from "./source-digests.ts";
import {
  describeTargetTable,
  inCanonicalSnapshot,
  pageRanges,
  SPLIT_MIN_PAGES,
  tablePages,
  withSnapshotPeers,
} from "./target-side.ts";
import type { ChangedRow, ColumnDifference, RowKey, TableVerification } from "./types.ts";
import { buildResult, describeVerifiedTarget, type VerifyResult } from "./verify-result.ts";
import { blankTableVerification } from "./verify-tables.ts";

/**
 * Verification of a document table (key column(s) + `doc jsonb` + provenance) against its JSON,
 * NDJSON or CSV source. The source is re-read with the import's own readers and row builder (same
 * key pointers, records pointer, extra columns), so the records it would quarantine are the ones
 * left out; each kept record becomes (key text, md5 of key || the jsonb text PostgreSQL prints for
 * its document, reproduced by canonical-json.ts). The server computes the same per row from what it
 * stores, summed per chunk (a hash bucket of the key); only rows of differing chunks are fetched, and
 * only their keys and md5s, then the documents of the first changed keys for a JSON-pointer diff.
 */
export interface VerifyDocumentsOptions {
  pool: pg.Pool;
  /** "json:DIR", "json:FILE", "ndjson:FILE(.gz)", "csv:FILE" (with typed: false). */
  from: string | SourceSpec;
  schema?: string;
  /** Default: the file or directory name, as the import chose it. */
  table?: string;
  /** The import's --key. Without a key, documents are compared as a multiset by their md5. */
  key?: string | readonly string[];
  records?: string;
  /** The import's --column specs (so that records it quarantined for them are left out here too). */
  columns?: readonly string[];
  /** "last-wins": the last record of a key is the expected one (also what is compared under "fail"). */
  duplicates?: "fail" | "last-wins";
  /** Rows in the table but not in this source are expected (insert into a filled table, upsert without mirror). */
  allowExtra?: boolean;
  /** CSV: a document table was imported (--no-typed). A typed table cannot be verified here. */
  typed?: boolean;
  delimiter?: string;
  encoding?: string;
  /** CSV: what the import took an unquoted empty field for (see ImportDocumentsOptions.emptyAs). */
  emptyAs?: EmptyAs;
  /** The import run; its pgshift.quarantine rows are counted and compared with the records left out. */
  runId?: string;
  maxDiffs?: number;
  chunkRows?: number;
  onProgress?: ProgressCallback;
  /**
   * The source side computed by the import itself (its `loadedRecords`, with the same key and columns):
   * then the source is not read again, and the server's per-chunk sums are compared with these. When
   * anything differs (or the digests cannot stand for the table: duplicate keys, rows expected beyond the
   * source), the verification reads the source again as without them, to name the keys.
   */
  sourceDigests?: SourceDigests;
  /** Connections the server-side hashing may use at once, from `pool` (default 1). */
  jobs?: number;
}

/** One kept source record: the chunk it falls in, its row hash, its key as the server prints it. */
interface SourceEntry {
  chunk: number;
  hash: Buffer;
  key: string[];
  count: number;
}

const TWO_32 = 4294967296;
const NARROW_BATCH = 64;
const MAX_POINTER_DIFFS = 10;

/** Table name the import derives from a file or directory name (same rule as importDocuments). */
export function documentTableName(defaultTable: string): string {
  const cleaned = defaultTable.replace(/[^\p{L}\p{N}_]+/gu, "_").replace(/^_+|_+$/g, "");
  return fitIdentifier(cleaned === "" ? "documents" : cleaned);
}

/** Length-prefixed key parts: unambiguous whatever the key texts hold. */
function keyIdentity(parts: readonly string[]): string {
  return parts.map((p) => `${Buffer.byteLength(p, "utf8")}:${p}`).join("");
}

function keyIdentitySql(keyColumns: readonly string[]): string {
  return keyColumns
    .map((k) => `octet_length(${quoteIdent(k)}::text)::text || ':' || ${quoteIdent(k)}::text`)
    .join(" || ");
}

class ChunkSum {
  rows = 0;
  high = 0;
  low = 0;
  add(hash: Buffer, times: number): void {
    this.rows += times;
    this.high = (this.high + hash.readInt32BE(0) * times) % TWO_32;
    this.low = (this.low + hash.readInt32BE(4) * times) % TWO_32;
  }
  checksum(): string {
    const hex = (n: number) => (((n % TWO_32) + TWO_32) % TWO_32).toString(16).padStart(8, "0");
    return hex(this.high) + hex(this.low);
  }
}

function sideChecksum(chunks: ChunkFigures): string {
  const lines = [...chunks.entries()].map(([c, v]) => `${c} ${v.rows} ${v.checksum}`).sort();
  return createHash("sha256").update(lines.join("\n")).digest("hex");
}

/**
 * The source's size and sha256. `inThread`: a file is hashed in this thread (the import's own
 * verification, which mostly waits on the server meanwhile, saves starting a worker for it).
 */
async function fingerprintOf(
  spec: SourceSpec,
  inThread = false,
): Promise<SourceFingerprint & { spec: string }> {
  const path = resolve(spec.path);
  const info = await stat(path);
  if (!info.isDirectory() && inThread) {
    const hash = createHash("sha256");
    for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 }))
      hash.update(chunk as Buffer);
    return { kind: spec.kind, path, size: info.size, sha256: hash.digest("hex"), spec: spec.spec };
  }
  if (!info.isDirectory()) return { ...(await fileFingerprint(spec.kind, path)), spec: spec.spec };
  const files: string[] = [];
  const walk = async (dir: string) => {
    const entries = await readdir(dir, { withFileTypes: true });
    for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const full = join(dir, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if (entry.isFile()) files.push(full);
    }
  };
  await walk(path);
  const lines: string[] = [];
  let size = 0;
  for (const file of files) {
    const hash = createHash("sha256");
    let bytes = 0;
    for await (const chunk of createReadStream(file)) {
      hash.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
    }
    size += bytes;
    lines.push(`${relative(path, file)} ${bytes} ${hash.digest("hex")}`);
  }
  const sha256 = createHash("sha256").update(lines.join("\n")).digest("hex");
  return { kind: spec.kind, path, size, sha256, spec: spec.spec };
}

/** Differences between two JSON values, as JSON pointers under `doc` (at most MAX_POINTER_DIFFS). */
export function jsonPointerDiff(source: unknown, target: unknown, path: string[] = []): ColumnDifference[] {
  const out: ColumnDifference[] = [];
  const walk = (a: unknown, b: unknown, at: string[]) => {
    if (out.length >= MAX_POINTER_DIFFS) return;
    // no deeper than documents may nest (a tampered target could): the rest is one difference
    if (at.length > MAX_DOCUMENT_DEPTH) {
      out.push({ column: `doc${formatPointer(at)}`, source: "(nested too deep to compare)", target: null });
      return;
    }
    const bothObjects =
      a !== null &&
      b !== null &&
      typeof a === "object" &&
      typeof b === "object" &&
      Array.isArray(a) === Array.isArray(b);
    if (bothObjects) {
      if (Array.isArray(a) && Array.isArray(b)) {
        for (let i = 0; i < Math.max(a.length, b.length); i++)
          walk(i < a.length ? a[i] : undefined, i < b.length ? b[i] : undefined, [...at, String(i)]);
        return;
      }
      const ao = a as Record<string, unknown>;
      const bo = b as Record<string, unknown>;
      const keys = [...new Set([...Object.keys(ao), ...Object.keys(bo)])].sort();
      for (const k of keys)
        walk(Object.hasOwn(ao, k) ? ao[k] : undefined, Object.hasOwn(bo, k) ? bo[k] : undefined, [...at, k]);
      return;
    }
    const as = a === undefined ? null : JSON.stringify(a);
    const bs = b === undefined ? null : JSON.stringify(b);
    if (as !== bs) out.push({ column: `doc${formatPointer(at)}`, source: as, target: bs });
  };
  walk(source, target, path);
  return out;
}

/**
 * Verifies a document table against the source it was imported from. Returns the same result shape as
 * SQLite verification (one table), so the CLI renders, signs and files it the same way.
 *
 *   const result = await verifyDocuments({ pool, from: "ndjson:recalls.ndjson", key: "/recall_number" });
 */
export async function verifyDocuments(options: VerifyDocumentsOptions): Promise<VerifyResult> {
  const started = new Date();
  const t0 = performance.now();
  const spec = typeof options.from === "string" ? parseSourceSpec(options.from) : options.from;
  if (!["json", "ndjson", "csv"].includes(spec.kind))
    throw new UsageError(`${spec.spec} is not a document source; use json:, ndjson: or csv:`);
  const keys = parseKeySpecs(options.key);
  const extras: ExtraColumnSpec[] = (options.columns ?? []).map(parseColumnSpec);
  const maxDiffs = options.maxDiffs ?? 20;
  const resolved = await resolveDocumentSource(spec as DocumentInput, {
    ...(options.records !== undefined ? { records: options.records } : {}),
    ...(options.delimiter !== undefined ? { delimiter: options.delimiter } : {}),
    ...(options.encoding !== undefined ? { encoding: options.encoding } : {}),
    ...(options.emptyAs !== undefined ? { emptyAs: options.emptyAs } : {}),
  });
  const schema = options.schema ?? "public";
  const table =
    options.table !== undefined
      ? fitIdentifier(options.table)
      : documentTableName(resolved.source.defaultTable);
  const fingerprint = fingerprintOf(spec, options.sourceDigests !== undefined);
  fingerprint.catch(() => undefined);
  const target = await describeVerifiedTarget(options.pool, [schema]);
  const typed = options.typed ?? spec.kind === "csv";
  const base: TableVerification = blankTableVerification(
    { sourceTable: resolved.source.label, schema, table },
    "error",
    "row-hash",
  );
  const finish = async (t: TableVerification) => {
    t.durationMs = Math.round(performance.now() - t0);
    return buildResult({
      started,
      source: await fingerprint,
      target,
      sample: undefined,
      plan: options.runId ? { from: "import", runId: options.runId } : { from: "rebuilt" },
      tables: [t],
    });
  };
  if (typed) {
    base.error = {
      code: "typed_table_not_verified",
      message:
        "typed table: checked by counts only at import (records read = loaded + quarantined); content verification covers document tables (import CSV with --no-typed)",
    };
    return finish(base);
  }
  try {
    const digests = options.allowExtra ? undefined : await options.sourceDigests?.result();
    if (
      digests?.ok &&
      (await verifyFromDigests(
        options,
        base,
        keys.map((k) => k.column),
        digests,
      ))
    )
      return await finish(base);
    await verifyTable(options, base, {
      keys: keys.map((k) => k.column),
      builder: new DocumentRowBuilder(keys, extras),
      resolved,
      maxDiffs,
    });
  } catch (error) {
    base.status = "error";
    base.error = {
      code: (error as { code?: string }).code ?? "verify_failed",
      message: (error as Error).message,
    };
  } finally {
    await resolved.cleanup();
  }
  return finish(base);
}

/** The parts of the row hash both sides compute: SQL for the key identity and for the row hash. */
function rowHashExpressions(keys: readonly string[]): { idSql: string; rowHashSql: string } {
  const docText = `${quoteIdent("doc")}::text`;
  const idSql = keys.length ? keyIdentitySql(keys) : `md5(${docText})`;
  return { idSql, rowHashSql: keys.length ? `md5(${idSql} || ${docText})` : `md5(${docText})` };
}

/**
 * The server's per-chunk figures of a document table (as SourceDigests.chunkSums computes the source's),
 * and the quarantine rows of the run, in one snapshot. The table's pages are split among up to `jobs`
 * connections (TID ranges, sharing the first one's exported snapshot), which the pool has free.
 */
async function targetChunkFigures(
  options: VerifyDocumentsOptions,
  t: TableVerification,
  keys: string[],
  buckets: number,
): Promise<{ targetChunks: ChunkFigures; quarantineRecorded: number | undefined }> {
  const pool = options.pool;
  const from = quoteQualified(t.schema, t.table);
  // the row md5's first 16 hex digits as one bigint (cheaper than two bit(32) casts): its high half
  // picks the chunk, as SourceDigests.chunkSums does
  const query = (range: string) =>
    `select chunk, count(*)::bigint as rows, sum(v >> 32)::text as high, sum(v & 4294967295)::text as low
       from (select ((v >> 32) & 2147483647) % ${buckets} as chunk, v
               from (select ('x' || left(${rowHashExpressions(keys).rowHashSql}, 16))::bit(64)::bigint as v
                       from ${from}${range} offset 0) hashed) s
      group by chunk`;
  return withClient(pool, (client) =>
    inCanonicalSnapshot(client, async () => {
      const pages = await tablePages(client, from);
      const wanted = pages >= SPLIT_MIN_PAGES ? (options.jobs ?? 1) : 1;
      return withSnapshotPeers(pool, client, wanted, async (clients) => {
        const ranges = pageRanges(pages, clients.length);
        const results = await Promise.all(
          ranges.map((range, k) => clients[k]!.query(query(range ? ` where ${range}` : ""))),
        );
        const sums = new Map<string, { rows: number; high: bigint; low: bigint }>();
        for (const result of results)
          for (const r of result.rows) {
            const chunk = String(r.chunk);
            const sum = sums.get(chunk) ?? { rows: 0, high: 0n, low: 0n };
            sum.rows += Number(r.rows);
            sum.high += BigInt(r.high as string);
            sum.low += BigInt(r.low as string);
            sums.set(chunk, sum);
          }
        const targetChunks: ChunkFigures = new Map(
          [...sums].map(([chunk, sum]) => [chunk, { rows: sum.rows, checksum: `${sum.high}:${sum.low}` }]),
        );
        let quarantineRecorded: number | undefined;
        if (options.runId) {
          const q = await client.query(
            `select case when to_regclass('pgshift.quarantine') is null then 0
                    else (select count(*) from pgshift.quarantine where run_id = $1 and target_schema = $2 and target_table = $3) end::bigint as n`,
            [options.runId, t.schema, t.table],
          );
          quarantineRecorded = Number(q.rows[0].n);
        }
        return { targetChunks, quarantineRecorded };
      });
    }),
  );
}

/**
 * Verification against the import's own source digests: the server hashes what it stores and sums
 * per chunk, in one snapshot; only the chunk sums cross the wire. True when every chunk and the
 * quarantine count agree (`t` filled in as identical); false, leaving `t` as it was, when anything
 * differs: the caller then narrows with a second read of the source.
 */
async function verifyFromDigests(
  options: VerifyDocumentsOptions,
  t: TableVerification,
  keys: string[],
  digests: { rows: number; chunkSums: (buckets: number) => ChunkFigures },
): Promise<boolean> {
  const columns = await withClient(options.pool, (client) => describeTargetTable(client, t.schema, t.table));
  const names = new Set((columns ?? []).map((c) => c.name));
  if (!columns || ![...keys, "doc"].every((name) => names.has(name))) return false;
  const buckets = Math.max(1, Math.ceil(digests.rows / (options.chunkRows ?? DEFAULT_CHUNK_ROWS)));
  const targetStarted = performance.now();
  const { targetChunks, quarantineRecorded } = await targetChunkFigures(options, t, keys, buckets);
  const targetMs = Math.round(performance.now() - targetStarted);
  const sourceChunks = digests.chunkSums(buckets);
  const leftOut = options.sourceDigests!.leftOut;
  if (quarantineRecorded !== undefined && quarantineRecorded !== leftOut) return false;
  if (sourceChunks.size !== targetChunks.size) return false;
  for (const [chunk, figures] of sourceChunks) {
    const there = targetChunks.get(chunk);
    if (!there || there.rows !== figures.rows || there.checksum !== figures.checksum) return false;
  }
  t.sourceRows = digests.rows;
  t.targetRows = digests.rows;
  t.quarantinedRows = leftOut;
  t.chunking.chunks = sourceChunks.size;
  t.checksums = { source: sideChecksum(sourceChunks), target: sideChecksum(targetChunks) };
  t.timings.targetMs = targetMs;
  t.status = "identical";
  return true;
}

async function verifyTable(
  options: VerifyDocumentsOptions,
  t: TableVerification,
  ctx: {
    keys: string[];
    builder: DocumentRowBuilder;
    resolved: Awaited<ReturnType<typeof resolveDocumentSource>>;
    maxDiffs: number;
  },
): Promise<void> {
  const { keys, builder, resolved } = ctx;
  const task = `verify ${t.table}`;
  // --- target structure ---
  const columns = await withClient(options.pool, (client) => describeTargetTable(client, t.schema, t.table));
  if (!columns) {
    t.problems.push(`table ${t.schema}.${t.table} does not exist`);
  } else {
    const names = new Set(columns.map((c) => c.name));
    for (const needed of [...keys, "doc"])
      if (!names.has(needed)) t.problems.push(`column ${needed} is missing from ${t.schema}.${t.table}`);
  }
  if (t.problems.length > 0) {
    t.status = "mismatch";
    return;
  }

  const from = quoteQualified(t.schema, t.table);
  const docText = `${quoteIdent("doc")}::text`;
  const idSql = keys.length ? keyIdentitySql(keys) : `md5(${docText})`;
  const rowHashSql = keys.length ? `md5(${idSql} || ${docText})` : `md5(${docText})`;
  // Chunks by the row hash (not the key): one md5 per row on each side. A changed document then
  // falls in different chunks on the two sides; both differ, both are narrowed, and rows are matched by key.
  const { rows: estimate } = await options.pool.query(
    "select greatest(reltuples, 0)::bigint as n from pg_class where oid = $1::regclass",
    [from],
  );
  let expectedRows = Number(estimate[0]?.n ?? 0);
  if (expectedRows === 0) {
    const { rows: counted } = await options.pool.query(`select count(*)::bigint as n from ${from}`);
    expectedRows = Number(counted[0].n);
  }
  const buckets = Math.max(1, Math.ceil(expectedRows / (options.chunkRows ?? DEFAULT_CHUNK_ROWS)));
  const chunkOf = (hashSql: string) =>
    `((('x' || left(${hashSql}, 8))::bit(32)::int & 2147483647) % ${buckets})`;

  // --- target side, on the server while the source is read: per-chunk sums in one snapshot ---
  const targetChunks = new Map<string, { rows: number; checksum: string }>();
  const narrowed: { id: string; key: string[]; hash: string }[] = [];
  let quarantineRecorded: number | undefined;
  let sourceReady!: (mismatched: string[] | undefined) => void;
  const mismatchedKnown = new Promise<string[] | undefined>((resolve) => {
    sourceReady = resolve;
  });
  let sumsDone!: () => void;
  const sumsReady = new Promise<void>((resolve) => {
    sumsDone = resolve;
  });
  const targetStarted = performance.now();
  const targetWork = withClient(options.pool, (client) =>
    inCanonicalSnapshot(client, async () => {
      const { rows } = await client.query(
        `select chunk, count(*)::bigint as rows,
                lpad(to_hex((((coalesce(sum(high), 0) % 4294967296) + 4294967296) % 4294967296)::bigint), 8, '0') ||
                lpad(to_hex((((coalesce(sum(low), 0) % 4294967296) + 4294967296) % 4294967296)::bigint), 8, '0') as checksum
           from (select ${chunkOf("h")} as chunk, ('x' || left(h, 8))::bit(32)::int as high, ('x' || substr(h, 9, 8))::bit(32)::int as low
                   from (select ${rowHashSql} as h from ${from} offset 0) hashed) s
          group by chunk`,
      );
      for (const r of rows) targetChunks.set(String(r.chunk), { rows: Number(r.rows), checksum: r.checksum });
      t.timings.targetMs = Math.round(performance.now() - targetStarted);
      sumsDone();
      if (options.runId) {
        const exists = await client.query("select to_regclass('pgshift.quarantine') is not null as ok");
        if (exists.rows[0].ok) {
          const q = await client.query(
            "select count(*)::bigint as n from pgshift.quarantine where run_id = $1 and target_schema = $2 and target_table = $3",
            [options.runId, t.schema, t.table],
          );
          quarantineRecorded = Number(q.rows[0].n);
        }
      }
      // --- narrowing, in the same snapshot: keys and row md5s of the differing chunks only ---
      const mismatched = await mismatchedKnown;
      if (!mismatched) return undefined;
      const keySelect = keys.map((k, i) => `${quoteIdent(k)}::text as k${i}`).join(", ");
      for (let i = 0; i < mismatched.length; i += NARROW_BATCH) {
        const batch = mismatched.slice(i, i + NARROW_BATCH).map(Number);
        const { rows: found } = await client.query(
          `select id, h${keys.map((_, j) => `, k${j}`).join("")}
             from (select ${idSql} as id, ${rowHashSql} as h${keySelect ? `, ${keySelect}` : ""} from ${from} offset 0) r
            where ${chunkOf("h")} = any($1::int[])`,
          [batch],
        );
        for (const r of found)
          narrowed.push({ id: r.id, key: keys.map((_, j) => r[`k${j}`] as string), hash: r.h });
      }
      return undefined;
    }),
  );
  targetWork.catch(() => sourceReady(undefined));

  // --- source side: the import's reader and row builder, then canonical jsonb text ---
  const sourceStarted = performance.now();
  const entries = new Map<string, SourceEntry>();
  const sourceChunks = new Map<number, ChunkSum>();
  try {
    let kept = 0;
    let duplicates = 0;
    const pending: { id: string; key: string[]; canonical: string }[] = [];
    let read = 0;
    for await (const item of resolved.source.read()) {
      if (item.kind === "problem") {
        t.quarantinedRows += item.records;
        continue;
      }
      read++;
      const built = builder.build(item);
      if (!built.ok) {
        t.quarantinedRows++;
        continue;
      }
      const key = built.values.slice(0, keys.length).map((v) => String(v));
      const doc = built.values[keys.length] as string;
      let canonical: string;
      try {
        canonical = documentJsonbText(doc, item.value);
      } catch (error) {
        throw new UsageError(
          `${item.location}: the document cannot be stored as jsonb (${(error as Error).message})`,
        );
      }
      kept++;
      pending.push({ id: keys.length ? keyIdentity(key) : "", key, canonical });
      if (read % 10_000 === 0) options.onProgress?.({ task, done: read, unit: "records" });
      if (pending.length >= 4096) duplicates += flushPending(pending, entries, keys.length > 0);
    }
    duplicates += flushPending(pending, entries, keys.length > 0);
    options.onProgress?.({ task, done: read, unit: "records", finished: true });
    if (duplicates > 0 && options.duplicates !== "last-wins")
      t.problems.push(
        `the source holds ${duplicates} duplicate key(s); compared with the last record of each key`,
      );
    t.sourceRows = kept - duplicates;
    for (const entry of entries.values()) {
      entry.chunk = Number(hashChunk(entry.hash, buckets));
      let sum = sourceChunks.get(entry.chunk);
      if (!sum) sourceChunks.set(entry.chunk, (sum = new ChunkSum()));
      sum.add(entry.hash, entry.count);
    }
    t.timings.sourceMs = Math.round(performance.now() - sourceStarted);
  } catch (error) {
    sourceReady(undefined);
    await targetWork.catch(() => undefined);
    throw error;
  }

  // --- compare per chunk, once the server's sums are in ---
  const sourceText = new Map(
    [...sourceChunks].map(([c, sum]) => [String(c), { rows: sum.rows, checksum: sum.checksum() }]),
  );
  // the server's sums (or its failure) before the comparison; narrowing then waits for the list below
  await Promise.race([sumsReady, targetWork]);
  const all = new Set([...sourceText.keys(), ...targetChunks.keys()]);
  const mismatched: string[] = [];
  for (const chunk of all) {
    const a = sourceText.get(chunk);
    const b = targetChunks.get(chunk);
    if (!a || !b || a.rows !== b.rows || a.checksum !== b.checksum) mismatched.push(chunk);
  }
  sourceReady(mismatched);
  await targetWork;
  t.targetRows = [...targetChunks.values()].reduce((n, c) => n + c.rows, 0);
  t.chunking.chunks = all.size;
  t.chunking.mismatched = mismatched.length;
  t.chunking.narrowed = mismatched.length;
  t.checksums = { source: sideChecksum(sourceText), target: sideChecksum(targetChunks) };
  if (quarantineRecorded !== undefined && quarantineRecorded !== t.quarantinedRows)
    t.problems.push(
      `the import quarantined ${quarantineRecorded} record(s) (pgshift.quarantine, run ${options.runId}), but ${t.quarantinedRows} are left out on re-reading the source`,
    );

  // --- compare the narrowed chunks row by row ---
  const mismatchedChunks = new Set(mismatched);
  const rowKey = (key: string[], id: string): RowKey =>
    keys.length ? Object.fromEntries(keys.map((k, i) => [k, key[i] ?? null])) : { doc_md5: id };
  const targetById = new Map<string, { key: string[]; hash: string; count: number }>();
  for (const row of narrowed) {
    const seen = targetById.get(row.id);
    if (seen) seen.count++;
    else targetById.set(row.id, { key: row.key, hash: row.hash, count: 1 });
  }
  const changedIds: string[] = [];
  for (const [id, entry] of entries) {
    if (!mismatchedChunks.has(String(entry.chunk))) continue;
    const there = targetById.get(id);
    const expected = entry.count;
    const present = there?.count ?? 0;
    if (present < expected) {
      t.missingRows += expected - present;
      if (t.missing.length < ctx.maxDiffs) t.missing.push(rowKey(entry.key, id));
    } else if (present > expected) {
      t.extraRows += present - expected;
      if (t.extra.length < ctx.maxDiffs) t.extra.push(rowKey(entry.key, id));
    }
    if (there && keys.length && there.hash !== entry.hash.toString("hex")) {
      t.changedRows++;
      if (changedIds.length < ctx.maxDiffs) changedIds.push(id);
    }
  }
  for (const [id, row] of targetById) {
    if (entries.has(id)) continue;
    t.extraRows += row.count;
    if (t.extra.length < ctx.maxDiffs) t.extra.push(rowKey(row.key, id));
  }
  if (changedIds.length > 0) t.changed = await describeChanges(options, t, ctx, changedIds, idSql, rowKey);

  const quarantineDiffers = quarantineRecorded !== undefined && quarantineRecorded !== t.quarantinedRows;
  if (options.allowExtra && t.extraRows > 0)
    t.problems.push(
      `${t.extraRows} row(s) not in this source, expected (the import kept rows the table already had)`,
    );
  const wrong = t.missingRows + t.changedRows + (options.allowExtra ? 0 : t.extraRows);
  t.status = wrong > 0 || quarantineDiffers ? "mismatch" : "identical";
}

/** Adds a batch of source records: the last record of a key wins. Returns the duplicates seen. */
function flushPending(
  pending: { id: string; key: string[]; canonical: string }[],
  entries: Map<string, SourceEntry>,
  keyed: boolean,
): number {
  let duplicates = 0;
  for (const record of pending) {
    if (keyed) {
      const hash = md5(record.id + record.canonical);
      if (entries.has(record.id)) duplicates++;
      entries.set(record.id, { chunk: 0, hash, key: record.key, count: 1 });
    } else {
      const hash = md5(record.canonical);
      const id = hash.toString("hex");
      const seen = entries.get(id);
      if (seen) seen.count++;
      else entries.set(id, { chunk: 0, hash, key: [], count: 1 });
    }
  }
  pending.length = 0;
  return duplicates;
}

/** The documents of the first changed keys on both sides (a second pass over the source), diffed by JSON pointer. */
async function describeChanges(
  options: VerifyDocumentsOptions,
  t: TableVerification,
  ctx: {
    keys: string[];
    builder: DocumentRowBuilder;
    resolved: Awaited<ReturnType<typeof resolveDocumentSource>>;
  },
  ids: string[],
  idSql: string,
  rowKey: (key: string[], id: string) => RowKey,
): Promise<ChangedRow[]> {
  const wanted = new Set(ids);
  const sourceDocs = new Map<string, { key: string[]; text: string }>();
  for await (const item of ctx.resolved.source.read()) {
    if (item.kind !== "record") continue;
    const built = ctx.builder.build(item);
    if (!built.ok) continue;
    const key = built.values.slice(0, ctx.keys.length).map((v) => String(v));
    const id = keyIdentity(key);
    if (wanted.has(id)) sourceDocs.set(id, { key, text: jsonbText(built.values[ctx.keys.length] as string) });
  }
  const { rows } = await options.pool.query(
    `select ${idSql} as id, doc::text as doc from ${quoteQualified(t.schema, t.table)} where ${idSql} = any($1::text[])`,
    [ids],
  );
  const targetDocs = new Map(rows.map((r) => [r.id as string, r.doc as string]));
  return ids.map((id) => {
    const source = sourceDocs.get(id);
    const target = targetDocs.get(id) ?? null;
    let columns: ColumnDifference[] = [];
    if (source && target !== null) columns = jsonPointerDiff(JSON.parse(source.text), JSON.parse(target));
    // Differences beyond what JavaScript numbers hold (digits past double precision) show as the whole document.
    if (columns.length === 0) columns = [{ column: "doc", source: source?.text ?? null, target }];
    return { key: rowKey(source?.key ?? [], id), columns };
  });
}

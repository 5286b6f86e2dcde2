import { createHash } from "node:crypto";
import type pg from "pg";
import type { DocumentKey, DocumentStore, JsonDocument } from "../documents/document-store.ts";
import { importDocuments } from "../documents/import-documents.ts";
import { UsageError } from "../errors.ts";
import type { CutoverBackfillSink } from "./backfill.ts";
import { type CutoverOptions, type CutoverStore, createCutover } from "./create-cutover.ts";
import { mapLikeAccess } from "./map-like-access.ts";
import { upsertSink } from "./upsert-sink.ts";

/**
 * The async Map-like interface a key -> JSON store exposes: what an in-memory `Map` does, awaited.
 * `documentMap(store)` gives it over a PostgreSQL DocumentStore, so a Map-like legacy store and its
 * PostgreSQL replacement are two implementations of one interface.
 */
export interface AsyncMapLike<D> {
  get(key: string): Promise<D | undefined>;
  set(key: string, value: D): Promise<unknown>;
  delete(key: string): Promise<boolean>;
  has(key: string): Promise<boolean>;
  keys(): AsyncIterable<string>;
  entries(): AsyncIterable<[string, D]>;
  size(): Promise<number>;
}

/** A DocumentStore as an AsyncMapLike (single-column string keys; keys listed in key order, paged). */
export function documentMap<D extends JsonDocument>(
  store: DocumentStore<D>,
  options: { pageSize?: number } = {},
): AsyncMapLike<D> {
  if (store.keyColumns.length !== 1)
    throw new UsageError(
      `documentMap needs a single key column; ${store.table} has ${store.keyColumns.join(", ")}`,
    );
  const pageSize = options.pageSize ?? 1000;
  async function* rows(): AsyncIterable<[string, D]> {
    let after: DocumentKey | undefined;
    for (;;) {
      const page = await store.page({ limit: pageSize, ...(after !== undefined ? { after } : {}) });
      for (const row of page.rows) yield [String(row.key), row.doc];
      if (page.next === undefined) return;
      after = page.next;
    }
  }
  return {
    get: (key) => store.get(key),
    set: async (key, value) => {
      await store.put(key, value);
    },
    delete: (key) => store.delete(key),
    has: (key) => store.has(key),
    async *keys() {
      for await (const [key] of rows()) yield key;
    },
    entries: rows,
    size: () => store.count(),
  };
}

/**
 * A backfill sink into a DocumentStore's table through the bulk import path.
 * - Documents that hold their own key (e.g. `{ id: "t1", ... }` with keyColumns ["id"]) go through
 *   importDocuments in upsert mode (COPY into a staging table, one merge, last record wins).
 * - `[key, document]` entries (a Map's entries, where the document need not hold its key) are COPYed
 *   with the key beside the document and merged with INSERT ... ON CONFLICT; the content hash is the
 *   same sha256 of the document's JSON that DocumentStore.put stores.
 */
export function documentSink<D extends JsonDocument>(
  pool: pg.Pool,
  store: DocumentStore<D>,
): CutoverBackfillSink<D | [string, D]> {
  const keyColumn = store.keyColumns[0]!;
  const entries = upsertSink<[string, D]>(pool, {
    schema: store.schema,
    table: store.table,
    keyColumns: store.keyColumns,
    columns: [keyColumn, "doc", "source_file", "content_hash"],
    toRow: ([key, doc]) => {
      const text = JSON.stringify(doc);
      return [key, text, "pgshift cutover backfill", createHash("sha256").update(text).digest("hex")];
    },
  });
  return async (batch) => {
    if (batch.every((record) => Array.isArray(record))) {
      if (store.keyColumns.length !== 1)
        throw new UsageError(`[key, document] entries need a single key column; ${store.table} has several`);
      return entries(batch as [string, D][]);
    }
    if (batch.some((record) => Array.isArray(record)))
      throw new UsageError("a backfill batch mixes [key, document] entries and documents; yield one kind");
    const result = await importDocuments({
      pool,
      from: batch as D[],
      sourceLabel: "pgshift cutover backfill",
      schema: store.schema,
      table: store.table,
      key: store.keyColumns.map((c) => `/${c.replace(/~/g, "~0").replace(/\//g, "~1")}`),
      mode: "upsert",
      duplicates: "last-wins",
    });
    return result.recordsLoaded;
  };
}

/** An in-memory Map seen through the AsyncMapLike interface (same data, awaited methods). */
export function asyncMap<D>(map: Map<string, D>): AsyncMapLike<D> {
  return {
    get: async (key) => map.get(key),
    set: async (key, value) => map.set(key, value),
    delete: async (key) => map.delete(key),
    has: async (key) => map.has(key),
    async *keys() {
      for (const key of [...map.keys()]) yield key;
    },
    async *entries() {
      for (const entry of [...map.entries()]) yield entry;
    },
    size: async () => map.size,
  };
}

export interface MapCutoverOptions<D extends JsonDocument> extends Omit<
  CutoverOptions<AsyncMapLike<D>>,
  "legacy" | "next" | "reads" | "writes" | "keyAccess"
> {
  /** The in-memory store being replaced: a Map, or anything AsyncMapLike. */
  legacy: Map<string, D> | AsyncMapLike<D>;
  /** Its PostgreSQL replacement. */
  next: DocumentStore<D>;
}

/**
 * A cutover of a Map-like key -> JSON store onto a DocumentStore with no adapter code: reads `get`,
 * `has`; writes `set`, `delete`; per-key repair and verification built in. Backfill with
 * `store.cutover.backfill({ from: () => map.entries(), to: documentSink(pool, documents) })`.
 */
export function createMapCutover<D extends JsonDocument>(
  options: MapCutoverOptions<D>,
): Promise<CutoverStore<AsyncMapLike<D>>> {
  const { legacy, next, ...rest } = options;
  return createCutover<AsyncMapLike<D>>({
    ...rest,
    legacy: legacy instanceof Map ? asyncMap(legacy) : legacy,
    next: documentMap(next),
    reads: ["get", "has"],
    writes: ["set", "delete"],
    keyAccess: mapLikeAccess<AsyncMapLike<D>>(),
    labels: {
      legacy: options.labels?.legacy ?? (legacy instanceof Map ? "in-memory Map" : "legacy"),
      next: options.labels?.next ?? `postgresql ${next.schema}.${next.table}`,
    },
  });
}

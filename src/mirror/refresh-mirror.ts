import { stat } from "node:fs/promises";
import type pg from "pg";
import { UsageError } from "../errors.ts";
import { type Dataset, singleTableDataset } from "../refresh/dataset.ts";
import { type RefreshOptions, type RefreshResult, refreshDataset } from "../refresh/refresh-dataset.ts";
import type { MirrorEndpoint } from "./endpoints.ts";
import { endpointCacheDir } from "./json-cache.ts";

/**
 * The refresh dataset of a mirror: one document table per endpoint, named after it, read from the
 * endpoint's cache directory (envelopes, records at /results; a record written through after a page wins
 * over the page's copy), keyed by its natural key, with a GIN index and the endpoint's trigram indexes.
 */
export function mirrorDataset(options: {
  cacheDir: string;
  endpoints: readonly MirrorEndpoint[];
  schema: string;
  name?: string;
}): Dataset {
  if (options.endpoints.length === 0) throw new UsageError("a mirror refresh needs at least one endpoint");
  const tables = options.endpoints.map((endpoint) => ({
    table: endpoint.name,
    from: `json:${endpointCacheDir(options.cacheDir, endpoint)}`,
    key: endpoint.key.length === 1 ? endpoint.key[0]! : [...endpoint.key],
    records: "/results",
    gin: true,
    ...(endpoint.trgm?.length ? { trgm: [...endpoint.trgm] } : {}),
    duplicates: "last-wins" as const,
  }));
  const [first, ...rest] = tables;
  const dataset = singleTableDataset({
    ...first!,
    schema: options.schema,
    ...(options.name ? { name: options.name } : {}),
  });
  return { ...dataset, tables: [...dataset.tables, ...rest] };
}

export interface RefreshMirrorOptions extends Omit<RefreshOptions, "dataset"> {
  pool: pg.Pool;
  cacheDir: string;
  /** The endpoints to put live together; those without a cache directory are left out (and named). */
  endpoints: readonly MirrorEndpoint[];
  schema: string;
  name?: string;
}

/**
 * Hands a mirror's cache to `pgshift refresh`: builds `<schema>__next` from the cache, verifies it and
 * switches it live atomically (refreshDataset). Every endpoint present in the cache goes live in the same
 * swap, so the endpoints stay consistent with each other.
 */
export async function refreshMirror(
  options: RefreshMirrorOptions,
): Promise<RefreshResult & { endpointsWithoutCache: string[] }> {
  const { cacheDir, endpoints, schema, name, ...refresh } = options;
  const present: MirrorEndpoint[] = [];
  const missing: string[] = [];
  for (const endpoint of endpoints) {
    const exists = await stat(endpointCacheDir(cacheDir, endpoint)).then(
      (s) => s.isDirectory(),
      () => false,
    );
    if (exists) present.push(endpoint);
    else missing.push(endpoint.name);
  }
  if (present.length === 0)
    throw new UsageError(`no endpoint has a cache under ${cacheDir}; run pgshift mirror pull first`);
  const dataset = mirrorDataset({ cacheDir, endpoints: present, schema, ...(name ? { name } : {}) });
  const result = await refreshDataset({ ...refresh, pool: options.pool, dataset });
  return { ...result, endpointsWithoutCache: missing };
}

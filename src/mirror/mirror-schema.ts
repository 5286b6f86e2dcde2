import type pg from "pg";
import { ensureInternalSchema, type InternalSchemaPart } from "../pg/internal-schema.ts";
import { DEFAULT_TTL_SECONDS, type MirrorEndpoint } from "./endpoints.ts";

/** pgshift.mirror_endpoints: per mirrored endpoint, what the source said and when pgshift fetched it. */
export const mirrorSchemaPart: InternalSchemaPart = {
  name: "mirror",
  steps: [
    `create table pgshift.mirror_endpoints (
       endpoint text primary key,
       api_path text not null,
       source_last_updated text,
       export_date text,
       fetched_at timestamptz not null,
       record_count bigint not null,
       fingerprint text not null,
       ttl_seconds integer not null,
       cache_dir text,
       how text not null check (how in ('pull', 'download')),
       updated_at timestamptz not null default now()
     )`,
  ],
};

export async function ensureMirrorSchema(pool: pg.Pool): Promise<void> {
  await ensureInternalSchema(pool, [mirrorSchemaPart]);
}

/** What one pull or download of an endpoint fetched. */
export interface EndpointFreshness {
  endpoint: string;
  apiPath: string;
  /** The API's meta.last_updated. */
  sourceLastUpdated: string | null;
  /** The bulk manifest's export_date (downloads). */
  exportDate: string | null;
  fetchedAt: string;
  recordCount: number;
  /** Order-independent hash of every (key, record) fetched: equal data, equal fingerprint. */
  fingerprint: string;
  ttlSeconds: number;
  cacheDir: string | null;
  how: "pull" | "download";
}

export async function recordFreshness(pool: pg.Pool, row: EndpointFreshness): Promise<void> {
  await ensureMirrorSchema(pool);
  await pool.query(
    `insert into pgshift.mirror_endpoints
       (endpoint, api_path, source_last_updated, export_date, fetched_at, record_count, fingerprint, ttl_seconds, cache_dir, how)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
     on conflict (endpoint) do update set api_path = excluded.api_path,
       source_last_updated = excluded.source_last_updated, export_date = excluded.export_date,
       fetched_at = excluded.fetched_at, record_count = excluded.record_count, fingerprint = excluded.fingerprint,
       ttl_seconds = excluded.ttl_seconds, cache_dir = excluded.cache_dir, how = excluded.how, updated_at = now()`,
    [
      row.endpoint,
      row.apiPath,
      row.sourceLastUpdated,
      row.exportDate,
      row.fetchedAt,
      row.recordCount,
      row.fingerprint,
      row.ttlSeconds,
      row.cacheDir,
      row.how,
    ],
  );
}

/** The recorded freshness of every endpoint (or of those named). */
export async function readFreshness(
  pool: pg.Pool,
  endpoints?: readonly string[],
): Promise<EndpointFreshness[]> {
  await ensureMirrorSchema(pool);
  const { rows } = await pool.query(
    `select * from pgshift.mirror_endpoints where $1::text[] is null or endpoint = any($1) order by endpoint`,
    [endpoints ?? null],
  );
  return rows.map((r) => ({
    endpoint: r.endpoint,
    apiPath: r.api_path,
    sourceLastUpdated: r.source_last_updated,
    exportDate: r.export_date,
    fetchedAt: (r.fetched_at as Date).toISOString(),
    recordCount: Number(r.record_count),
    fingerprint: r.fingerprint,
    ttlSeconds: r.ttl_seconds,
    cacheDir: r.cache_dir,
    how: r.how,
  }));
}

/** One endpoint as `pgshift mirror status` shows it. */
export interface EndpointStatus {
  endpoint: string;
  apiPath: string;
  ttlSeconds: number;
  /** Null when the endpoint was never pulled or downloaded. */
  freshness: EndpointFreshness | null;
  ageSeconds: number | null;
  /** Never fetched, or fetched longer ago than its TTL. */
  stale: boolean;
}

/**
 * Freshness of each endpoint against its TTL.
 *
 * @example
 *   const status = await mirrorStatus({ pool, endpoints: OPENFDA_DEVICE_ENDPOINTS });
 *   status.filter((e) => e.stale).map((e) => e.endpoint);
 */
export async function mirrorStatus(options: {
  pool: pg.Pool;
  endpoints: readonly MirrorEndpoint[];
  now?: Date;
}): Promise<EndpointStatus[]> {
  const rows = new Map((await readFreshness(options.pool)).map((r) => [r.endpoint, r]));
  const now = (options.now ?? new Date()).getTime();
  return options.endpoints.map((endpoint) => {
    const freshness = rows.get(endpoint.name) ?? null;
    const ttlSeconds = freshness?.ttlSeconds ?? endpoint.ttlSeconds ?? DEFAULT_TTL_SECONDS;
    const ageSeconds = freshness
      ? Math.max(0, Math.round((now - Date.parse(freshness.fetchedAt)) / 1000))
      : null;
    return {
      endpoint: endpoint.name,
      apiPath: endpoint.path,
      ttlSeconds,
      freshness,
      ageSeconds,
      stale: ageSeconds === null || ageSeconds > ttlSeconds,
    };
  });
}

import type pg from "pg";
import { ensureInternalSchema, type InternalSchemaPart } from "../pg/internal-schema.ts";

/** pgshift.refresh_versions: one row per version of a dataset, from building to pruned. */
export const refreshSchemaPart: InternalSchemaPart = {
  name: "refresh",
  steps: [
    `create table pgshift.refresh_versions (
       dataset text not null,
       version integer not null,
       schema_name text not null,
       status text not null check (status in ('building', 'live', 'previous', 'failed', 'pruned')),
       mode text not null default 'full',
       sources jsonb not null default '[]',
       counts jsonb not null default '{}',
       verification jsonb,
       delta jsonb,
       error jsonb,
       started_at timestamptz not null default now(),
       built_at timestamptz,
       switched_at timestamptz,
       switched_by text,
       reason text,
       primary key (dataset, version)
     )`,
    `create table pgshift.refresh_row_hashes (
       dataset text not null,
       version integer not null,
       tbl text not null,
       key text not null,
       doc_md5 text not null,
       primary key (dataset, version, tbl, key)
     )`,
    // when a version stopped being live (--keep-for counts from here), and the signed report's digest
    `alter table pgshift.refresh_versions add column retired_at timestamptz, add column report jsonb`,
  ],
};

export type VersionStatus = "building" | "live" | "previous" | "failed" | "pruned";

/** A recorded version of a dataset, as `pgshift refresh status` shows it. */
export interface RefreshVersion {
  dataset: string;
  version: number;
  schemaName: string;
  status: VersionStatus;
  mode: string;
  sources: unknown[];
  counts: Record<string, number>;
  verification: unknown;
  delta: unknown;
  error: unknown;
  startedAt: string;
  builtAt: string | null;
  switchedAt: string | null;
  switchedBy: string | null;
  reason: string | null;
  /** When it stopped being live (null while live, or for versions retired before this was recorded). */
  retiredAt: string | null;
  /** The run's report file: path, sha256 and signature when a key was given. */
  report: unknown;
}

export async function ensureRefreshSchema(pool: pg.Pool): Promise<void> {
  await ensureInternalSchema(pool, [refreshSchemaPart]);
}

export function versionFromRow(r: Record<string, unknown>): RefreshVersion {
  const time = (v: unknown) => (v instanceof Date ? v.toISOString() : v === null ? null : String(v));
  return {
    dataset: String(r.dataset),
    version: Number(r.version),
    schemaName: String(r.schema_name),
    status: r.status as VersionStatus,
    mode: String(r.mode),
    sources: r.sources as unknown[],
    counts: r.counts as Record<string, number>,
    verification: r.verification ?? null,
    delta: r.delta ?? null,
    error: r.error ?? null,
    startedAt: time(r.started_at)!,
    builtAt: time(r.built_at),
    switchedAt: time(r.switched_at),
    switchedBy: (r.switched_by as string | null) ?? null,
    reason: (r.reason as string | null) ?? null,
    retiredAt: time(r.retired_at ?? null),
    report: r.report ?? null,
  };
}

/** Every version of a dataset, newest first. */
export async function listVersions(
  client: pg.ClientBase | pg.Pool,
  dataset: string,
): Promise<RefreshVersion[]> {
  const { rows } = await client.query(
    "select * from pgshift.refresh_versions where dataset = $1 order by version desc",
    [dataset],
  );
  return rows.map(versionFromRow);
}

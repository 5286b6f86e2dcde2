import type pg from "pg";
import { spareSchemaName } from "./prune.ts";
import { ensureRefreshSchema, listVersions, type RefreshVersion } from "./refresh-schema.ts";

export interface RefreshStatus {
  dataset: string;
  live: RefreshVersion | null;
  previous: RefreshVersion[];
  building: RefreshVersion | null;
  versions: RefreshVersion[];
  /** The spare a delta run's prune kept (`<schema>__spare`, a pruned version's tables), if it exists. */
  spare: { version: number; schema: string } | null;
}

/** The versions of a dataset: live, previous (newest first), one building, and every one recorded. */
export async function refreshStatus(options: { pool: pg.Pool; dataset: string }): Promise<RefreshStatus> {
  await ensureRefreshSchema(options.pool);
  const versions = await listVersions(options.pool, options.dataset);
  const live = versions.find((v) => v.status === "live");
  const spareName = live ? spareSchemaName(live.schemaName) : null;
  const { rows } = spareName
    ? await options.pool.query("select 1 from pg_namespace where nspname = $1", [spareName])
    : { rows: [] };
  const spareVersion = rows.length
    ? versions
        .filter((v) => v.status === "pruned" && v.schemaName === spareName)
        .reduce((newest, v) => Math.max(newest, v.version), 0)
    : 0;
  return {
    dataset: options.dataset,
    live: versions.find((v) => v.status === "live") ?? null,
    previous: versions.filter((v) => v.status === "previous"),
    building: versions.find((v) => v.status === "building") ?? null,
    versions,
    spare: spareName && rows.length ? { version: spareVersion, schema: spareName } : null,
  };
}

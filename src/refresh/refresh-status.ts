import type pg from "pg";
import { ensureRefreshSchema, listVersions, type RefreshVersion } from "./refresh-schema.ts";

export interface RefreshStatus {
  dataset: string;
  live: RefreshVersion | null;
  previous: RefreshVersion[];
  building: RefreshVersion | null;
  versions: RefreshVersion[];
}

/** The versions of a dataset: live, previous (newest first), one building, and every one recorded. */
export async function refreshStatus(options: { pool: pg.Pool; dataset: string }): Promise<RefreshStatus> {
  await ensureRefreshSchema(options.pool);
  const versions = await listVersions(options.pool, options.dataset);
  return {
    dataset: options.dataset,
    live: versions.find((v) => v.status === "live") ?? null,
    previous: versions.filter((v) => v.status === "previous"),
    building: versions.find((v) => v.status === "building") ?? null,
    versions,
  };
}

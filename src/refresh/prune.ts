import type pg from "pg";
import { UsageError } from "../errors.ts";
import { dropSchema } from "./build-next.ts";
import { withRefreshLock } from "./refresh-lock.ts";
import { ensureRefreshSchema } from "./refresh-schema.ts";

export interface PruneOptions {
  pool: pg.Pool;
  dataset: string;
  /** Previous versions to keep (newest first); older ones are dropped. */
  keep: number;
}

export interface PruneResult {
  dataset: string;
  kept: number[];
  /** Versions whose schema was dropped. */
  pruned: { version: number; schema: string }[];
}

/** Drops all but the `keep` newest previous versions of a dataset (their schemas, CASCADE). */
export async function pruneDataset(options: PruneOptions): Promise<PruneResult> {
  const { pool, dataset, keep } = options;
  if (!Number.isInteger(keep) || keep < 0)
    throw new UsageError(`--keep must be a whole number >= 0, not ${keep}`);
  await ensureRefreshSchema(pool);
  return withRefreshLock(pool, dataset, () => pruneVersions(pool, dataset, keep));
}

/** The prune itself; the caller holds the dataset's lock (a run prunes after its switch). */
export async function pruneVersions(pool: pg.Pool, dataset: string, keep: number): Promise<PruneResult> {
  const { rows } = await pool.query(
    "select version, schema_name from pgshift.refresh_versions where dataset = $1 and status = 'previous' order by version desc",
    [dataset],
  );
  const pruned: PruneResult["pruned"] = [];
  for (const row of rows.slice(keep)) {
    await dropSchema(pool, row.schema_name);
    await pool.query(
      "update pgshift.refresh_versions set status = 'pruned' where dataset = $1 and version = $2",
      [dataset, row.version],
    );
    await pool.query("delete from pgshift.refresh_row_hashes where dataset = $1 and version = $2", [
      dataset,
      row.version,
    ]);
    pruned.push({ version: row.version, schema: row.schema_name });
  }
  return { dataset, kept: rows.slice(0, keep).map((r) => r.version), pruned };
}

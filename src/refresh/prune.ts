import type pg from "pg";
import { parseDuration } from "../cutover/ramp-settings.ts";
import { UsageError } from "../errors.ts";
import { dropSchema } from "./build-next.ts";
import { withRefreshLock } from "./refresh-lock.ts";
import { ensureRefreshSchema } from "./refresh-schema.ts";

export interface PruneOptions {
  pool: pg.Pool;
  dataset: string;
  /** Previous versions to keep (newest first); older ones are dropped. */
  keep?: number;
  /**
   * Keep previous versions retired less than this long ago (ms, or "24h", "30m"). With `keep`, a version
   * stays while either keeps it.
   */
  keepFor?: number | string;
}

export interface PruneResult {
  dataset: string;
  kept: number[];
  /** Versions whose schema was dropped. */
  pruned: { version: number; schema: string }[];
}

function assertKeep(keep: number | undefined, keepForMs: number | undefined): void {
  if (keep === undefined && keepForMs === undefined)
    throw new UsageError("say what to keep: --keep N (versions) and/or --keep-for 24h");
  if (keep !== undefined && !(Number.isInteger(keep) && keep >= 0))
    throw new UsageError(`--keep must be a whole number >= 0, not ${keep}`);
}

/**
 * Drops previous versions of a dataset (their schemas, CASCADE) beyond the newest `keep` and retired
 * longer ago than `keepFor`.
 */
export async function pruneDataset(options: PruneOptions): Promise<PruneResult> {
  const { pool, dataset, keep } = options;
  const keepForMs = options.keepFor === undefined ? undefined : parseDuration(options.keepFor, "--keep-for");
  assertKeep(keep, keepForMs);
  await ensureRefreshSchema(pool);
  return withRefreshLock(pool, dataset, () => pruneVersions(pool, dataset, keep, keepForMs));
}

/** The prune itself; the caller holds the dataset's lock (a run prunes after its switch). */
export async function pruneVersions(
  pool: pg.Pool,
  dataset: string,
  keep: number | undefined,
  keepForMs?: number,
): Promise<PruneResult> {
  assertKeep(keep, keepForMs);
  // versions retired before retired_at was recorded count from when they were built
  const { rows } = await pool.query(
    `select version, schema_name,
            extract(epoch from now() - coalesce(retired_at, built_at, started_at)) * 1000 as retired_ms
       from pgshift.refresh_versions where dataset = $1 and status = 'previous' order by version desc`,
    [dataset],
  );
  const pruned: PruneResult["pruned"] = [];
  const kept: number[] = [];
  for (const [i, row] of rows.entries()) {
    const keptByCount = keep !== undefined && i < keep;
    const keptByAge = keepForMs !== undefined && Number(row.retired_ms) < keepForMs;
    if (keptByCount || keptByAge) {
      kept.push(row.version);
      continue;
    }
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
  return { dataset, kept, pruned };
}

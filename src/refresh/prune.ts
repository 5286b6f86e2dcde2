import type pg from "pg";
import { parseDuration } from "../duration.ts";
import { UsageError } from "../errors.ts";
import { quoteIdent } from "../pg/quote.ts";
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
  /** Versions whose schema was dropped (or kept as the spare: `spare`). */
  pruned: { version: number; schema: string }[];
  /** The pruned version whose tables were kept as the next delta build's spare (`<schema>__spare`). */
  spare?: { version: number; schema: string };
}

/** Where a delta-refreshed dataset keeps the newest pruned version's tables for the next delta build to reuse. */
export const spareSchemaName = (schema: string): string => `${schema}__spare`;

/** What a prune does with the spare: keep the newest pruned version as the spare, or drop any spare. */
export interface SpareOption {
  /** The dataset's live schema (the spare is `<schema>__spare`). */
  schema: string;
  keep: boolean;
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
  return withRefreshLock(pool, dataset, async () => {
    // an explicit prune frees what it can: the spare a delta refresh kept goes too
    const { rows } = await pool.query(
      "select schema_name from pgshift.refresh_versions where dataset = $1 and status = 'live'",
      [dataset],
    );
    const schema: string | undefined = rows[0]?.schema_name;
    return pruneVersions(pool, dataset, keep, keepForMs, schema ? { schema, keep: false } : undefined);
  });
}

export interface PreviousVersion {
  version: number;
  schema: string;
  /** How long ago it was retired (ms). */
  retiredMs: number;
}

/** A dataset's previous versions, newest first. */
export async function previousVersions(pool: pg.Pool, dataset: string): Promise<PreviousVersion[]> {
  // versions retired before retired_at was recorded count from when they were built
  const { rows } = await pool.query(
    `select version, schema_name,
            extract(epoch from now() - coalesce(retired_at, built_at, started_at)) * 1000 as retired_ms
       from pgshift.refresh_versions where dataset = $1 and status = 'previous' order by version desc`,
    [dataset],
  );
  return rows.map((r) => ({ version: r.version, schema: r.schema_name, retiredMs: Number(r.retired_ms) }));
}

/** Whether the retention keeps a previous version: among the newest `keep` (index, newest first) or younger than `keepForMs`. */
export function retained(
  version: PreviousVersion,
  index: number,
  keep: number | undefined,
  keepForMs: number | undefined,
): boolean {
  return (keep !== undefined && index < keep) || (keepForMs !== undefined && version.retiredMs < keepForMs);
}

/**
 * The prune itself; the caller holds the dataset's lock (a run prunes after its switch). With
 * `spare.keep`, the newest version to go is renamed to the spare schema (replacing the last spare)
 * instead of dropped: it is no version any more (recorded pruned, never a rollback target), only tables a
 * delta build brings in line with live instead of copying live whole (recycle-version.ts).
 */
export async function pruneVersions(
  pool: pg.Pool,
  dataset: string,
  keep: number | undefined,
  keepForMs?: number,
  spare?: SpareOption,
): Promise<PruneResult> {
  assertKeep(keep, keepForMs);
  const rows = await previousVersions(pool, dataset);
  const pruned: PruneResult["pruned"] = [];
  const kept: number[] = [];
  let spared: PruneResult["spare"];
  if (spare && !spare.keep) await dropSchema(pool, spareSchemaName(spare.schema));
  for (const [i, row] of rows.entries()) {
    if (retained(row, i, keep, keepForMs)) {
      kept.push(row.version);
      continue;
    }
    if (spare?.keep && !spared) {
      const name = spareSchemaName(spare.schema);
      await dropSchema(pool, name);
      await pool.query(`alter schema ${quoteIdent(row.schema)} rename to ${quoteIdent(name)}`);
      spared = { version: row.version, schema: name };
    } else await dropSchema(pool, row.schema);
    await pool.query(
      "update pgshift.refresh_versions set status = 'pruned', schema_name = $3 where dataset = $1 and version = $2",
      [dataset, row.version, spared?.version === row.version ? spared.schema : row.schema],
    );
    await pool.query("delete from pgshift.refresh_row_hashes where dataset = $1 and version = $2", [
      dataset,
      row.version,
    ]);
    pruned.push({ version: row.version, schema: row.schema });
  }
  return { dataset, kept, pruned, ...(spared ? { spare: spared } : {}) };
}

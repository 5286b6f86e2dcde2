import type pg from "pg";
import { UsageError } from "../errors.ts";
import type { ProgressCallback } from "../progress.ts";
import type { ImportPlan } from "../schema/plan.ts";
import { verifyTablesFromPlan } from "./plan-tables.ts";
import { fileFingerprint, SqliteTableReader } from "./sqlite-source.ts";
import { buildResult, describeVerifiedTarget, type VerifyResult } from "./verify-result.ts";
import { verifyTables } from "./verify-tables.ts";

export interface VerifyImportOptions {
  /** The import plan: which source table and column went where, with which type. */
  plan: ImportPlan;
  /** The SQLite file, read again independently of the import. */
  sourcePath: string;
  pool: pg.Pool;
  /** Compare only this fraction of rows (0 < P <= 1), the same rows on both sides; full when absent. */
  sample?: number;
  /** Tables verified at once (default 2). */
  jobs?: number;
  /** Keys listed per kind of difference and table (default 20). */
  maxDiffs?: number;
  onProgress?: ProgressCallback;
}

export function checkSample(sample: number | undefined): void {
  if (sample === undefined) return;
  if (!Number.isFinite(sample) || sample <= 0 || sample > 1)
    throw new UsageError(`--sample must be a fraction greater than 0 and at most 1 (got ${sample})`);
}

/**
 * Verifies an import: per table, counts and per-chunk checksums of canonical rows computed by the
 * server from what it stores, against the same computed here from the original SQLite file.
 *
 *   const result = await verifyImport({ plan, sourcePath: "app.db", pool });
 *   if (!result.identical) console.log(result.tables.filter((t) => t.status !== "identical"));
 */
export async function verifyImport(options: VerifyImportOptions): Promise<VerifyResult> {
  checkSample(options.sample);
  const started = new Date();
  const tables = verifyTablesFromPlan(options.plan);
  const fingerprint = fileFingerprint("sqlite", options.sourcePath);
  fingerprint.catch(() => undefined);
  const target = await describeVerifiedTarget(
    options.pool,
    tables.map((t) => t.schema),
  );
  const results = await verifyTables({
    pool: options.pool,
    tables,
    openSource: (table) => new SqliteTableReader(options.sourcePath, table),
    jobs: options.jobs ?? 2,
    ...(options.sample !== undefined ? { sample: options.sample } : {}),
    ...(options.maxDiffs !== undefined ? { maxDiffs: options.maxDiffs } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  });
  return buildResult({
    started,
    source: { ...(await fingerprint), spec: options.plan.source.spec },
    target,
    sample: options.sample,
    tables: results,
  });
}

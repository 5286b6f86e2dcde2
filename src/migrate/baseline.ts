import type pg from "pg";
import { ensureInternalSchema } from "../pg/internal-schema.ts";
import { inTransaction } from "../pg/pool.ts";
import { MigrationTargetError } from "./errors.ts";
import { migratePart, readHistory, recordApplied, runnerName } from "./history.ts";
import { loadMigrations, versionProblem } from "./migration-file.ts";
import { type LockMode, withMigrationLock } from "./migration-lock.ts";

export interface BaselineOptions {
  pool: pg.Pool;
  dir: string;
  /** Every file up to and including this version is recorded as applied, without running it. */
  version: string;
  dryRun?: boolean;
  lockMode?: LockMode;
  lockWaitMs?: number;
}

export interface BaselineResult {
  version: string;
  dryRun: boolean;
  /** Versions recorded as `baseline` (or that would be, in a dry run). */
  recorded: { version: string; name: string; file: string }[];
  /** Already recorded; left as they were. */
  alreadyApplied: string[];
}

/**
 * Adopts an existing database: marks the migrations that describe what is already there as applied
 * (outcome `baseline`) without running them. Refuses when newer migrations are already recorded.
 */
export async function baselineMigrations(options: BaselineOptions): Promise<BaselineResult> {
  const problem = versionProblem(options.version);
  if (problem) throw new MigrationTargetError(`baseline version "${options.version}" ${problem}`);
  const files = await loadMigrations(options.dir);
  const work = async (client: pg.ClientBase | pg.Pool, writer?: pg.ClientBase): Promise<BaselineResult> => {
    const history = await readHistory(client);
    const newer = history.filter((h) => h.version > options.version);
    if (newer.length)
      throw new MigrationTargetError(
        `cannot baseline at ${options.version}: newer migrations are already applied (${newer.map((h) => h.version).join(", ")})`,
      );
    const applied = new Set(history.map((h) => h.version));
    const wanted = files.filter((f) => f.version <= options.version);
    const recorded = wanted.filter((f) => !applied.has(f.version));
    if (writer) {
      const by = runnerName();
      await inTransaction(writer, async () => {
        for (const file of recorded) await recordApplied(writer, by, file, 0, "baseline");
      });
    }
    return {
      version: options.version,
      dryRun: !writer,
      recorded: recorded.map((f) => ({
        version: f.version,
        name: f.name,
        file: f.file,
      })),
      alreadyApplied: wanted.filter((f) => applied.has(f.version)).map((f) => f.version),
    };
  };
  if (options.dryRun) return work(options.pool);
  await ensureInternalSchema(options.pool, [migratePart]);
  return withMigrationLock(
    options.pool,
    {
      mode: options.lockMode ?? "advisory",
      waitMs: options.lockWaitMs ?? 0,
      owner: runnerName(),
    },
    (lock) => work(lock.client, lock.client),
  );
}

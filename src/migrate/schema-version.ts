import type pg from "pg";
import { SchemaVersionError } from "./errors.ts";
import { readHistory } from "./history.ts";
import { loadMigrations } from "./migration-file.ts";

export interface AssertSchemaVersionOptions {
  /** The oldest schema version the application works with. */
  atLeast?: string;
  /** Alternatively: every migration in this directory must be applied (the app ships its migrations). */
  dir?: string;
}

export interface SchemaVersionInfo {
  current: string | null;
  applied: number;
}

/**
 * For application start-up: fails fast unless the database has the migrations the application
 * needs. With `atLeast`, the newest applied version must be at least that; with `dir`, every file
 * in it must be applied. The error names the missing versions.
 *
 * @example
 *   await assertSchemaVersion(pool, { atLeast: "20240131120000" });
 */
export async function assertSchemaVersion(
  pool: pg.Pool,
  options: AssertSchemaVersionOptions,
): Promise<SchemaVersionInfo> {
  const history = await readHistory(pool);
  const applied = new Set(history.map((h) => h.version));
  const current = history.length ? history[history.length - 1]!.version : null;
  const missing: string[] = [];
  if (options.dir) {
    for (const file of await loadMigrations(options.dir)) {
      const needed = options.atLeast === undefined || file.version <= options.atLeast;
      if (needed && !applied.has(file.version)) missing.push(`${file.version}_${file.name}`);
    }
  }
  if (options.atLeast && (current === null || current < options.atLeast) && !missing.length)
    missing.push(options.atLeast);
  if (missing.length) {
    throw new SchemaVersionError(
      `database schema is at ${current ?? "no version (no migrations applied)"}, the application needs ${options.atLeast ? `at least ${options.atLeast}` : "every shipped migration"}; missing: ${missing.join(", ")}. Run "pgshift migrate up" before starting the application`,
      { current, atLeast: options.atLeast ?? null, missing },
    );
  }
  return { current, applied: history.length };
}

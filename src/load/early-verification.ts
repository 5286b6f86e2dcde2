import { statSync } from "node:fs";
import { availableParallelism } from "node:os";
import type { ImportPlan } from "../schema/plan.ts";
import { THREADS_MIN_SOURCE_BYTES } from "../sources/sqlite/sqlite-rows.ts";
import type { EarlySourceSums } from "../verify/early-source-sums.ts";
import { siblingModule } from "../version.ts";

/**
 * Whether the import computes verification's source side while it loads (see
 * src/verify/early-source-sums.ts): with the default verification, on two cores or more, for a source
 * large enough to pay for a thread (the same threshold as the scan's and verification's threads).
 * `wanted` (ImportSqliteOptions.verifyWhileLoading) decides when given.
 */
export function verifiesWhileLoading(
  options: { verify?: unknown; verifyWhileLoading?: boolean },
  sourcePath: string,
): boolean {
  if (options.verify === false || typeof options.verify === "function") return false;
  if (options.verifyWhileLoading !== undefined) return options.verifyWhileLoading;
  if (availableParallelism() < 2) return false;
  try {
    return statSync(sourcePath).size >= THREADS_MIN_SOURCE_BYTES;
  } catch {
    return false;
  }
}

/** Starts the source side of the verification in a worker thread; undefined when it cannot start. */
export async function startEarlyVerification(
  plan: ImportPlan,
  sourcePath: string,
): Promise<EarlySourceSums | undefined> {
  try {
    // Loaded lazily, as the verification itself (import-sqlite.ts runVerification).
    const module = (await import(siblingModule(import.meta.url, "../verify/index").href)) as {
      startEarlySourceSums: typeof import("../verify/early-source-sums.ts").startEarlySourceSums;
      largestTablesFirst: typeof import("../verify/verify-import.ts").largestTablesFirst;
    };
    return module.startEarlySourceSums({
      plan,
      sourcePath,
      order: module.largestTablesFirst(sourcePath, plan),
    });
  } catch {
    // Verification then computes the source side itself, after the load.
    return undefined;
  }
}

import type { ImportPlan } from "../schema/plan.ts";
import type { ChunkStrategy } from "./chunking.ts";
import { verifyTablesFromPlan } from "./plan-tables.ts";
import type { SourceAggregate } from "./source-sums.ts";
import { SourceWorkerPool } from "./source-worker-pool.ts";
import { SqliteTableReader } from "./sqlite-source.ts";
import type { VerifyTable } from "./types.ts";
import { sameStrategy, verifyStrategy } from "./verify-tables.ts";

/**
 * The source side of an import's verification, computed in a worker thread while the import still
 * loads: it depends only on the SQLite file and the plan, so it need not wait for the rows to arrive.
 * The worker reads the file again with the verifier's own code, as after the load; the server side is
 * still computed afterwards from what PostgreSQL stores. A table's sums are used only when they fit
 * the verification as it runs (same chunking, no quarantined row to leave out, no sample); otherwise,
 * or when the worker fails, that table's source side is computed then, as without them.
 *
 *   const early = startEarlySourceSums({ plan, sourcePath: "app.db" });
 *   // ... load ...
 *   const result = await verifyImport({ plan, sourcePath: "app.db", pool, early });
 *   await early.close();
 */
export interface EarlySourceSums {
  /**
   * The table's sums when computed early for this strategy, or being computed (undefined: compute them
   * now). A table the worker has not reached yet is given up, so that the verification's own workers
   * take it instead of waiting.
   */
  take(sourceTable: string, strategy: ChunkStrategy): Promise<SourceAggregate> | undefined;
  /** Resolves when every table's sums are computed, failed or given up. */
  settled(): Promise<void>;
  /** Stops the worker; sums not yet computed are not used. */
  close(): Promise<void>;
}

interface Planned {
  table: VerifyTable;
  strategy: ChunkStrategy;
  /** Started when the worker reaches the table; resolves with its sums. */
  sums?: Promise<SourceAggregate>;
  /** waiting: the worker has not reached it; given-up: taken before that, the worker skips it. */
  state: "waiting" | "started" | "given-up";
}

export interface EarlySourceSumsOptions {
  plan: ImportPlan;
  sourcePath: string;
  /** Source tables in the order to compute them (default: the plan's order). */
  order?: readonly string[];
  /** Average rows per compared chunk, as the verification will use (default 4096). */
  chunkRows?: number;
}

export function startEarlySourceSums(options: EarlySourceSumsOptions): EarlySourceSums {
  // Smaller heaps than verification's own workers: this one runs while the load holds its memory.
  const pool = new SourceWorkerPool(1, { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 16 });
  const planned = new Map<string, Planned>();
  let closed = false;
  const tables = verifyTablesFromPlan(options.plan);
  const order = options.order ?? tables.map((t) => t.sourceTable);
  for (const name of order) {
    const table = tables.find((t) => t.sourceTable === name);
    if (!table) continue;
    let reader: SqliteTableReader | undefined;
    try {
      reader = new SqliteTableReader(options.sourcePath, table);
      const keyKind =
        table.key.length === 1 ? table.columns.find((c) => c.name === table.key[0])?.kind : undefined;
      const integerKey = keyKind === "integer";
      // The same figures verifyTable reads; it checks that its strategy is this one before using the sums.
      const strategy = verifyStrategy(table, {
        rows: reader.count(),
        integerKey,
        keyRange: integerKey ? reader.integerKeyRange() : undefined,
        chunkRows: options.chunkRows,
      });
      planned.set(name, { table, strategy, state: "waiting" });
    } catch {
      // This table's source side is computed at verification time, as without early sums.
    } finally {
      reader?.close();
    }
  }
  // One worker, one table after the other: the load keeps the other core.
  let chain: Promise<unknown> = Promise.resolve();
  for (const entry of planned.values()) {
    const sums = chain.then(() => {
      if (closed || entry.state === "given-up") throw new Error("early source sums not computed");
      entry.state = "started";
      return pool.run(
        { path: options.sourcePath, table: entry.table, excludeRowids: [], strategy: entry.strategy },
        () => undefined,
      );
    });
    sums.catch(() => undefined);
    entry.sums = sums;
    chain = sums.catch(() => undefined);
  }
  return {
    take(sourceTable, strategy) {
      const entry = planned.get(sourceTable);
      if (!entry?.sums) return undefined;
      if (entry.state === "waiting") entry.state = "given-up";
      if (entry.state === "given-up" || !sameStrategy(entry.strategy, strategy)) return undefined;
      return entry.sums;
    },
    settled: () => chain.then(() => undefined),
    async close() {
      closed = true;
      await pool.close();
    },
  };
}

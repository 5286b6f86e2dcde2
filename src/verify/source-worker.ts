import { parentPort } from "node:worker_threads";
import type { ChunkStrategy } from "./chunking.ts";
import { RowPlacement, sourceChunkSums } from "./source-sums.ts";
import { SqliteTableReader } from "./sqlite-source.ts";
import type { VerifyTable } from "./types.ts";

/**
 * A worker thread computing one SQLite table's source-side chunk checksums at a time, so that the
 * canonicalization and hashing of several tables use several cores while the main thread waits on
 * the server. Started by source-worker-pool.ts.
 */
export interface SourceJob {
  path: string;
  table: VerifyTable;
  /** Quarantined rowids, as decimal strings. */
  excludeRowids: string[];
  strategy: ChunkStrategy;
  sample?: number;
}

export type SourceWorkerMessage =
  | { type: "progress"; done: number }
  | { type: "done"; rows: number; chunks: [string, { rows: number; checksum: string }][] }
  | { type: "error"; message: string };

const port = parentPort;
port?.on("message", (job: SourceJob) => {
  void (async () => {
    let reader: SqliteTableReader | undefined;
    try {
      reader = new SqliteTableReader(job.path, job.table, job.excludeRowids.map(BigInt));
      const placement = new RowPlacement(job.table, job.strategy, job.sample);
      const result = await sourceChunkSums(reader, placement, (done) =>
        port.postMessage({ type: "progress", done } satisfies SourceWorkerMessage),
      );
      port.postMessage({
        type: "done",
        rows: result.rows,
        chunks: [...result.chunks],
      } satisfies SourceWorkerMessage);
    } catch (error) {
      port.postMessage({ type: "error", message: (error as Error).message } satisfies SourceWorkerMessage);
    } finally {
      reader?.close();
    }
  })();
});

import { Worker } from "node:worker_threads";
import { PgshiftError } from "../errors.ts";
import type { SqliteTable } from "../sources/sqlite/sqlite-catalog.ts";
import type { RowRange } from "../sources/sqlite/sqlite-rows.ts";
import type { TableStats } from "../sources/sqlite/sqlite-scan.ts";
import { runningFromSource, siblingModule } from "../version.ts";
import { BadValueError, type ChunkJob, type ChunkOutput } from "./chunk-encoder.ts";
import type { WorkerReply, WorkerRequest } from "./chunk-worker.ts";

type DataSink = (data: Uint8Array, rowsRead: number) => Promise<void>;

interface Running {
  id: number;
  sink: DataSink;
  chain: Promise<void>;
  resolve: (output: ChunkOutput) => void;
  reject: (error: unknown) => void;
  settled: boolean;
}

/**
 * One encoding thread (see chunk-worker.ts), running one chunk at a time. The worker is TypeScript:
 * it registers tsx's loader itself, as bin/pgshift.js does for the main thread.
 */
export class ChunkWorker {
  private readonly worker: Worker;
  private running?: Running;
  private nextId = 1;
  private failure?: Error;
  private scanning?: {
    id: number;
    resolve: (stats: TableStats) => void;
    reject: (error: unknown) => void;
  };

  constructor(sourcePath: string) {
    // From source the worker registers tsx's loader itself, as bin/pgshift.js does; compiled, it needs none.
    const entry = siblingModule(import.meta.url, "./chunk-worker").href;
    const boot = runningFromSource(import.meta.url)
      ? `import(${JSON.stringify(import.meta.resolve("tsx/esm/api"))}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); })`
      : `import(${JSON.stringify(entry)})`;
    this.worker = new Worker(boot, {
      eval: true,
      workerData: { path: sourcePath },
      // A small heap makes V8 collect early: encoding produces short-lived strings quickly, and
      // without a limit each worker's heap grows by hundreds of MB before a full collection.
      resourceLimits: {
        maxOldGenerationSizeMb: 48,
        maxYoungGenerationSizeMb: 16,
      },
    });
    this.worker.on("message", (reply: WorkerReply) => this.onReply(reply));
    this.worker.on("error", (error) => this.fail(error));
    this.worker.on("exit", (code) => {
      if (code !== 0) this.fail(new Error(`encoding worker exited with code ${code}`));
    });
  }

  private fail(error: Error): void {
    this.failure ??= error;
    this.scanning?.reject(error);
    this.scanning = undefined;
    const running = this.running;
    if (running && !running.settled) {
      running.settled = true;
      running.reject(error);
    }
  }

  private onReply(reply: WorkerReply): void {
    const scanning = this.scanning;
    if (scanning && scanning.id === reply.id) {
      this.scanning = undefined;
      if (reply.type === "scanned") scanning.resolve(reply.stats);
      else if (reply.type === "error")
        scanning.reject(
          new PgshiftError(reply.code, reply.message, {
            details: reply.details,
          }),
        );
      return;
    }
    const running = this.running;
    if (!running || running.id !== reply.id || running.settled) return;
    if (reply.type === "data") {
      running.chain = running.chain
        .then(() => running.sink(reply.bytes, reply.rowsRead))
        .then(() =>
          this.worker.postMessage({
            type: "credit",
            id: reply.id,
          } satisfies WorkerRequest),
        );
      running.chain.catch((error) => {
        // The worker now waits for a credit that will not come: it is not reused.
        this.fail(error instanceof Error ? error : new Error(String(error)));
      });
      return;
    }
    running.chain.then(
      () => {
        if (running.settled) return;
        running.settled = true;
        if (reply.type === "done")
          running.resolve({
            rowsRead: reply.rowsRead,
            conversions: reply.conversions,
            quarantined: reply.quarantined,
          });
        else if (reply.type === "error")
          running.reject(
            reply.code === "bad_value"
              ? new BadValueError(reply.message, reply.details)
              : new PgshiftError(reply.code, reply.message, {
                  details: reply.details,
                }),
          );
      },
      () => undefined,
    );
  }

  /** Encodes one chunk in the worker; `sink` receives COPY text in order, one piece at a time. */
  run(job: ChunkJob, sink: DataSink): Promise<ChunkOutput> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise<ChunkOutput>((resolve, reject) => {
      this.running = {
        id,
        sink,
        chain: Promise.resolve(),
        resolve,
        reject,
        settled: false,
      };
      this.worker.postMessage({
        type: "chunk",
        id,
        job,
      } satisfies WorkerRequest);
    });
  }

  /** Scans one table's stored values in the worker, or one rowid range of them (see scanTable). */
  scan(table: SqliteTable, range?: RowRange): Promise<TableStats> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise<TableStats>((resolve, reject) => {
      this.scanning = { id, resolve, reject };
      this.worker.postMessage({
        type: "scan",
        id,
        table,
        ...(range ? { range } : {}),
      } satisfies WorkerRequest);
    });
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

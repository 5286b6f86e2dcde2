import { Worker } from "node:worker_threads";
import { runningFromSource, siblingModule } from "../version.ts";
import type { SourceAggregate } from "./source-sums.ts";
import type { SourceJob, SourceWorkerMessage } from "./source-worker.ts";
import type { ChunkSums } from "./target-side.ts";

/**
 * Worker threads for the source side of verification, `size` at most, reused across tables. From
 * source, a worker registers tsx's loader itself (as bin/pgshift.js does for the main thread).
 */
export class SourceWorkerPool {
  private readonly idle: Worker[] = [];
  private readonly all: Worker[] = [];

  /**
   * `memory`: the worker's heap limits (default: a 48 MB young generation, measured fastest for
   * hashing); early sums beside an import's load take less, to keep the import's peak memory down.
   */
  constructor(
    private readonly size: number,
    private readonly memory: { maxOldGenerationSizeMb: number; maxYoungGenerationSizeMb: number } = {
      maxOldGenerationSizeMb: 96,
      maxYoungGenerationSizeMb: 48,
    },
  ) {}

  private take(): Worker {
    const idle = this.idle.pop();
    if (idle) return idle;
    if (this.all.length >= this.size) throw new Error("no verification worker free");
    const entry = siblingModule(import.meta.url, "./source-worker").href;
    const boot = runningFromSource(import.meta.url)
      ? `import(${JSON.stringify(import.meta.resolve("tsx/esm/api"))}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); })`
      : `import(${JSON.stringify(entry)})`;
    const worker = new Worker(boot, {
      eval: true,
      // Hashing makes many short-lived strings: a young generation of 48 MB collects them in fewer,
      // cheaper scavenges (measured faster than 16 or 4 MB, for ~30 MB more memory).
      resourceLimits: this.memory,
    });
    worker.unref();
    this.all.push(worker);
    return worker;
  }

  /** Computes one table's source checksums in a worker; rejects when the worker fails. */
  run(job: SourceJob, onProgress: (done: number) => void): Promise<SourceAggregate> {
    let worker: Worker;
    try {
      worker = this.take();
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise<SourceAggregate>((resolve, reject) => {
      const cleanup = () => {
        worker.off("message", onMessage);
        worker.off("error", onError);
        worker.off("exit", onExit);
      };
      const onMessage = (message: SourceWorkerMessage) => {
        if (message.type === "progress") return onProgress(message.done);
        cleanup();
        this.idle.push(worker);
        if (message.type === "done")
          resolve({ rows: message.rows, chunks: new Map(message.chunks) as ChunkSums });
        else reject(new Error(message.message));
      };
      const onError = (error: Error) => {
        cleanup();
        this.forget(worker);
        reject(error);
      };
      const onExit = (code: number) => {
        cleanup();
        this.forget(worker);
        reject(new Error(`verification worker exited with code ${code}`));
      };
      worker.on("message", onMessage);
      worker.on("error", onError);
      worker.on("exit", onExit);
      worker.postMessage(job);
    });
  }

  private forget(worker: Worker): void {
    for (const list of [this.all, this.idle]) {
      const i = list.indexOf(worker);
      if (i >= 0) list.splice(i, 1);
    }
  }

  async close(): Promise<void> {
    const workers = this.all.splice(0);
    this.idle.length = 0;
    await Promise.all(workers.map((w) => w.terminate().catch(() => 0)));
  }
}

import { Worker } from "node:worker_threads";
import { percentile, round } from "./measure.ts";

/** What one worker thread (key-lookup-worker.ts) is set up with. */
export interface KeyLookupJob {
  url: string;
  schema: string;
  table: string;
  keyColumn: string;
  /** Path of the DocumentStore module to look keys up through; undefined: `sql` as a prepared statement. */
  storeModule?: string;
  sql: string;
  /**
   * Look keys up through pgshift's mirror reader (createFallbackReader over a DocumentStore, the JSON cache
   * behind it) instead of a bare store or statement; every answer must come from PostgreSQL.
   */
  mirror?: { endpoint: string; cacheDir: string };
  /** Keys are kNumber(0 .. docs - 1) (or, with keyFormat "openfda-510k", K000000 .. as the mirror example's generator writes them), drawn at random. */
  docs: number;
  keyFormat?: "bench" | "openfda-510k";
  seed: number;
  /** Concurrent clients in this thread, one connection each. */
  clients: number;
  /** Untimed lookups per client before "ready" (connection opened, statement prepared, caches warm). */
  warmup: number;
}

export type KeyLookupCommand = { type: "run"; durationMs: number; ratePerClient?: number } | { type: "stop" };

export type KeyLookupWorkerMessage =
  | { type: "ready" }
  | { type: "done"; latencies: Float64Array; startLags: Float64Array; elapsedMs: number }
  | { type: "error"; message: string };

/** One timed run of a group of clients. */
export interface LatencyRun {
  /** Milliseconds per lookup, every client's. */
  latencies: number[];
  /** Lookups per second, all clients together. */
  qps: number;
  /** Open loop: how late each lookup was sent after it was due. */
  startLags?: number[];
}

export interface LatencySummary {
  queries: number;
  p50_ms: number;
  p99_ms: number;
  /** Mean over the runs (all of equal duration). */
  qps: number;
  /** Each run's own p99 and rate, in order: how much the shared machine moved them. */
  p99_ms_runs: number[];
  qps_runs: number[];
  /** Open loop: p99 of how late a lookup was sent after it was due (the previous one was not back yet, or the thread woke late). */
  start_lag_p99_ms?: number;
}

/** p50 and p99 over every lookup of every run (not a percentile of per-run percentiles). */
export function summarizeRuns(runs: readonly LatencyRun[]): LatencySummary {
  const latencies = runs.flatMap((r) => r.latencies);
  const lags = runs.flatMap((r) => r.startLags ?? []);
  return {
    queries: latencies.length,
    p50_ms: round(percentile(latencies, 50), 3),
    p99_ms: round(percentile(latencies, 99), 3),
    qps: Math.round(runs.reduce((sum, r) => sum + r.qps, 0) / runs.length),
    p99_ms_runs: runs.map((r) => round(percentile(r.latencies, 99), 2)),
    qps_runs: runs.map((r) => Math.round(r.qps)),
    ...(runs.some((r) => r.startLags) ? { start_lag_p99_ms: round(percentile(lags, 99), 3) } : {}),
  };
}

/**
 * The worker threads load TypeScript through tsx, as the bench itself does: an eval'd CommonJS bootstrap
 * registers tsx's ESM hooks in the new thread, then imports the worker module.
 */
const BOOTSTRAP = `
const { parentPort, workerData } = require("node:worker_threads");
import(workerData.tsx)
  .then((tsx) => { tsx.register(); return import(workerData.entry); })
  .catch((error) => parentPort.postMessage({ type: "error", message: String((error && error.stack) || error) }));
`;

class WorkerChannel {
  readonly worker: Worker;
  /** Resolves with the exit code once the thread has ended. */
  readonly exited: Promise<number>;
  private readonly queue: KeyLookupWorkerMessage[] = [];
  private waiting: ((message: KeyLookupWorkerMessage) => void) | undefined;

  constructor(job: KeyLookupJob) {
    this.worker = new Worker(BOOTSTRAP, {
      eval: true,
      workerData: {
        ...job,
        tsx: import.meta.resolve("tsx/esm/api"),
        entry: new URL("./key-lookup-worker.ts", import.meta.url).href,
      },
    });
    this.worker.on("message", (message: KeyLookupWorkerMessage) => this.deliver(message));
    this.worker.on("error", (error) =>
      this.deliver({ type: "error", message: error.stack ?? error.message }),
    );
    this.exited = new Promise((resolve) =>
      this.worker.on("exit", (code) => {
        if (code !== 0) this.deliver({ type: "error", message: `worker thread exited with code ${code}` });
        resolve(code);
      }),
    );
  }

  private deliver(message: KeyLookupWorkerMessage): void {
    const waiting = this.waiting;
    this.waiting = undefined;
    if (waiting) waiting(message);
    else this.queue.push(message);
  }

  async expect<T extends "ready" | "done">(type: T): Promise<Extract<KeyLookupWorkerMessage, { type: T }>> {
    const message =
      this.queue.shift() ??
      (await new Promise<KeyLookupWorkerMessage>((resolve) => {
        this.waiting = resolve;
      }));
    if (message.type === "error") throw new Error(`key lookup client thread failed: ${message.message}`);
    if (message.type !== type)
      throw new Error(`key lookup client thread sent ${message.type}, expected ${type}`);
    return message as Extract<KeyLookupWorkerMessage, { type: T }>;
  }

  send(command: KeyLookupCommand): void {
    this.worker.postMessage(command);
  }
}

/**
 * Key lookup clients spread over worker threads, each thread with its own event loop, its own
 * connections (one per client) and its own DocumentStore: what several application processes would
 * do, without every client queueing behind the others' callbacks on the bench's event loop. All
 * clients connect and warm up once; each run() starts them together and merges their latencies.
 *
 *   const group = await KeyLookupClients.start({ ...job, clients: 20, threads: 20 });
 *   const closed = await group.run({ durationMs: 3000 });
 *   const open = await group.run({ durationMs: 3000, ratePerClient: 100 });
 *   await group.close();
 */
export class KeyLookupClients {
  private constructor(
    private readonly channels: WorkerChannel[],
    readonly clients: number,
    readonly threads: number,
  ) {}

  static async start(
    options: Omit<KeyLookupJob, "clients"> & { clients: number; threads: number },
  ): Promise<KeyLookupClients> {
    const { clients, threads, seed, ...job } = options;
    if (clients % threads !== 0)
      throw new Error(`${clients} clients do not split evenly over ${threads} threads`);
    const channels = Array.from(
      { length: threads },
      (_, i) => new WorkerChannel({ ...job, seed: seed + i, clients: clients / threads }),
    );
    const group = new KeyLookupClients(channels, clients, threads);
    try {
      for (const channel of channels) await channel.expect("ready");
    } catch (error) {
      await group.close();
      throw error;
    }
    return group;
  }

  /** Closed loop for `durationMs`, or open loop with `ratePerClient` lookups per second per client. */
  async run(options: { durationMs: number; ratePerClient?: number }): Promise<LatencyRun> {
    const open = options.ratePerClient !== undefined;
    for (const channel of this.channels) channel.send({ type: "run", ...options });
    const done = [];
    for (const channel of this.channels) done.push(await channel.expect("done"));
    return {
      latencies: done.flatMap((d) => Array.from(d.latencies)),
      qps: done.reduce((sum, d) => sum + d.latencies.length / (d.elapsedMs / 1000), 0),
      ...(open ? { startLags: done.flatMap((d) => Array.from(d.startLags)) } : {}),
    };
  }

  /** Stops every thread (each closes its connections first). */
  async close(): Promise<void> {
    await Promise.all(
      this.channels.map(async (channel) => {
        channel.send({ type: "stop" });
        const timeout = setTimeout(() => void channel.worker.terminate(), 5000);
        await channel.exited;
        clearTimeout(timeout);
      }),
    );
  }
}

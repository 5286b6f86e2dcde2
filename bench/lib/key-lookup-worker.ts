/**
 * Benchmark clients in their own worker thread: its own event loop, its own connections, its own
 * DocumentStore, as one application process of several would have. Started by KeyLookupClients
 * (key-lookup-clients.ts); not imported by anything else.
 *
 * Protocol: the worker connects every client and warms up, posts "ready", then runs each "run" message
 * it gets (posting "done" with its latencies) until "stop".
 */
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { parentPort, workerData } from "node:worker_threads";
import pg from "pg";
import { kNumber } from "../generate-documents.ts";
import type { KeyLookupCommand, KeyLookupJob, KeyLookupWorkerMessage } from "./key-lookup-clients.ts";
import { Random } from "./random.ts";

type Lookup = (key: string) => Promise<unknown>;

async function lookupFunction(pool: pg.Pool, job: KeyLookupJob): Promise<Lookup> {
  if (job.storeModule) {
    const { DocumentStore } = (await import(pathToFileURL(job.storeModule).href)) as {
      DocumentStore: new (
        pool: pg.Pool,
        options: { schema: string; table: string; keyColumns: string[] },
      ) => { get(key: string): Promise<unknown> };
    };
    const store = new DocumentStore(pool, {
      schema: job.schema,
      table: job.table,
      keyColumns: [job.keyColumn],
    });
    return (key) => store.get(key);
  }
  const text = job.sql;
  return async (key) => (await pool.query({ name: "bench_key_lookup", text, values: [key] })).rows[0];
}

/** Blocks this worker's thread until `until` (a performance.now() time) without spinning. */
const sleeper = new Int32Array(new SharedArrayBuffer(4));
function sleepUntil(until: number): void {
  const wait = until - performance.now();
  if (wait > 0) Atomics.wait(sleeper, 0, 0, wait);
}

async function run(
  lookup: Lookup,
  nextKey: () => string,
  random: Random,
  clients: number,
  command: Extract<KeyLookupCommand, { type: "run" }>,
): Promise<Extract<KeyLookupWorkerMessage, { type: "done" }>> {
  const latencies: number[] = [];
  const lags: number[] = [];
  const started = performance.now();
  const deadline = started + command.durationMs;
  if (command.ratePerClient === undefined) {
    // Closed loop: each client sends its next lookup as soon as its previous one returned.
    await Promise.all(
      Array.from({ length: clients }, async () => {
        while (performance.now() < deadline) {
          const t0 = performance.now();
          await lookup(nextKey());
          latencies.push(performance.now() - t0);
        }
      }),
    );
  } else {
    // Open loop, one client per thread: lookups due at fixed intervals from a random phase. Latency
    // counts from the moment a lookup was due, so a late wake-up or a wait for the previous lookup to
    // return is charged to it. Sleeping blocks the thread: nothing else is in flight on it.
    const interval = 1000 / command.ratePerClient;
    for (let due = started + random.next() * interval; due < deadline; due += interval) {
      sleepUntil(due);
      lags.push(performance.now() - due);
      await lookup(nextKey());
      latencies.push(performance.now() - due);
    }
  }
  return {
    type: "done",
    latencies: Float64Array.from(latencies),
    startLags: Float64Array.from(lags),
    elapsedMs: performance.now() - started,
  };
}

async function main(): Promise<void> {
  const job = workerData as KeyLookupJob;
  const port = parentPort!;
  const pool = new pg.Pool({ connectionString: job.url, max: job.clients });
  try {
    const lookup = await lookupFunction(pool, job);
    const random = new Random(job.seed);
    const nextKey = () => kNumber(random.int(0, job.docs - 1));
    // Every connection opened and its statement prepared before any clock starts.
    await Promise.all(
      Array.from({ length: job.clients }, async () => {
        for (let i = 0; i < job.warmup; i++) await lookup(nextKey());
      }),
    );
    port.postMessage({ type: "ready" } satisfies KeyLookupWorkerMessage);
    for (;;) {
      const command = await new Promise<KeyLookupCommand>((resolve) => port.once("message", resolve));
      if (command.type === "stop") break;
      const done = await run(lookup, nextKey, random, job.clients, command);
      port.postMessage(done);
    }
  } finally {
    await pool.end();
  }
}

main().catch((error: unknown) => {
  parentPort!.postMessage({
    type: "error",
    message: error instanceof Error ? (error.stack ?? error.message) : String(error),
  } satisfies KeyLookupWorkerMessage);
});

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
  if (job.mirror) {
    const { DocumentStore } = await import("../../src/documents/document-store.ts");
    const { createFallbackReader, findEndpoint } = await import("../../src/mirror/index.ts");
    const endpoint = findEndpoint(job.mirror.endpoint);
    const store = new DocumentStore(pool, {
      schema: job.schema,
      table: job.table,
      keyColumns: endpoint.key.map((k) => k.slice(1)),
    });
    const reader = createFallbackReader({ endpoint, store, pool, cacheDir: job.mirror.cacheDir });
    return async (key) => {
      const answer = await reader.get(key);
      if (answer.tier !== "postgres" || answer.doc === undefined)
        throw new Error(`${key} was served by ${answer.tier} (${answer.fellThrough.join("; ")})`);
      return answer.doc;
    };
  }
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

/** Resolves at `due` (a performance.now() time), never before: a timer, then the last fraction of a millisecond in setImmediate turns. */
async function at(due: number): Promise<void> {
  const wait = due - performance.now();
  if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait - 1));
  while (performance.now() < due) await new Promise((resolve) => setImmediate(resolve));
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
    // Open loop: each client's lookups are due at fixed intervals from a random phase. Latency counts
    // from the moment a lookup was due, so a late timer, a busy event loop or a wait for the client's
    // previous lookup to return is charged to it.
    const interval = 1000 / command.ratePerClient;
    await Promise.all(
      Array.from({ length: clients }, async () => {
        for (let due = started + random.next() * interval; due < deadline; due += interval) {
          await at(due);
          const lag = performance.now() - due;
          await lookup(nextKey());
          // Pushed together, so that lags[i] and latencies[i] are the same lookup's (clients overlap).
          lags.push(lag);
          latencies.push(performance.now() - due);
        }
      }),
    );
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
    const nextKey =
      job.keyFormat === "openfda-510k"
        ? () => `K${String(random.int(0, job.docs - 1)).padStart(6, "0")}`
        : () => kNumber(random.int(0, job.docs - 1));
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

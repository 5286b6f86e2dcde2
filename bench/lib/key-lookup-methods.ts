import os from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { quoteIdent, quoteQualified } from "../../src/pg/quote.ts";
import { kNumber } from "../generate-documents.ts";
import {
  KeyLookupClients,
  type LatencyRun,
  type LatencySummary,
  summarizeRuns,
} from "./key-lookup-clients.ts";
import { pgbenchBinary, runPgbench } from "./pgbench.ts";
import { Random } from "./random.ts";

/** Each open-loop client's rate: 20 clients offer 2,000 lookups/s in all. */
export const OPEN_LOOP_RATE_PER_CLIENT = 100;
export const CONCURRENT_CLIENTS = 20;

export const KEY_LOOKUP_METHODS = [
  "in_process",
  "threads",
  "threads_2x10",
  "pgbench",
  "threads_open_loop",
  "pgbench_open_loop",
] as const;
export type KeyLookupMethod = (typeof KEY_LOOKUP_METHODS)[number];

export interface KeyLookupMethodResult extends Partial<LatencySummary> {
  /** Exactly how the 20 clients were driven. */
  method: string;
  /** What ran each lookup. */
  through: string;
  clients: number;
  connections: number;
  /** Open loop: lookups per second offered, all clients together; null: closed loop. */
  offered_qps: number | null;
  status: "ok" | "not available" | "failed";
  error?: string;
  /** pgbench: the command line, connection settings left out. */
  command?: string;
}

export interface KeyLookupTarget {
  url: string;
  schema: string;
  table: string;
  keyColumn: string;
}

export interface CompareOptions {
  target: KeyLookupTarget;
  docs: number;
  /** The bench's own lookup (DocumentStore.get on its pool of 20), for the in-process method. */
  inProcessLookup: (key: string) => Promise<unknown>;
  /** DocumentStore module for the worker threads; undefined: the same SELECT as a prepared statement. */
  storeModule?: string;
  rounds: number;
  durationMs: number;
  workDir: string;
  log(message: string): void;
}

/** The SELECT DocumentStore.get runs, as SQL text with $1 for the key. */
export function keyLookupSql(target: KeyLookupTarget): string {
  return `select "doc" as d from ${quoteQualified(target.schema, target.table)} where ${quoteIdent(target.keyColumn)} = $1`;
}

/**
 * The same SELECT for pgbench: pgbench variables are numbers, so the key is built in SQL from a random
 * index exactly as kNumber() builds it (checked here), and bound as a parameter of the prepared statement.
 */
function pgbenchScript(target: KeyLookupTarget, docs: number): string | undefined {
  const sameKeys = [0, docs - 1].every((i) => kNumber(i) === `K${100_000 + i}`);
  if (!sameKeys) return undefined;
  return `\\set n random(0, ${docs - 1})\n${keyLookupSql(target).replace("$1", "'K' || (100000 + :n)")};\n`;
}

/** Closed loop on the bench's own event loop: `clients` async loops sharing one pg Pool. */
async function inProcessRun(
  lookup: (key: string) => Promise<unknown>,
  clients: number,
  durationMs: number,
  random: Random,
  docs: number,
): Promise<LatencyRun> {
  const latencies: number[] = [];
  const started = performance.now();
  const deadline = started + durationMs;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < deadline) {
        const key = kNumber(random.int(0, docs - 1));
        const t0 = performance.now();
        await lookup(key);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  return { latencies, qps: latencies.length / ((performance.now() - started) / 1000) };
}

/**
 * Key lookups with 20 concurrent clients, driven six ways, in interleaved rounds so that every way sees
 * the same moments of a shared machine; p50 and p99 are over every lookup of every round:
 * - in_process: 20 async loops on the bench's one event loop, a pg Pool of 20 (what the main table's
 *   20-client column measures, here timed for a fixed duration);
 * - threads: 20 worker threads, one client and one connection each, closed loop: 20 application processes;
 * - threads_2x10: 2 worker threads of 10 clients, closed loop: two application processes, shaped as
 *   pgbench -j 2 -c 20 drives its clients;
 * - pgbench: `pgbench -M prepared -c 20 -j 2`, closed loop, the same SELECT: the server's capability
 *   with a client that costs almost nothing;
 * - threads_open_loop / pgbench_open_loop: the 2 × 10 clients and pgbench at a fixed offered rate
 *   (20 × 100 lookups/s), latency counted from when each lookup was due: how a latency objective is
 *   normally stated. The open loop does not use 20 threads of one client: a thread that sleeps between
 *   lookups is woken late on a busy machine, and that wake-up, not the lookup, would be measured.
 */
export async function compareKeyLookupClients(
  options: CompareOptions,
): Promise<Record<KeyLookupMethod, KeyLookupMethodResult>> {
  const { target, docs, rounds, durationMs } = options;
  const clients = CONCURRENT_CLIENTS;
  const through = options.storeModule
    ? "DocumentStore.get"
    : "the same SELECT as a prepared statement (DocumentStore not in this build)";
  const openRate = OPEN_LOOP_RATE_PER_CLIENT * clients;
  const results: Record<KeyLookupMethod, KeyLookupMethodResult> = {
    in_process: {
      method: `${clients} clients on the bench's one event loop, pg Pool of ${clients}, closed loop`,
      through,
      clients,
      connections: clients,
      offered_qps: null,
      status: "ok",
    },
    threads: {
      method: `${clients} worker threads, 1 client and 1 connection each, closed loop`,
      through,
      clients,
      connections: clients,
      offered_qps: null,
      status: "ok",
    },
    threads_2x10: {
      method: `2 worker threads × ${clients / 2} clients, 1 connection per client, closed loop`,
      through,
      clients,
      connections: clients,
      offered_qps: null,
      status: "ok",
    },
    pgbench: {
      method: `pgbench -M prepared -c ${clients} -j 2, closed loop`,
      through: "the same SELECT in pgbench (server capability)",
      clients,
      connections: clients,
      offered_qps: null,
      status: "ok",
    },
    threads_open_loop: {
      method: `2 worker threads × ${clients / 2} clients, 1 connection per client, open loop at ${OPEN_LOOP_RATE_PER_CLIENT}/s per client`,
      through,
      clients,
      connections: clients,
      offered_qps: openRate,
      status: "ok",
    },
    pgbench_open_loop: {
      method: `pgbench -M prepared -c ${clients} -j 2 -R ${openRate} (Poisson arrivals), open loop`,
      through: "the same SELECT in pgbench (server capability)",
      clients,
      connections: clients,
      offered_qps: openRate,
      status: "ok",
    },
  };
  const runs: Record<KeyLookupMethod, LatencyRun[]> = {
    in_process: [],
    threads: [],
    threads_2x10: [],
    pgbench: [],
    threads_open_loop: [],
    pgbench_open_loop: [],
  };
  const fail = (method: KeyLookupMethod, status: "not available" | "failed", error: string) => {
    results[method].status = status;
    results[method].error = error;
  };

  const binary = pgbenchBinary();
  const script = pgbenchScript(target, docs);
  if (!binary) {
    const why = "pgbench not found next to the server binaries (Debian ships it in postgresql-15)";
    fail("pgbench", "not available", why);
    fail("pgbench_open_loop", "not available", why);
  } else if (!script) {
    fail("pgbench", "not available", "the document keys are not the bench generator's K<100000 + i>");
    fail(
      "pgbench_open_loop",
      "not available",
      "the document keys are not the bench generator's K<100000 + i>",
    );
  }
  const startThreads = async (
    threadCount: number,
    methods: KeyLookupMethod[],
  ): Promise<KeyLookupClients | undefined> => {
    try {
      return await KeyLookupClients.start({
        ...target,
        ...(options.storeModule ? { storeModule: options.storeModule } : {}),
        sql: keyLookupSql(target),
        docs,
        seed: 1000 * threadCount,
        clients,
        threads: threadCount,
        warmup: 50,
      });
    } catch (error) {
      for (const method of methods) fail(method, "failed", (error as Error).message.slice(0, 500));
      return undefined;
    }
  };
  const threads = await startThreads(clients, ["threads"]);
  const twoThreads = await startThreads(2, ["threads_2x10", "threads_open_loop"]);

  const random = new Random(17);
  const pgbench = async (rate?: number): Promise<LatencyRun> => {
    const run = await runPgbench(binary!, {
      url: target.url,
      script: script!,
      clients,
      threads: 2,
      durationS: Math.max(1, Math.round(durationMs / 1000)),
      ...(rate === undefined ? {} : { rate }),
      workDir: join(options.workDir, "pgbench"),
    });
    results[rate === undefined ? "pgbench" : "pgbench_open_loop"].command = run.command;
    if (run.failed > 0) throw new Error(`pgbench counted ${run.failed} failed transactions`);
    return run;
  };
  const measure: Record<KeyLookupMethod, () => Promise<LatencyRun>> = {
    in_process: () => inProcessRun(options.inProcessLookup, clients, durationMs, random, docs),
    threads: () => threads!.run({ durationMs }),
    threads_2x10: () => twoThreads!.run({ durationMs }),
    pgbench: () => pgbench(),
    threads_open_loop: () => twoThreads!.run({ durationMs, ratePerClient: OPEN_LOOP_RATE_PER_CLIENT }),
    pgbench_open_loop: () => pgbench(openRate),
  };
  try {
    for (let round = 1; round <= rounds; round++) {
      for (const method of KEY_LOOKUP_METHODS) {
        if (results[method].status !== "ok") continue;
        options.log(
          `key lookup, 20 clients, round ${round}/${rounds}: ${method} (load ${os.loadavg()[0]!.toFixed(1)})`,
        );
        try {
          runs[method].push(await measure[method]());
        } catch (error) {
          fail(method, "failed", (error as Error).message.slice(0, 500));
        }
      }
    }
  } finally {
    await threads?.close();
    await twoThreads?.close();
  }
  for (const method of KEY_LOOKUP_METHODS) {
    if (results[method].status === "ok") Object.assign(results[method], summarizeRuns(runs[method]));
  }
  return results;
}

/**
 * Connection acquisition and /readyz latency with 20 concurrent clients (issue 19's targets: acquisition
 * p99 < 10 ms, /readyz p99 < 50 ms), through createPool and through the managed PgBouncer, side by side:
 *   node bin/run-ts.js bench/ops-measure.ts [--out DIR] [--rounds N]
 * A private managed instance with PgBouncer is started for the run and removed afterwards.
 * - warm: each of 20 workers checks out a connection, runs `select 1`, releases, N times, from a pool
 *   whose 20 connections are already open (acquisition = the wait for a free connection);
 *   /readyz of a health server with its own pool (as `pgshift serve` runs) is polled meanwhile;
 * - cold: 20 new connections at once (also through a second PgBouncer with auth_type trust: no SCRAM) (pg.Client.connect), directly and through PgBouncer, with
 *   PgBouncer's server connections closed first ("cold") or already open ("warm server side"), and one
 *   connection alone, to see what a new connection's time is made of.
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import pg from "pg";
import {
  destroyLocalInstance,
  findPgBinaries,
  localInstanceUrl,
  localPgbouncerUrl,
  startLocalInstance,
} from "../src/local/index.ts";
import { createPool } from "../src/pg/pool.ts";
import { startHealthServer } from "../src/serve/index.ts";
import { startTestBouncer } from "../test/helpers/pgbouncer.ts";

const { values } = parseArgs({
  options: { out: { type: "string" }, rounds: { type: "string", default: "200" } },
});
const rounds = Number(values.rounds);
const CLIENTS = 20;
const instance = {
  name: `ops-measure-${process.pid}`,
  baseDir: join(tmpdir(), "pgshift-ops-measure"),
  ephemeral: true,
  binaries: findPgBinaries(),
};

function quantiles(samples: number[]): { n: number; p50: number; p95: number; p99: number; max: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? 0;
  const round = (v: number) => Math.round(v * 100) / 100;
  return {
    n: sorted.length,
    p50: round(at(0.5)),
    p95: round(at(0.95)),
    p99: round(at(0.99)),
    max: round(at(1)),
  };
}

async function warmLoad(url: string) {
  const pool = createPool({ url, max: CLIENTS, applicationName: "ops-measure" });
  const sidecar = createPool({ url, max: 2, applicationName: "ops-measure serve", connectTimeoutMs: 1_000 });
  const health = await startHealthServer({ pool: sidecar, readyTimeoutMs: 1_000 });
  try {
    // open all 20 connections first: the measurement is the checkout of an open one
    const warm = await Promise.all(Array.from({ length: CLIENTS }, () => pool.connect()));
    for (const c of warm) c.release();
    await fetch(`${health.url}/readyz`);
    const acquisitions: number[] = [];
    const readyz: number[] = [];
    let running = true;
    const poller = (async () => {
      while (running) {
        const started = performance.now();
        const response = await fetch(`${health.url}/readyz`);
        await response.text();
        if (response.status !== 200) throw new Error(`/readyz ${response.status} under load`);
        readyz.push(performance.now() - started);
      }
    })();
    const startedAt = performance.now();
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        for (let i = 0; i < rounds; i++) {
          const started = performance.now();
          const client = await pool.connect();
          acquisitions.push(performance.now() - started);
          try {
            await client.query("select 1");
          } finally {
            client.release();
          }
        }
      }),
    );
    const seconds = (performance.now() - startedAt) / 1000;
    running = false;
    await poller;
    return {
      acquisitionMs: quantiles(acquisitions),
      readyzMs: quantiles(readyz),
      queriesPerSecond: Math.round((CLIENTS * rounds) / seconds),
    };
  } finally {
    await health.close();
    await sidecar.end();
    await pool.end();
  }
}

async function connectAll(url: string, count: number): Promise<{ times: number[]; clients: pg.Client[] }> {
  const clients = Array.from({ length: count }, () => new pg.Client({ connectionString: url }));
  const times = await Promise.all(
    clients.map(async (client) => {
      const started = performance.now();
      await client.connect();
      await client.query("select 1");
      return performance.now() - started;
    }),
  );
  return { times, clients };
}

async function newConnections(url: string, count: number) {
  const { times, clients } = await connectAll(url, count);
  await Promise.all(clients.map((c) => c.end()));
  return quantiles(times);
}

/** Closes PgBouncer's server connections (RECONNECT is not available to non-admins): terminate them. */
async function dropServerConnections(adminUrl: string): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(
    "select pg_terminate_backend(pid) from pg_stat_activity where backend_type = 'client backend' and pid <> pg_backend_pid()",
  );
  await admin.end();
  await new Promise((resolve) => setTimeout(resolve, 300));
}

async function oneAlone(url: string, times = 10) {
  const samples: number[] = [];
  for (let i = 0; i < times; i++)
    samples.push(
      await connectAll(url, 1).then(async (r) => {
        await r.clients[0]!.end();
        return r.times[0]!;
      }),
    );
  return quantiles(samples);
}

await startLocalInstance({ ...instance, pgbouncer: true });
try {
  const direct = localInstanceUrl(instance);
  const bouncer = localPgbouncerUrl(instance);
  const load = loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");
  const result: Record<string, unknown> = { clients: CLIENTS, rounds, loadBefore: load };
  result.warmPool = await warmLoad(direct);
  result.warmPgbouncer = await warmLoad(bouncer);
  result.oneNewDirect = await oneAlone(direct);
  await dropServerConnections(direct);
  result.oneNewPgbouncerColdServer = await (async () => {
    const samples: number[] = [];
    for (let i = 0; i < 10; i++) {
      await dropServerConnections(direct);
      samples.push(
        ...(await connectAll(bouncer, 1).then(async (r) => {
          await r.clients[0]!.end();
          return r.times;
        })),
      );
    }
    return quantiles(samples);
  })();
  result.oneNewPgbouncerWarmServer = await oneAlone(bouncer);
  result.twentyNewDirect = await newConnections(direct, CLIENTS);
  await dropServerConnections(direct);
  result.twentyNewPgbouncerColdServer = await newConnections(bouncer, CLIENTS);
  // PgBouncer keeps the 20 server connections it just opened: now only client logins are new
  result.twentyNewPgbouncerWarmServer = await newConnections(bouncer, CLIENTS);
  // a role looked up with auth_query (its SCRAM verifier from pg_shadow): PgBouncer checks the client's
  // proof without PBKDF2; the superuser above logs in with the plaintext password of the auth file, for
  // which PgBouncer computes PBKDF2 (4096 iterations) itself, one login after the other
  const admin = new pg.Client({ connectionString: direct });
  await admin.connect();
  await admin.query("create role ops_measure login password 'ops-measure-only-here'");
  await admin.end();
  const roleUrl = new URL(bouncer);
  roleUrl.username = "ops_measure";
  roleUrl.password = "ops-measure-only-here";
  await dropServerConnections(direct);
  result.twentyNewPgbouncerAuthQueryColdServer = await newConnections(roleUrl.toString(), CLIENTS);
  result.twentyNewPgbouncerAuthQueryWarmServer = await newConnections(roleUrl.toString(), CLIENTS);
  // the same, through a PgBouncer that trusts loopback clients (no SCRAM, no auth_query): what auth costs
  const trusting = await startTestBouncer({ serverUrl: direct });
  try {
    const trustUrl = trusting.url(new URL(direct).pathname.slice(1) || "postgres");
    await dropServerConnections(direct);
    result.twentyNewPgbouncerTrustColdServer = await newConnections(trustUrl, CLIENTS);
    result.twentyNewPgbouncerTrustWarmServer = await newConnections(trustUrl, CLIENTS);
  } finally {
    await trusting.stop();
  }
  result.loadAfter = loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");
  const text = JSON.stringify(result, null, 2);
  process.stdout.write(`${text}\n`);
  if (values.out) {
    mkdirSync(values.out, { recursive: true });
    writeFileSync(join(values.out, "ops-measure.json"), `${text}\n`);
  }
} finally {
  await destroyLocalInstance(instance).catch(() => undefined);
  rmSync(instance.baseDir, { recursive: true, force: true });
}

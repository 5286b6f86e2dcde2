// The whole mirror flow on a private PostgreSQL and the fake openFDA API:
// pull -> import + verify + switch (refresh) -> fingerprint check -> reads with fallback, PostgreSQL stopped
// -> a record removed from the cache comes from the API. Prints what it measured on the way.
import { readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type pg from "pg";
import { DocumentStore } from "../../src/documents/document-store.ts";
import { createApiClient } from "../../src/mirror/api-client.ts";
import { findEndpoint, type MirrorEndpoint } from "../../src/mirror/endpoints.ts";
import { createFallbackReader, type FallbackReader } from "../../src/mirror/fallback-reader.ts";
import { mirrorStatus, recordFreshness } from "../../src/mirror/mirror-schema.ts";
import { pullEndpoint } from "../../src/mirror/pull-endpoint.ts";
import { refreshMirror } from "../../src/mirror/refresh-mirror.ts";
import { verifyMirror } from "../../src/mirror/verify-mirror.ts";
import { endpoints } from "./endpoints.ts";
import { startFakeApi } from "./fake-api.ts";
import { generateRecords } from "./generate-records.ts";

export interface FlowOptions {
  pool: pg.Pool;
  cacheDir: string;
  /** Records the fake API serves per endpoint. */
  records: number;
  /** Stops the flow's PostgreSQL (the flow's own instance, never a shared one). */
  stopPostgres: () => Promise<void>;
  log: (line: string) => void;
}

/** Endpoints put live in PostgreSQL: pma stays out while the document import refuses an empty key part. */
export const LIVE_ENDPOINTS = endpoints.filter((e) => e.name !== "pma");
const SCHEMA = "openfda";

const storeOf = (pool: pg.Pool, endpoint: MirrorEndpoint) =>
  new DocumentStore(pool, {
    schema: SCHEMA,
    table: endpoint.name,
    keyColumns: endpoint.key.map((k) => k.slice(1)),
  });

function percentile(samples: number[], q: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? 0;
}

/** `clients` concurrent loops of key lookups; per-call latencies in ms. */
async function lookups(
  reader: FallbackReader,
  keys: string[],
  clients: number,
  perClient: number,
): Promise<number[]> {
  const samples: number[] = [];
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      for (let i = 0; i < perClient; i++) {
        const key = keys[(c * 7919 + i * 104_729) % keys.length]!;
        const started = performance.now();
        const answer = await reader.get(key);
        samples.push(performance.now() - started);
        if (answer.doc === undefined) throw new Error(`lookup of ${key} found nothing (tier ${answer.tier})`);
      }
    }),
  );
  return samples;
}

async function directorySize(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    total += entry.isDirectory() ? await directorySize(path) : (await stat(path)).size;
  }
  return total;
}

export async function runMirrorFlow(options: FlowOptions): Promise<{ ok: boolean }> {
  const { pool, cacheDir, log } = options;
  const fake = await startFakeApi({
    // openFDA's 240/min, scaled up so the example runs in seconds: the client keeps under it
    rateLimit: { requests: 100, windowMs: 1_000 },
    data: endpoints.map((endpoint) => ({
      endpoint,
      records: generateRecords(endpoint.name, options.records),
      lastUpdated: "2026-11-28",
    })),
  });
  try {
    const api = { baseUrl: fake.url, requestsPerMinute: 5_400 };
    // 1. pull every endpoint into the cache (envelope files), recording freshness
    for (const endpoint of endpoints) {
      const pulled = await pullEndpoint({ api, endpoint, cacheDir, pageSize: 1000 });
      await recordFreshness(pool, pulled.freshness!);
      log(
        `pull ${endpoint.name}: ${pulled.records} records in ${pulled.pages} pages, fingerprint ${pulled.fingerprint.slice(0, 12)}`,
      );
    }
    log(`fake API: ${fake.stats.requests} requests, ${fake.stats.rateLimited} answered 429`);
    // 2. import + verify + atomic switch: pgshift refresh, every endpoint in one swap
    const refresh = await refreshMirror({
      pool,
      cacheDir,
      endpoints: LIVE_ENDPOINTS,
      schema: SCHEMA,
      reason: "example",
    });
    log(
      `refresh: version ${refresh.version} ${refresh.status} in schema ${refresh.schema}; tables ${refresh.tables.map((t) => `${t.table}=${t.check?.rows ?? "?"}${t.check?.identical ? " identical" : " MISMATCH"}`).join(", ")}`,
    );
    if (refresh.status !== "switched") return { ok: false };
    // 3. 100 % migrated: fingerprints of what PostgreSQL holds against what the pulls fetched
    const verified = await verifyMirror({ pool, schema: SCHEMA, endpoints: LIVE_ENDPOINTS });
    for (const v of verified)
      log(`verify ${v.endpoint}: ${v.rows} rows, fingerprint ${v.identical ? "identical" : "DIFFERS"}`);
    if (!verified.every((v) => v.identical)) return { ok: false };
    const status = await mirrorStatus({ pool, endpoints });
    log(`status: ${status.map((s) => `${s.endpoint} ${s.stale ? "stale" : "fresh"}`).join(", ")}`);
    // storage: the tables with their indexes against the cache's files
    const { rows: sizes } = await pool.query(
      `select c.relname as name, pg_total_relation_size(c.oid)::bigint as bytes
         from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = $1 and c.relkind = 'r' order by 1`,
      [SCHEMA],
    );
    let tableBytes = 0;
    let fileBytes = 0;
    for (const endpoint of LIVE_ENDPOINTS) {
      const bytes = Number(sizes.find((s) => s.name === endpoint.name)?.bytes ?? 0);
      const files = await directorySize(join(cacheDir, endpoint.name, "pages"));
      tableBytes += bytes;
      fileBytes += files;
    }
    log(
      `storage: tables + indexes ${(tableBytes / 1e6).toFixed(1)} MB vs JSON files ${(fileBytes / 1e6).toFixed(1)} MB (${((tableBytes / fileBytes) * 100).toFixed(0)} %)`,
    );

    // 4. reads with fallback
    const k510 = findEndpoint("510k");
    const client = createApiClient({ ...api, retries: 1, timeoutMs: 2_000 });
    const reader = createFallbackReader({
      endpoint: k510,
      store: storeOf(pool, k510),
      pool,
      cacheDir,
      api: client,
    });
    const keys = generateRecords("510k", options.records).map((r) => String(r.k_number));
    await lookups(reader, keys, 20, 10); // warm-up: connections opened, statements prepared
    const one = await lookups(reader, keys, 1, 500);
    const twenty = await lookups(reader, keys, 20, 50);
    const served = reader.metrics().tiers;
    if (served.postgres.served !== 1700 || served.cache.served !== 0) return { ok: false };
    log(
      `read from postgres (${served.postgres.served} reads): 1 client p50 ${percentile(one, 0.5).toFixed(2)} ms p99 ${percentile(one, 0.99).toFixed(2)} ms; 20 clients p99 ${percentile(twenty, 0.99).toFixed(2)} ms`,
    );
    const containing = { openfda: { device_class: "3" } };
    let started = performance.now();
    const inPostgres = await reader.search({ containing, limit: 100_000 });
    const pgMs = performance.now() - started;
    const cacheOnly = createFallbackReader({ endpoint: k510, cacheDir });
    started = performance.now();
    const scanned = await cacheOnly.search({ containing, limit: 100_000 });
    const scanMs = performance.now() - started;
    log(
      `containment: postgres ${inPostgres.rows.length} rows in ${pgMs.toFixed(1)} ms, cache scan ${scanned.rows.length} rows in ${scanMs.toFixed(1)} ms`,
    );

    // 5. PostgreSQL stops: reads come from the cache, and the breaker keeps them from waiting on connects
    await options.stopPostgres();
    log("postgres stopped");
    const down = await lookups(reader, keys, 1, 300);
    const breaker = reader.metrics().breaker;
    const fromCache = reader.metrics().tiers.cache.served;
    log(
      `read with postgres down: ${fromCache} from the cache, p99 ${percentile(down, 0.99).toFixed(2)} ms, max ${Math.max(...down).toFixed(2)} ms; breaker ${breaker.state}, ${breaker.connectFailures} failed connects, ${breaker.rejected} reads skipped postgres`,
    );
    if (fromCache < 300 || breaker.state !== "open") return { ok: false };

    // 6. a record removed from the cache comes from the API, and is written back to the cache
    const pages = join(cacheDir, "510k", "pages");
    const [firstPage] = (await readdir(pages)).sort();
    const envelope = JSON.parse(await readFile(join(pages, firstPage!), "utf8"));
    const removed = String(envelope.results[0].k_number);
    envelope.results = envelope.results.slice(1);
    await writeFile(join(pages, firstPage!), JSON.stringify(envelope));
    const fromApi = await reader.get(removed);
    const again = await reader.get(removed);
    log(
      `removed ${removed} from the cache: served by ${fromApi.tier} (${fromApi.fellThrough.join("; ")}), then by ${again.tier}`,
    );
    if (fromApi.tier !== "api" || fromApi.doc === undefined || again.tier !== "cache") return { ok: false };
    // 7. the API fails: a stale cached copy is served, flagged
    const strict = createFallbackReader({
      endpoint: k510,
      store: storeOf(pool, k510),
      cacheDir,
      api: client,
      ttlSeconds: 0,
      stalePolicy: "revalidate",
    });
    fake.failNext(10, 503);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const stale = await strict.get(keys[1]!);
    log(`API failing (503): ${keys[1]} served by ${stale.tier}, stale=${stale.stale}`);
    if (stale.tier !== "cache" || !stale.stale) return { ok: false };
    return { ok: true };
  } finally {
    await fake.close();
    await rm(join(cacheDir, ".keep"), { force: true });
  }
}

import type pg from "pg";
import { LatencyReservoir, type LatencySummary } from "../cutover/latency-reservoir.ts";
import type { DocumentRow, DocumentStore, JsonDocument } from "../documents/document-store.ts";
import { getAtPointer, parsePointer } from "../documents/json-pointer.ts";
import { type BreakerMetrics, CircuitBreaker, CircuitOpenError } from "../pg/circuit-breaker.ts";
import { ConnectionError, isConnectionLost } from "../pg/errors.ts";
import { isConnectionFailure, targetOf } from "../pg/pool.ts";
import {
  type ApiClient,
  type ApiClientMetrics,
  type ApiClientOptions,
  createApiClient,
} from "./api-client.ts";
import {
  apiField,
  DEFAULT_TTL_SECONDS,
  keyParts,
  keyString,
  type MirrorEndpoint,
  recordKey,
} from "./endpoints.ts";
import { JsonCache, type JsonCacheOptions } from "./json-cache.ts";
import { ApiUnavailableError, MirrorUnavailableError } from "./mirror-errors.ts";
import { readFreshness } from "./mirror-schema.ts";

export type Tier = "postgres" | "cache" | "api";

/** What a stale tier (older than the TTL) does: answer flagged, ask the next tiers first, or not answer. */
export type StalePolicy = "serve" | "revalidate" | "refuse";

export interface FallbackReaderOptions {
  endpoint: MirrorEndpoint;
  /** Tier 1: the mirror table (a DocumentStore over it). */
  store?: DocumentStore;
  /** Where the endpoint's freshness is read (pgshift.mirror_endpoints); usually the store's pool. */
  pool?: pg.Pool;
  /** Tier 2: the JSON cache directory (`<dir>/<endpoint>/...`). */
  cacheDir?: string;
  cache?: JsonCacheOptions;
  /** Tier 3: the live API. */
  api?: ApiClient | ApiClientOptions;
  /**
   * PostgreSQL's own breaker: after `failureThreshold` consecutive connection failures (default 2) the
   * PostgreSQL tier is skipped without trying for `coolDownMs` (default 5000), then one read probes it.
   * The probing read waits for PostgreSQL at most `probeBudgetMs` (default 100) when another tier can
   * answer: past that it is answered by the next tier while the probe carries on and settles the breaker,
   * so no read waits for a connect timeout once the breaker has opened.
   */
  breaker?: { failureThreshold?: number; coolDownMs?: number; probeBudgetMs?: number };
  /** Default: the endpoint's ttlSeconds. */
  ttlSeconds?: number;
  /** Default "serve": a stale answer is returned with `stale: true`. */
  stalePolicy?: StalePolicy;
  /**
   * API answers are written to the cache (default true) and to PostgreSQL (default false): at once while it
   * is up, else kept (at most `pendingMax`, default 10000, newest win) and written when it is back.
   */
  writeThrough?: { cache?: boolean; postgres?: boolean; pendingMax?: number };
  /** A key PostgreSQL or the cache lacks is asked of the next tier (default true). */
  missFallsThrough?: boolean;
  /** How long a freshness row read from PostgreSQL is reused (default 10 s). */
  freshnessCacheMs?: number;
}

/** One answer: the document (undefined: no such record), which tier gave it, and how old that tier's copy is. */
export interface ReadAnswer<D = JsonDocument> {
  key: string[];
  doc: D | undefined;
  tier: Tier;
  /** Older than the TTL (served anyway under the policy, or because fresher tiers failed). */
  stale: boolean;
  /** Age of the served copy in seconds (API answers: 0; PostgreSQL: since the last pull or download). */
  ageSeconds: number | null;
  /** The source's last_updated for the copy, when known. */
  lastUpdated?: string;
  /** Why earlier tiers did not answer ("postgres: circuit open", "cache: miss"). */
  fellThrough: string[];
}

export interface SearchQuery {
  /** doc @> containing */
  containing?: JsonDocument;
  /** the value at `path` (a JSON pointer) equals `equals` */
  path?: string;
  equals?: unknown;
  /** the text at `path` contains `text` (case-insensitive) */
  text?: string;
  limit?: number;
}

export interface SearchAnswer<D = JsonDocument> {
  rows: DocumentRow<D>[];
  tier: Tier;
  stale: boolean;
  ageSeconds: number | null;
  fellThrough: string[];
}

export interface TierMetrics {
  /** Reads this tier answered. */
  served: number;
  /** Reads it could not answer because it lacks the key. */
  misses: number;
  /** Reads it failed (connection, I/O, HTTP). */
  errors: number;
  /** Reads that skipped it (breaker open, stale under "refuse"). */
  skipped: number;
  latency: LatencySummary;
}

export interface ReaderMetrics {
  tiers: Record<Tier, TierMetrics>;
  breaker: BreakerMetrics;
  api?: ApiClientMetrics;
  staleServed: number;
  /** API answers waiting to be written to PostgreSQL (it was down when they came). */
  pendingWrites: number;
  /** API answers written to PostgreSQL so far. */
  writtenBack: number;
}

export interface FallbackReader<D = JsonDocument> {
  get(key: string | readonly string[]): Promise<ReadAnswer<D>>;
  getMany(keys: readonly (string | readonly string[])[]): Promise<ReadAnswer<D>[]>;
  search(query: SearchQuery): Promise<SearchAnswer<D>>;
  metrics(): ReaderMetrics;
  /** Writes the pending API answers to PostgreSQL now (when it is reachable); the number written. */
  flushPending(): Promise<number>;
}

const TIERS: readonly Tier[] = ["postgres", "cache", "api"];

/** What a breaker probe's time budget resolves to when PostgreSQL has not answered within it. */
const probeBudget: unique symbol = Symbol("probe budget spent");

/** A failure that says PostgreSQL is unreachable (as opposed to a bad query). */
function isUnreachable(error: unknown): boolean {
  return (
    error instanceof CircuitOpenError ||
    error instanceof ConnectionError ||
    isConnectionFailure(error) ||
    isConnectionLost(error) ||
    /connection terminated|not queryable|timeout expired/i.test(String((error as Error)?.message ?? error))
  );
}

const reasonOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

/**
 * A reader over three tiers, in order: PostgreSQL (a DocumentStore), the JSON cache directory, the live API.
 * PostgreSQL being down is detected by a circuit breaker: once open, reads skip it at once instead of each
 * waiting for a connect to fail. API answers are written through to the cache. A 404 from the API is an
 * empty answer; 5xx and timeouts make the reader serve a stale copy with `stale: true` when it has one.
 *
 * @example
 *   const reader = createFallbackReader({
 *     endpoint: findEndpoint("510k"), store: new DocumentStore(pool, { schema: "openfda", table: "510k",
 *     keyColumns: ["k_number"] }), pool, cacheDir: "cache", api: { baseUrl: "https://api.fda.gov" } });
 *   const answer = await reader.get("K872032"); // { doc, tier: "postgres", stale: false, ageSeconds: 3600, ... }
 */
export function createFallbackReader<D extends JsonDocument = JsonDocument>(
  options: FallbackReaderOptions,
): FallbackReader<D> {
  const { endpoint, store } = options;
  const cache = options.cacheDir ? new JsonCache(options.cacheDir, endpoint, options.cache) : undefined;
  const api = options.api ? ("get" in options.api ? options.api : createApiClient(options.api)) : undefined;
  const target = options.pool ? targetOf(options.pool) : undefined;
  const breaker = new CircuitBreaker({
    ...(target ? { host: target.host, port: target.port } : {}),
    failureThreshold: options.breaker?.failureThreshold ?? 2,
    coolDownMs: options.breaker?.coolDownMs ?? 5_000,
  });
  const probeBudgetMs = options.breaker?.probeBudgetMs ?? 100;
  const ttlSeconds = options.ttlSeconds ?? endpoint.ttlSeconds ?? DEFAULT_TTL_SECONDS;
  const policy = options.stalePolicy ?? "serve";
  const writeToCache = options.writeThrough?.cache ?? true;
  const writeToPostgres = options.writeThrough?.postgres ?? false;
  const pendingMax = options.writeThrough?.pendingMax ?? 10_000;
  const pending = new Map<string, D>();
  let writtenBack = 0;
  let flushing: Promise<number> | undefined;
  const missFallsThrough = options.missFallsThrough ?? true;
  const freshnessCacheMs = options.freshnessCacheMs ?? 10_000;
  const counters = Object.fromEntries(
    TIERS.map((t) => [t, { served: 0, misses: 0, errors: 0, skipped: 0, latency: new LatencyReservoir() }]),
  ) as Record<
    Tier,
    { served: number; misses: number; errors: number; skipped: number; latency: LatencyReservoir }
  >;
  let staleServed = 0;
  let freshness: { at: number; fetchedAt: number | null; lastUpdated?: string } | undefined;

  /** Runs one PostgreSQL call through the reader's breaker; undefined (with a reason) when it is down. */
  async function viaPostgres<T>(fn: () => Promise<T>, fell: string[]): Promise<{ value: T } | undefined> {
    if (!store) return undefined;
    const probe = breaker.metrics().state !== "closed";
    try {
      breaker.admit();
    } catch (error) {
      counters.postgres.skipped += 1;
      fell.push(`postgres: ${(error as Error).message}`);
      return undefined;
    }
    const started = performance.now();
    try {
      const call = fn();
      let value: T;
      if (probe && (cache || api)) {
        // the breaker's probe: a read does not wait on a server that may still be unreachable
        let timer: NodeJS.Timeout | undefined;
        const budget = new Promise<typeof probeBudget>((resolve) => {
          timer = setTimeout(() => resolve(probeBudget), probeBudgetMs);
        });
        const first = await Promise.race([call, budget]).finally(() => clearTimeout(timer));
        if (first === probeBudget) {
          call.then(
            () => breaker.succeeded(),
            (error: unknown) => (isUnreachable(error) ? breaker.failed(error) : breaker.succeeded()),
          );
          counters.postgres.skipped += 1;
          fell.push(`postgres: probing (no answer within ${probeBudgetMs} ms)`);
          return undefined;
        }
        value = first as T;
      } else value = await call;
      breaker.succeeded();
      counters.postgres.latency.record(performance.now() - started);
      // PostgreSQL answers again: what the API gave meanwhile goes in, off the read's path
      if (pending.size > 0 && !flushing) void flushPending().catch(() => undefined);
      return { value };
    } catch (error) {
      counters.postgres.errors += 1;
      if (isUnreachable(error)) breaker.failed(error);
      else breaker.succeeded();
      fell.push(`postgres: ${reasonOf(error)}`);
      return undefined;
    }
  }

  async function postgresAge(): Promise<{ ageSeconds: number | null; lastUpdated?: string }> {
    const now = Date.now();
    if (options.pool && (!freshness || now - freshness.at > freshnessCacheMs)) {
      try {
        const [row] = await readFreshness(options.pool, [endpoint.name]);
        freshness = {
          at: now,
          fetchedAt: row ? Date.parse(row.fetchedAt) : null,
          ...(row?.sourceLastUpdated ? { lastUpdated: row.sourceLastUpdated } : {}),
        };
      } catch {
        freshness = { at: now, fetchedAt: null };
      }
    }
    if (!freshness || freshness.fetchedAt === null) return { ageSeconds: null };
    return {
      ageSeconds: Math.max(0, Math.round((now - freshness.fetchedAt) / 1000)),
      ...(freshness.lastUpdated ? { lastUpdated: freshness.lastUpdated } : {}),
    };
  }

  const isStale = (ageSeconds: number | null) => ageSeconds !== null && ageSeconds > ttlSeconds;

  function finish(answer: ReadAnswer<D>): ReadAnswer<D> {
    counters[answer.tier].served += 1;
    if (answer.stale) staleServed += 1;
    return answer;
  }

  async function fromApi(
    key: string[],
    fell: string[],
  ): Promise<{ answer: ReadAnswer<D> } | { error: unknown } | undefined> {
    if (!api) return undefined;
    const search = endpoint.key
      .map((pointer, i) => `${apiField(pointer)}:"${key[i]!.replace(/"/g, '\\"')}"`)
      .join(" AND ");
    const started = performance.now();
    try {
      const page = await api.query(endpoint.path, { search, limit: 1 });
      counters.api.latency.record(performance.now() - started);
      const doc = page.envelope.results.find(
        (r) => keyString(recordKey(endpoint, r) ?? []) === keyString(key),
      ) as D | undefined;
      if (doc === undefined) counters.api.misses += 1;
      else await writeThrough(doc, page.envelope.meta);
      return {
        answer: {
          key,
          doc,
          tier: "api",
          stale: false,
          ageSeconds: 0,
          ...(page.envelope.meta.last_updated ? { lastUpdated: page.envelope.meta.last_updated } : {}),
          fellThrough: fell,
        },
      };
    } catch (error) {
      counters.api.errors += 1;
      fell.push(`api: ${reasonOf(error)}`);
      return { error };
    }
  }

  async function writeThrough(doc: D, meta: Record<string, unknown>): Promise<void> {
    if (cache && writeToCache) await cache.put(doc, meta).catch(() => undefined);
    if (!store || !writeToPostgres) return;
    const key = recordKey(endpoint, doc)!;
    if (breaker.metrics().state === "closed") {
      const written = await viaPostgres(
        () => store.put(key.length === 1 ? key[0]! : key, doc, { sourceFile: "api" }),
        [],
      );
      if (written) {
        writtenBack += 1;
        return;
      }
    }
    pending.delete(keyString(key));
    pending.set(keyString(key), doc);
    while (pending.size > pendingMax) pending.delete(pending.keys().next().value!);
  }

  /** Writes what waited for PostgreSQL, oldest first; stops at the first failure (the rest stays pending). */
  function flushPending(): Promise<number> {
    if (!store || pending.size === 0) return Promise.resolve(0);
    flushing ??= (async () => {
      let written = 0;
      try {
        for (const [name, doc] of [...pending]) {
          const key = recordKey(endpoint, doc)!;
          const ok = await viaPostgres(
            () => store.put(key.length === 1 ? key[0]! : key, doc, { sourceFile: "api" }),
            [],
          );
          if (!ok) break;
          if (pending.get(name) === doc) pending.delete(name);
          written += 1;
          writtenBack += 1;
        }
      } finally {
        flushing = undefined;
      }
      return written;
    })();
    return flushing;
  }

  /** Tiers after PostgreSQL for one key; `stale` is the best stale copy found so far (served if all else fails). */
  async function afterPostgres(
    key: string[],
    fell: string[],
    staleCopy?: ReadAnswer<D>,
  ): Promise<ReadAnswer<D>> {
    let stale = staleCopy;
    if (cache) {
      const started = performance.now();
      try {
        const hit = await cache.get(key);
        counters.cache.latency.record(performance.now() - started);
        if (!hit) {
          counters.cache.misses += 1;
          fell.push("cache: miss");
        } else {
          const ageSeconds = Math.max(0, Math.round((Date.now() - hit.fetchedAt.getTime()) / 1000));
          const answer: ReadAnswer<D> = {
            key,
            doc: hit.record as D,
            tier: "cache",
            stale: isStale(ageSeconds),
            ageSeconds,
            ...(hit.lastUpdated ? { lastUpdated: hit.lastUpdated } : {}),
            fellThrough: fell,
          };
          if (!answer.stale || policy === "serve") return finish(answer);
          if (policy === "revalidate") stale ??= answer;
          counters.cache.skipped += 1;
          fell.push(`cache: stale (${ageSeconds} s > TTL ${ttlSeconds} s)`);
        }
      } catch (error) {
        counters.cache.errors += 1;
        fell.push(`cache: ${reasonOf(error)}`);
      }
    }
    const fromTheApi = await fromApi(key, fell);
    if (fromTheApi && "answer" in fromTheApi) return finish(fromTheApi.answer);
    if (stale) return finish({ ...stale, stale: true, fellThrough: fell });
    throw new MirrorUnavailableError(
      `no tier could answer ${endpoint.name} ${keyString(key)}: ${fell.join("; ") || "no tiers configured"}`,
      Object.fromEntries(fell.map((f) => [f.slice(0, f.indexOf(":")), f.slice(f.indexOf(":") + 2)])),
      fromTheApi && "error" in fromTheApi && fromTheApi.error instanceof ApiUnavailableError
        ? fromTheApi.error
        : undefined,
    );
  }

  /** The PostgreSQL answer for a key when it is usable, or what to carry on with. */
  async function decidePostgres(
    key: string[],
    found: boolean,
    doc: D | undefined,
    fell: string[],
  ): Promise<{ answer: ReadAnswer<D> } | { stale?: ReadAnswer<D> }> {
    const age = await postgresAge();
    const answer: ReadAnswer<D> = {
      key,
      doc,
      tier: "postgres",
      stale: isStale(age.ageSeconds),
      ageSeconds: age.ageSeconds,
      ...(age.lastUpdated ? { lastUpdated: age.lastUpdated } : {}),
      fellThrough: fell,
    };
    if (!found) {
      counters.postgres.misses += 1;
      if (!missFallsThrough) return { answer: finish(answer) };
      fell.push("postgres: miss");
      return {};
    }
    if (!answer.stale || policy === "serve") return { answer: finish(answer) };
    counters.postgres.skipped += 1;
    fell.push(`postgres: stale (${age.ageSeconds} s > TTL ${ttlSeconds} s)`);
    return policy === "revalidate" ? { stale: answer } : {};
  }

  async function get(input: string | readonly string[]): Promise<ReadAnswer<D>> {
    const key = keyParts(endpoint, input);
    const fell: string[] = [];
    const pg = await viaPostgres(() => store!.get(key.length === 1 ? key[0]! : key), fell);
    let stale: ReadAnswer<D> | undefined;
    if (pg) {
      const decided = await decidePostgres(key, pg.value !== undefined, pg.value as D | undefined, fell);
      if ("answer" in decided) return decided.answer;
      stale = decided.stale;
    }
    return afterPostgres(key, fell, stale);
  }

  async function getMany(inputs: readonly (string | readonly string[])[]): Promise<ReadAnswer<D>[]> {
    const keys = inputs.map((k) => keyParts(endpoint, k));
    const fell: string[] = [];
    const pg = await viaPostgres(() => store!.getMany(keys.map((k) => (k.length === 1 ? k[0]! : k))), fell);
    const answers: ReadAnswer<D>[] = [];
    for (const key of keys) {
      const own = [...fell];
      let stale: ReadAnswer<D> | undefined;
      if (pg) {
        const mapKey = key.length === 1 ? key[0]! : JSON.stringify(key);
        const doc = pg.value.get(mapKey) as D | undefined;
        const decided = await decidePostgres(key, doc !== undefined, doc, own);
        if ("answer" in decided) {
          answers.push(decided.answer);
          continue;
        }
        stale = decided.stale;
      }
      answers.push(await afterPostgres(key, own, stale));
    }
    return answers;
  }

  async function search(query: SearchQuery): Promise<SearchAnswer<D>> {
    const limit = query.limit ?? 100;
    const fell: string[] = [];
    const pg = await viaPostgres(async () => {
      if (query.containing) return store!.containing(query.containing, { limit });
      if (query.path && query.text !== undefined)
        return store!.search(query.text, { path: query.path, limit });
      if (query.path) return store!.wherePath(query.path, query.equals, { limit });
      return (await store!.page({ limit })).rows;
    }, fell);
    if (pg) {
      const age = await postgresAge();
      counters.postgres.served += 1;
      return {
        rows: pg.value as DocumentRow<D>[],
        tier: "postgres",
        stale: isStale(age.ageSeconds),
        ageSeconds: age.ageSeconds,
        fellThrough: fell,
      };
    }
    if (cache) {
      const started = performance.now();
      try {
        const match = predicate(query);
        const rows: DocumentRow<D>[] = [];
        let oldest: number | null = null;
        for await (const hit of cache.records()) {
          if (!match(hit.record)) continue;
          const key = recordKey(endpoint, hit.record)!;
          rows.push({ key: key.length === 1 ? key[0]! : key, doc: hit.record as D });
          oldest = Math.min(oldest ?? Infinity, hit.fetchedAt.getTime());
          if (rows.length >= limit) break;
        }
        counters.cache.latency.record(performance.now() - started);
        if (rows.length > 0 || (await cache.count()) > 0) {
          counters.cache.served += 1;
          const ageSeconds = oldest === null ? null : Math.round((Date.now() - oldest) / 1000);
          return { rows, tier: "cache", stale: isStale(ageSeconds), ageSeconds, fellThrough: fell };
        }
        fell.push("cache: empty");
      } catch (error) {
        counters.cache.errors += 1;
        fell.push(`cache: ${reasonOf(error)}`);
      }
    }
    if (api) {
      const started = performance.now();
      try {
        const page = await api.query(endpoint.path, { search: apiSearch(query), limit });
        counters.api.latency.record(performance.now() - started);
        counters.api.served += 1;
        const rows = page.envelope.results.map((r) => {
          const key = recordKey(endpoint, r) ?? [];
          return { key: key.length === 1 ? key[0]! : key, doc: r as D };
        });
        return { rows, tier: "api", stale: false, ageSeconds: 0, fellThrough: fell };
      } catch (error) {
        counters.api.errors += 1;
        fell.push(`api: ${reasonOf(error)}`);
      }
    }
    throw new MirrorUnavailableError(
      `no tier could answer a search of ${endpoint.name}: ${fell.join("; ")}`,
      {},
    );
  }

  return {
    get,
    getMany,
    search,
    metrics: () => ({
      tiers: Object.fromEntries(
        TIERS.map((t) => [t, { ...counters[t], latency: counters[t].latency.summary() }]),
      ) as Record<Tier, TierMetrics>,
      breaker: breaker.metrics(),
      ...(api ? { api: api.metrics() } : {}),
      staleServed,
      pendingWrites: pending.size,
      writtenBack,
    }),
    flushPending,
  };
}

/** The query as a test on one record (the cache tier scans files with it). */
export function predicate(query: SearchQuery): (record: Record<string, unknown>) => boolean {
  if (query.containing) {
    const partial = query.containing;
    return (record) => contains(record, partial);
  }
  if (query.path !== undefined) {
    const path = parsePointer(query.path);
    if (query.text !== undefined) {
      const needle = query.text.toLowerCase();
      return (record) => {
        const value = getAtPointer(record, path);
        return typeof value === "string" && value.toLowerCase().includes(needle);
      };
    }
    const wanted = JSON.stringify(query.equals);
    return (record) => JSON.stringify(getAtPointer(record, path)) === wanted;
  }
  return () => true;
}

/** jsonb's @>: objects contain sub-objects, arrays contain elements contained by some element. */
export function contains(value: unknown, partial: unknown): boolean {
  if (Array.isArray(partial)) {
    if (!Array.isArray(value)) return false;
    return partial.every((p) => value.some((v) => contains(v, p)));
  }
  if (partial !== null && typeof partial === "object") {
    if (value === null || typeof value !== "object" || Array.isArray(value)) return false;
    return Object.entries(partial).every(([k, p]) => contains((value as Record<string, unknown>)[k], p));
  }
  return value === partial;
}

/** The query in openFDA's search syntax: leaf fields AND-ed (`openfda.device_class:"3"`). */
export function apiSearch(query: SearchQuery): string {
  const terms: string[] = [];
  const leaf = (path: string[], value: unknown) => {
    if (Array.isArray(value)) for (const v of value) leaf(path, v);
    else if (value !== null && typeof value === "object")
      for (const [k, v] of Object.entries(value)) leaf([...path, k], v);
    else terms.push(`${path.join(".")}:"${String(value).replace(/"/g, '\\"')}"`);
  };
  if (query.containing) leaf([], query.containing);
  else if (query.path !== undefined) leaf(parsePointer(query.path), query.text ?? query.equals);
  return terms.join(" AND ");
}

import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type pg from "pg";
import { type FakeApi, startFakeApi } from "../../../examples/openfda-mirror/fake-api.ts";
import { generateRecord, generateRecords } from "../../../examples/openfda-mirror/generate-records.ts";
import { DocumentStore } from "../../../src/documents/document-store.ts";
import { createApiClient } from "../../../src/mirror/api-client.ts";
import { findEndpoint, type MirrorEndpoint } from "../../../src/mirror/endpoints.ts";
import { createFallbackReader } from "../../../src/mirror/fallback-reader.ts";
import { MirrorUnavailableError } from "../../../src/mirror/mirror-errors.ts";
import { mirrorStatus, recordFreshness } from "../../../src/mirror/mirror-schema.ts";
import { pullEndpoint } from "../../../src/mirror/pull-endpoint.ts";
import { refreshMirror } from "../../../src/mirror/refresh-mirror.ts";
import { createPool, poolMetricsOf } from "../../../src/pg/pool.ts";
import { useTestDatabase } from "../../helpers/database.ts";

const db = useTestDatabase("mirror_reader");
const k510 = findEndpoint("510k");
const pma = findEndpoint("pma");
const RECORDS = 600;
let api: FakeApi;
let cacheDir: string;
let downPool: pg.Pool;

const storeOf = (pool: pg.Pool, endpoint: MirrorEndpoint) =>
  new DocumentStore(pool, {
    schema: "openfda",
    table: endpoint.name,
    keyColumns: endpoint.key.map((k) => k.slice(1)),
  });
const quickApi = () =>
  createApiClient({ baseUrl: api.url, requestsPerMinute: 0, retries: 1, baseDelayMs: 10, timeoutMs: 500 });

describe("createFallbackReader: PostgreSQL -> JSON cache -> API", () => {
  before(async () => {
    cacheDir = await mkdtemp(join(tmpdir(), "pgshift-mirror-reader-"));
    api = await startFakeApi({
      data: [
        { endpoint: k510, records: generateRecords("510k", RECORDS), lastUpdated: "2026-11-20" },
        { endpoint: pma, records: generateRecords("pma", 40) },
      ],
    });
    for (const endpoint of [k510, pma]) {
      const result = await pullEndpoint({
        api: { baseUrl: api.url, requestsPerMinute: 0 },
        endpoint,
        cacheDir,
        pageSize: 250,
      });
      await recordFreshness(db().pool, result.freshness!);
    }
    // pma stays out of PostgreSQL: the document import refuses an empty key part, and pma originals have
    // supplement_number "" (see the README's known limits); its composite key is read from the cache here
    const refresh = await refreshMirror({
      pool: db().pool,
      cacheDir,
      endpoints: [k510],
      schema: "openfda",
    });
    assert.equal(refresh.status, "switched");
    // a server that is not there: connections are refused
    downPool = createPool({
      url: "postgres://nobody@127.0.0.1:1/none",
      retry: false,
      breaker: false,
      connectTimeoutMs: 2_000,
    });
  });
  after(async () => {
    await downPool?.end().catch(() => undefined);
    await api?.close();
    await rm(cacheDir, { recursive: true, force: true });
  });

  it("serves from PostgreSQL while it is up, with the endpoint's age and last_updated", async () => {
    const reader = createFallbackReader({
      endpoint: k510,
      store: storeOf(db().pool, k510),
      pool: db().pool,
      cacheDir,
      api: quickApi(),
    });
    const answer = await reader.get("K000123");
    assert.equal(answer.tier, "postgres");
    assert.deepEqual(answer.doc, generateRecord("510k", 123));
    assert.equal(answer.stale, false);
    assert.ok(answer.ageSeconds !== null && answer.ageSeconds < 600);
    assert.equal(answer.lastUpdated, "2026-11-20");
    const found = await reader.search({ containing: { openfda: { device_class: "3" } }, limit: 1000 });
    assert.equal(found.tier, "postgres");
    assert.equal(
      found.rows.length,
      generateRecords("510k", RECORDS).filter(
        (r) => (r.openfda as { device_class: string }).device_class === "3",
      ).length,
    );
    const composite = createFallbackReader({ endpoint: pma, cacheDir });
    const original = await composite.get(["P000002", ""]);
    assert.equal(original.tier, "cache");
    assert.deepEqual(original.doc, generateRecord("pma", 8));
    assert.equal((await composite.get(["P000002", "S001"])).doc?.supplement_number, "S001");
    assert.equal((original.doc as { supplement_number: string }).supplement_number, "");
    assert.equal(reader.metrics().tiers.postgres.served, 2);
  });

  it("a key nobody has is an empty answer from the API (404), not an error", async () => {
    const reader = createFallbackReader({
      endpoint: k510,
      store: storeOf(db().pool, k510),
      pool: db().pool,
      cacheDir,
      api: quickApi(),
    });
    const [known, unknown] = await reader.getMany(["K000007", "K999999"]);
    assert.equal(known!.tier, "postgres");
    assert.equal(unknown!.tier, "api");
    assert.equal(unknown!.doc, undefined);
    assert.deepEqual(unknown!.fellThrough, ["postgres: miss", "cache: miss"]);
    assert.equal(reader.metrics().api?.notFound, 1);
  });

  it("with PostgreSQL down, reads come from the cache, and once the breaker is open no read tries to connect", async () => {
    const reader = createFallbackReader({
      endpoint: k510,
      store: storeOf(downPool, k510),
      cacheDir,
      api: quickApi(),
      breaker: { failureThreshold: 2, coolDownMs: 60_000 },
    });
    for (let i = 0; i < 50; i++) {
      const answer = await reader.get(`K${String(i).padStart(6, "0")}`);
      assert.equal(answer.tier, "cache");
      assert.deepEqual(answer.doc, generateRecord("510k", i));
      assert.equal(answer.stale, false);
    }
    const metrics = reader.metrics();
    assert.equal(metrics.breaker.state, "open");
    assert.equal(metrics.tiers.postgres.errors, 2);
    assert.equal(metrics.tiers.postgres.skipped, 48);
    assert.equal(poolMetricsOf(downPool)?.connectAttempts, 2);
    assert.equal(metrics.tiers.cache.served, 50);
    const found = await reader.search({ path: "/openfda/device_class", equals: "3", limit: 1000 });
    assert.equal(found.tier, "cache");
    assert.equal(
      found.rows.length,
      generateRecords("510k", RECORDS).filter(
        (r) => (r.openfda as { device_class: string }).device_class === "3",
      ).length,
    );
  });

  it("the breaker's probe does not hold a read: past its budget the cache answers and the probe settles the breaker", async () => {
    let mode: "refused" | "hanging" = "refused";
    let release: (() => void) | undefined;
    const refused = () =>
      Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" });
    const unreachable = {
      query: () =>
        mode === "refused"
          ? Promise.reject(refused())
          : new Promise((_, reject) => {
              release = () => reject(refused());
            }),
    } as unknown as pg.Pool;
    const reader = createFallbackReader({
      endpoint: k510,
      store: storeOf(unreachable, k510),
      cacheDir,
      breaker: { failureThreshold: 1, coolDownMs: 30, probeBudgetMs: 20 },
    });
    assert.equal((await reader.get("K000001")).tier, "cache");
    assert.equal(reader.metrics().breaker.state, "open");
    mode = "hanging";
    await new Promise((r) => setTimeout(r, 60));
    const probed = await reader.get("K000002");
    assert.equal(probed.tier, "cache");
    assert.deepEqual(probed.doc, generateRecord("510k", 2));
    assert.deepEqual(probed.fellThrough, ["postgres: probing (no answer within 20 ms)"]);
    assert.equal(reader.metrics().breaker.state, "half-open");
    // while the probe is out, reads skip PostgreSQL; when it fails the breaker opens again
    assert.match((await reader.get("K000003")).fellThrough[0]!, /circuit breaker is open/);
    release!();
    await new Promise((r) => setImmediate(r));
    assert.equal(reader.metrics().breaker.state, "open");
    assert.equal(reader.metrics().breaker.opened, 2);
  });

  it("a record removed from the cache comes from the API and is written through to the cache", async () => {
    const pages = join(cacheDir, "510k", "pages");
    const [first] = (await readdir(pages)).sort();
    const envelope = JSON.parse(await readFile(join(pages, first!), "utf8"));
    envelope.results = envelope.results.filter((r: { k_number: string }) => r.k_number !== "K000010");
    await writeFile(join(pages, first!), JSON.stringify(envelope));
    const client = quickApi();
    const reader = createFallbackReader({
      endpoint: k510,
      store: storeOf(downPool, k510),
      cacheDir,
      api: client,
      breaker: { failureThreshold: 1, coolDownMs: 60_000 },
    });
    const fromApi = await reader.get("K000010");
    assert.equal(fromApi.tier, "api");
    assert.deepEqual(fromApi.doc, generateRecord("510k", 10));
    assert.deepEqual(fromApi.fellThrough.slice(1), ["cache: miss"]);
    assert.equal(client.metrics().requests, 1);
    const again = await reader.get("K000010");
    assert.equal(again.tier, "cache");
    assert.match(JSON.stringify(await readdir(join(cacheDir, "510k", "records"))), /K000010\.json/);
    assert.equal(client.metrics().requests, 1);
  });

  it("a stale cache is revalidated against the API, and served flagged stale when the API fails (5xx, timeouts)", async () => {
    const client = quickApi();
    const reader = createFallbackReader({
      endpoint: k510,
      store: storeOf(downPool, k510),
      cacheDir,
      api: client,
      ttlSeconds: 0,
      stalePolicy: "revalidate",
      breaker: { failureThreshold: 1, coolDownMs: 60_000 },
    });
    await new Promise((r) => setTimeout(r, 1_100));
    const revalidated = await reader.get("K000020");
    assert.equal(revalidated.tier, "api");
    api.failNext(2, 503);
    const served = await reader.get("K000021");
    assert.equal(served.tier, "cache");
    assert.equal(served.stale, true);
    assert.deepEqual(served.doc, generateRecord("510k", 21));
    assert.match(served.fellThrough.join("; "), /api: .*HTTP 503/);
    api.hangNext(2);
    const timedOut = await reader.get("K000022");
    assert.equal(timedOut.tier, "cache");
    assert.equal(timedOut.stale, true);
    assert.match(timedOut.fellThrough.join("; "), /no answer within 500 ms/);
    assert.equal(reader.metrics().staleServed, 2);
    const refusing = createFallbackReader({
      endpoint: k510,
      store: storeOf(downPool, k510),
      cacheDir,
      api: client,
      ttlSeconds: 0,
      stalePolicy: "refuse",
      breaker: { failureThreshold: 1, coolDownMs: 60_000 },
    });
    api.failNext(2, 500);
    await assert.rejects(
      refusing.get("K000023"),
      (error) => error instanceof MirrorUnavailableError && /cache: stale/.test(error.message),
    );
  });

  it("writes API answers through to PostgreSQL when asked, and status shows freshness against the TTL", async () => {
    api.setRecords("device/510k", generateRecords("510k", RECORDS + 1), "2026-11-21");
    const store = storeOf(db().pool, k510);
    const reader = createFallbackReader({
      endpoint: k510,
      store,
      pool: db().pool,
      api: quickApi(),
      writeThrough: { postgres: true },
    });
    const key = `K${String(RECORDS).padStart(6, "0")}`;
    assert.equal((await reader.get(key)).tier, "api");
    assert.deepEqual(await store.get(key), generateRecord("510k", RECORDS));
    assert.equal((await reader.get(key)).tier, "postgres");
    const status = await mirrorStatus({ pool: db().pool, endpoints: [k510, pma, findEndpoint("udi")] });
    assert.deepEqual(
      status.map((s) => [s.endpoint, s.stale, s.freshness?.recordCount ?? null]),
      [
        ["510k", false, RECORDS],
        ["pma", false, 40],
        ["udi", true, null],
      ],
    );
    const later = await mirrorStatus({
      pool: db().pool,
      endpoints: [k510],
      now: new Date(Date.now() + 8 * 86_400_000),
    });
    assert.equal(later[0]!.stale, true);
  });

  it("API answers that came while PostgreSQL was down are written to it once it is back", async () => {
    // the test database behind a switch: refused connections while `down`, the real server after
    let down = true;
    const real = db().pool;
    const refused = () =>
      Promise.reject(
        Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" }),
      );
    const switched = {
      query: (...args: Parameters<pg.Pool["query"]>) =>
        down ? refused() : (real.query as (...a: unknown[]) => Promise<unknown>)(...args),
    } as unknown as pg.Pool;
    api.setRecords("device/510k", generateRecords("510k", RECORDS + 3), "2026-11-21");
    const reader = createFallbackReader({
      endpoint: k510,
      store: storeOf(switched, k510),
      api: quickApi(),
      writeThrough: { postgres: true, cache: false },
      breaker: { failureThreshold: 1, coolDownMs: 50 },
    });
    const keys = [RECORDS + 1, RECORDS + 2].map((i) => `K${String(i).padStart(6, "0")}`);
    for (const key of keys) assert.equal((await reader.get(key)).tier, "api");
    assert.equal(reader.metrics().pendingWrites, 2);
    assert.equal(await storeOf(real, k510).get(keys[0]!), undefined);
    down = false;
    await new Promise((r) => setTimeout(r, 80));
    assert.equal((await reader.get("K000001")).tier, "postgres");
    await reader.flushPending();
    assert.equal(reader.metrics().pendingWrites, 0);
    assert.equal(reader.metrics().writtenBack, 2);
    assert.deepEqual(await storeOf(real, k510).get(keys[1]!), generateRecord("510k", RECORDS + 2));
    assert.equal((await reader.get(keys[0]!)).tier, "postgres");
  });
});

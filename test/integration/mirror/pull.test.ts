import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { startFakeApi, type FakeApi } from "../../../examples/openfda-mirror/fake-api.ts";
import { generateRecords } from "../../../examples/openfda-mirror/generate-records.ts";
import { createApiClient } from "../../../src/mirror/api-client.ts";
import { findEndpoint, keyString, recordKey } from "../../../src/mirror/endpoints.ts";
import { ContentFingerprint } from "../../../src/mirror/fingerprint.ts";
import { pullEndpoint } from "../../../src/mirror/pull-endpoint.ts";

const k510 = findEndpoint("510k");
const pma = findEndpoint("pma");
const RECORDS = 2_450;
let api: FakeApi;
let work: string;

async function pagedKeys(dir: string): Promise<string[]> {
  const keys: string[] = [];
  for (const name of (await readdir(dir)).sort()) {
    const envelope = JSON.parse(await readFile(join(dir, name), "utf8"));
    for (const record of envelope.results) keys.push(keyString(recordKey(k510, record)!));
  }
  return keys;
}

describe("pullEndpoint against the fake openFDA API", () => {
  before(async () => {
    work = await mkdtemp(join(tmpdir(), "pgshift-mirror-pull-"));
    api = await startFakeApi({
      // a low skip ceiling so that a few thousand records reach search_after paging, as 25000 does on openFDA
      maxSkip: 1_000,
      data: [
        { endpoint: k510, records: generateRecords("510k", RECORDS), lastUpdated: "2026-11-20" },
        { endpoint: pma, records: generateRecords("pma", 30) },
      ],
    });
  });
  after(async () => {
    await api.close();
    await rm(work, { recursive: true, force: true });
  });

  it("pages every record exactly once past the skip limit (Link search_after), with the source's last_updated", async () => {
    const cacheDir = join(work, "full");
    const result = await pullEndpoint({
      api: { baseUrl: api.url, requestsPerMinute: 0 },
      endpoint: k510,
      cacheDir,
      pageSize: 200,
    });
    assert.equal(result.status, "complete");
    assert.equal(result.records, RECORDS);
    assert.equal(result.total, RECORDS);
    assert.equal(result.pages, Math.ceil(RECORDS / 200));
    assert.equal(result.lastUpdated, "2026-11-20");
    const keys = await pagedKeys(join(cacheDir, "510k", "pages"));
    assert.equal(keys.length, RECORDS);
    assert.equal(new Set(keys).size, RECORDS);
    const expected = new ContentFingerprint();
    for (const record of generateRecords("510k", RECORDS))
      expected.add(keyString(recordKey(k510, record)!), record);
    assert.equal(result.fingerprint, expected.toString());
    assert.equal(result.freshness?.recordCount, RECORDS);
    assert.equal(result.freshness?.how, "pull");
  });

  it("resumes an interrupted pull where it stopped: no record lost or duplicated, same fingerprint", async () => {
    const cacheDir = join(work, "resume");
    const stop = new AbortController();
    let pages = 0;
    const first = await pullEndpoint({
      api: { baseUrl: api.url, requestsPerMinute: 0 },
      endpoint: k510,
      cacheDir,
      pageSize: 150,
      signal: stop.signal,
      onProgress: () => {
        // stop past the skip ceiling, so the saved next URL is a search_after one
        if (++pages === 9) stop.abort();
      },
    });
    assert.equal(first.status, "interrupted");
    assert.equal(first.records, 9 * 150);
    const state = JSON.parse(await readFile(join(cacheDir, "510k", ".pull-state.json"), "utf8"));
    assert.match(state.nextUrl, /search_after=/);
    const second = await pullEndpoint({
      api: { baseUrl: api.url, requestsPerMinute: 0 },
      endpoint: k510,
      cacheDir,
      pageSize: 150,
    });
    assert.equal(second.status, "complete");
    assert.equal(second.resumed, true);
    assert.equal(second.pagesThisRun, Math.ceil(RECORDS / 150) - 9);
    const keys = await pagedKeys(join(cacheDir, "510k", "pages"));
    assert.equal(keys.length, RECORDS);
    assert.equal(new Set(keys).size, RECORDS);
    const whole = await pullEndpoint({
      api: { baseUrl: api.url, requestsPerMinute: 0 },
      endpoint: k510,
      cacheDir: join(work, "whole"),
      pageSize: 150,
    });
    assert.equal(second.fingerprint, whole.fingerprint);
  });

  it("sends the API key from the environment on every request and keeps it out of the state file", async () => {
    const cacheDir = join(work, "keyed");
    process.env.PGSHIFT_TEST_FDA_KEY = "sekret-key-123";
    try {
      const stop = new AbortController();
      await pullEndpoint({
        api: { baseUrl: api.url, requestsPerMinute: 0, apiKeyEnv: "PGSHIFT_TEST_FDA_KEY" },
        endpoint: k510,
        cacheDir,
        pageSize: 300,
        signal: stop.signal,
        onProgress: () => stop.abort(),
      });
    } finally {
      delete process.env.PGSHIFT_TEST_FDA_KEY;
    }
    assert.deepEqual(api.apiKeys.slice(-1), ["sekret-key-123"]);
    const state = await readFile(join(cacheDir, "510k", ".pull-state.json"), "utf8");
    assert.doesNotMatch(state, /sekret/);
    assert.match(state, /skip=300/);
  });

  it("refuses to resume with other options, and starts over with restart", async () => {
    const cacheDir = join(work, "mismatch");
    const stop = new AbortController();
    await pullEndpoint({
      api: { baseUrl: api.url, requestsPerMinute: 0 },
      endpoint: k510,
      cacheDir,
      pageSize: 100,
      signal: stop.signal,
      onProgress: () => stop.abort(),
    });
    await assert.rejects(
      pullEndpoint({
        api: { baseUrl: api.url, requestsPerMinute: 0 },
        endpoint: k510,
        cacheDir,
        pageSize: 500,
      }),
      (error: Error & { code?: string }) =>
        error.code === "pull_state_invalid" && /--restart/.test(error.message),
    );
    const restarted = await pullEndpoint({
      api: { baseUrl: api.url, requestsPerMinute: 0 },
      endpoint: k510,
      cacheDir,
      pageSize: 500,
      restart: true,
    });
    assert.equal(restarted.resumed, false);
    assert.equal(restarted.records, RECORDS);
  });

  it("starts over when the source publishes a new export under an unfinished pull", async () => {
    const cacheDir = join(work, "new-export");
    const stop = new AbortController();
    await pullEndpoint({
      api: { baseUrl: api.url, requestsPerMinute: 0 },
      endpoint: pma,
      cacheDir,
      pageSize: 10,
      signal: stop.signal,
      onProgress: () => stop.abort(),
    });
    api.setRecords("device/pma", generateRecords("pma", 25), "2026-11-29");
    const result = await pullEndpoint({
      api: { baseUrl: api.url, requestsPerMinute: 0 },
      endpoint: pma,
      cacheDir,
      pageSize: 10,
    });
    assert.match(result.restartedBecause ?? "", /last_updated changed from 2026-11-28 to 2026-11-29/);
    assert.equal(result.records, 25);
    assert.equal(result.lastUpdated, "2026-11-29");
  });

  it("keeps to its rate limit, and retries a 429 and injected 5xx without losing the page", async () => {
    const limited = await startFakeApi({
      rateLimit: { requests: 3, windowMs: 1_000 },
      data: [{ endpoint: pma, records: generateRecords("pma", 40) }],
    });
    try {
      const client = createApiClient({
        baseUrl: limited.url,
        requestsPerMinute: 0,
        baseDelayMs: 50,
        maxDelayMs: 200,
        retries: 8,
      });
      limited.failNext(2, 502);
      const result = await pullEndpoint({
        api: client,
        endpoint: pma,
        cacheDir: join(work, "limited"),
        pageSize: 5,
      });
      assert.equal(result.records, 40);
      assert.ok(limited.stats.rateLimited > 0, "the fake API answered 429 at least once");
      assert.equal(limited.stats.failed, 2);
      const metrics = client.metrics();
      assert.equal(metrics.serverErrors, 2);
      assert.equal(metrics.rateLimited, limited.stats.rateLimited);
      // paced at its rate, the same pull never meets a 429
      const before = limited.stats.rateLimited;
      await new Promise((r) => setTimeout(r, 1_100));
      const paced = await pullEndpoint({
        api: { baseUrl: limited.url, requestsPerMinute: 150 },
        endpoint: pma,
        cacheDir: join(work, "paced"),
        pageSize: 5,
      });
      assert.equal(paced.records, 40);
      assert.equal(limited.stats.rateLimited, before);
    } finally {
      await limited.close();
    }
  });
});

import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { findEndpoint } from "../../../src/mirror/endpoints.ts";
import { JsonCache } from "../../../src/mirror/json-cache.ts";

const udi = findEndpoint("udi");
const record = (i: number) => ({
  public_device_record_key: `key-${i}`,
  device_description: `CoRoent Ant TLIF PEEK, 16x13x28mm 4° é ${i}`,
  size: i * 1.5,
});

describe("JsonCache", () => {
  it("finds records in compact pages (by byte range, non-ASCII text included), pretty files, arrays and single records", async () => {
    const cacheDir = await mkdtemp(join(tmpdir(), "pgshift-json-cache-"));
    try {
      const pages = join(cacheDir, "udi", "pages");
      await mkdir(pages, { recursive: true });
      const envelope = (from: number) => ({
        meta: { last_updated: "2026-11-01" },
        results: Array.from({ length: 50 }, (_, i) => record(from + i)),
      });
      await writeFile(join(pages, "page-000001.json"), JSON.stringify(envelope(0)));
      await writeFile(join(pages, "page-000002.json"), JSON.stringify(envelope(50), null, 2));
      await writeFile(join(cacheDir, "udi", "loose.json"), JSON.stringify([record(100), record(101)]));
      await writeFile(join(cacheDir, "udi", "one.json"), JSON.stringify(record(102)));
      const cache = new JsonCache(cacheDir, udi, { parsedFiles: 1 });
      for (const i of [0, 49, 17, 50, 99, 100, 101, 102]) {
        const hit = await cache.get([`key-${i}`]);
        assert.deepEqual(hit?.record, record(i), `key-${i}`);
      }
      assert.equal((await cache.get(["key-1"]))?.lastUpdated, "2026-11-01");
      assert.equal(await cache.get(["key-999"]), undefined);
      assert.equal(await cache.count(), 103);
      // a page rewritten without a record: that record is a miss, the others are found
      const changed = envelope(0);
      changed.results = changed.results.filter((r) => r.public_device_record_key !== "key-3");
      await new Promise((r) => setTimeout(r, 20));
      await writeFile(join(pages, "page-000001.json"), JSON.stringify(changed));
      assert.equal(await cache.get(["key-3"]), undefined);
      assert.deepEqual((await cache.get(["key-4"]))?.record, record(4));
      // written through: found at once, and wins over the page's copy
      await cache.put({ ...record(5), size: -1 });
      assert.equal((await cache.get(["key-5"]))?.record.size, -1);
      const fresh = new JsonCache(cacheDir, udi);
      assert.equal((await fresh.get(["key-5"]))?.record.size, -1);
    } finally {
      await rm(cacheDir, { recursive: true, force: true });
    }
  });
});

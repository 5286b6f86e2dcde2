import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { text } from "node:stream/consumers";
import { describe, it } from "node:test";
import { nextLink, redactApiKey } from "../../../src/mirror/api-client.ts";
import { findEndpoint, keyString, recordKey } from "../../../src/mirror/endpoints.ts";
import { apiSearch, contains, predicate } from "../../../src/mirror/fallback-reader.ts";
import { ContentFingerprint } from "../../../src/mirror/fingerprint.ts";
import { fileNameFor } from "../../../src/mirror/json-cache.ts";
import { RateLimiter } from "../../../src/mirror/rate-limiter.ts";
import { listZipEntries, openZipEntry, writeZip } from "../../../src/mirror/zip.ts";

describe("mirror endpoints and keys", () => {
  it("reads natural keys, composite ones included, and names unknown endpoints", () => {
    assert.deepEqual(recordKey(findEndpoint("510k"), { k_number: "K872032" }), ["K872032"]);
    assert.deepEqual(
      recordKey(findEndpoint("device/pma"), { pma_number: "P970051", supplement_number: "" }),
      ["P970051", ""],
    );
    assert.deepEqual(
      recordKey(findEndpoint("enforcement"), { recall_number: "Z-1", product_type: "Devices" }),
      ["Z-1", "Devices"],
    );
    assert.equal(recordKey(findEndpoint("udi"), { brand_name: "x" }), undefined);
    assert.equal(keyString(["K1"]), "K1");
    assert.equal(keyString(["P1", ""]), '["P1",""]');
    assert.throws(() => findEndpoint("drug"), /unknown endpoint "drug"; known: 510k, classification, event/);
  });
});

describe("fingerprint", () => {
  it("is the same whatever the order records arrive in, and different for different content", () => {
    const a = new ContentFingerprint();
    const b = new ContentFingerprint();
    a.add("K1", { x: 1 });
    a.add("K2", { x: 2 });
    b.add("K2", { x: 2 });
    const resumed = new ContentFingerprint(b.toString());
    resumed.add("K1", { x: 1 });
    assert.equal(resumed.toString(), a.toString());
    assert.equal(a.toString().length, 32);
    const c = new ContentFingerprint();
    c.add("K1", { x: 1 });
    c.add("K2", { x: 3 });
    assert.notEqual(c.toString(), a.toString());
  });
});

describe("search in the cache and on the API", () => {
  const record = {
    k_number: "K1",
    openfda: { device_class: "3", fei_number: ["1", "2"] },
    device_name: "Stent, Coronary",
  };
  it("containment follows jsonb's @> (objects, arrays as sets)", () => {
    assert.equal(contains(record, { openfda: { device_class: "3" } }), true);
    assert.equal(contains(record, { openfda: { fei_number: ["2"] } }), true);
    assert.equal(contains(record, { openfda: { fei_number: ["3"] } }), false);
    assert.equal(contains(record, { openfda: { device_class: 3 } }), false);
    assert.equal(predicate({ path: "/device_name", text: "CORONARY" })(record), true);
    assert.equal(predicate({ path: "/openfda/device_class", equals: "2" })(record), false);
  });
  it("turns a query into openFDA's search syntax", () => {
    assert.equal(
      apiSearch({ containing: { openfda: { device_class: "3", fei_number: ["1"] } } }),
      'openfda.device_class:"3" AND openfda.fei_number:"1"',
    );
    assert.equal(apiSearch({ path: "/k_number", equals: 'K"1' }), 'k_number:"K\\"1"');
  });
});

describe("API client helpers", () => {
  it("reads the Link next header and never prints the api_key", () => {
    assert.equal(
      nextLink('<https://api.fda.gov/device/510k.json?search_after=K1&limit=1000>; rel="next"'),
      "https://api.fda.gov/device/510k.json?search_after=K1&limit=1000",
    );
    assert.equal(nextLink(null), undefined);
    assert.equal(
      redactApiKey("https://x/y.json?api_key=SECRET&limit=1"),
      "https://x/y.json?api_key=***&limit=1",
    );
    assert.equal(fileNameFor("Z-0359/2013"), "Z-0359%2F2013");
    assert.equal(fileNameFor(".."), "%2E%2E");
  });
  it("spaces request starts at the rate", async () => {
    let now = 0;
    const limiter = new RateLimiter(600, () => now);
    await limiter.take();
    const started = Date.now();
    await limiter.take();
    // the second start waits one interval (100 ms) of the injected clock, slept for real
    assert.ok(Date.now() - started >= 90);
    now = 10_000;
    limiter.pause(50);
    const again = Date.now();
    await limiter.take();
    assert.ok(Date.now() - again >= 40);
  });
});

describe("zip", () => {
  it("writes and streams back deflated entries, and refuses corrupt ones", async () => {
    const dir = await mkdtemp(join(tmpdir(), "pgshift-zip-"));
    try {
      const big = JSON.stringify({
        results: Array.from({ length: 5000 }, (_, i) => ({ k_number: `K${i}` })),
      });
      const file = join(dir, "a.zip");
      await writeFile(
        file,
        writeZip([
          { name: "one.json", data: Buffer.from(big) },
          { name: "two.json", data: Buffer.from("[]") },
        ]),
      );
      const entries = await listZipEntries(file);
      assert.deepEqual(
        entries.map((e) => [e.name, e.method, e.size]),
        [
          ["one.json", 8, big.length],
          ["two.json", 8, 2],
        ],
      );
      assert.equal(await text(await openZipEntry(file, entries[0]!)), big);
      const bytes = writeZip([{ name: "x.json", data: Buffer.from(big) }]);
      bytes[100] ^= 0xff;
      await writeFile(join(dir, "bad.zip"), bytes);
      const [bad] = await listZipEntries(join(dir, "bad.zip"));
      await assert.rejects(async () => text(await openZipEntry(join(dir, "bad.zip"), bad!)));
      await writeFile(join(dir, "not.zip"), "hello");
      await assert.rejects(listZipEntries(join(dir, "not.zip")), /not a zip file/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("fingerprint of a copy", () => {
  it("ignores key order (jsonb reorders keys)", () => {
    const a = new ContentFingerprint();
    const b = new ContentFingerprint();
    a.add("K1", { b: 1, a: { d: [1, 2], c: "x" } });
    b.add("K1", { a: { c: "x", d: [1, 2] }, b: 1 });
    assert.equal(a.toString(), b.toString());
  });
});

describe("the example's generated records", () => {
  it("have a unique natural key per endpoint, past the three-letter product codes", async () => {
    const { generateRecords } = await import("../../../examples/openfda-mirror/generate-records.ts");
    const { OPENFDA_DEVICE_ENDPOINTS } = await import("../../../src/mirror/endpoints.ts");
    for (const endpoint of OPENFDA_DEVICE_ENDPOINTS) {
      // classification past its 17576 three-letter codes; the others past their 10000-per-year numbering
      const count = endpoint.name === "classification" ? 18_000 : 10_500;
      const keys = generateRecords(endpoint.name, count).map((r) => keyString(recordKey(endpoint, r)!));
      assert.equal(new Set(keys).size, count, endpoint.name);
    }
  });
});

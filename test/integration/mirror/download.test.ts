import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type FakeApi, startFakeApi } from "../../../examples/openfda-mirror/fake-api.ts";
import { generateRecords } from "../../../examples/openfda-mirror/generate-records.ts";
import { downloadEndpoint } from "../../../src/mirror/download-endpoint.ts";
import { findEndpoint } from "../../../src/mirror/endpoints.ts";
import { pullEndpoint } from "../../../src/mirror/pull-endpoint.ts";

const udi = findEndpoint("udi");
let api: FakeApi;
let work: string;

describe("downloadEndpoint: manifest -> changed partitions only -> streaming unzip", () => {
  before(async () => {
    work = await mkdtemp(join(tmpdir(), "pgshift-mirror-download-"));
    api = await startFakeApi({
      data: [
        {
          endpoint: udi,
          records: generateRecords("udi", 2_300),
          lastUpdated: "2026-11-20",
          partitionSize: 1_000,
        },
      ],
    });
  });
  after(async () => {
    await api?.close();
    await rm(work, { recursive: true, force: true });
  });

  it("fetches every partition once, then only those whose records, size or export date changed", async () => {
    const cacheDir = join(work, "cache");
    const manifestUrl = `${api.url}/download.json`;
    const first = await downloadEndpoint({ manifestUrl, endpoint: udi, cacheDir });
    assert.equal(first.partitions, 3);
    assert.equal(first.fetched.length, 3);
    assert.equal(first.records, 2_300);
    assert.equal(first.exportDate, "2026-11-20");
    const files = (await readdir(join(cacheDir, "udi", "partitions"))).sort();
    assert.deepEqual(files, [
      "device-udi-0001-of-0003.json",
      "device-udi-0002-of-0003.json",
      "device-udi-0003-of-0003.json",
    ]);
    const envelope = JSON.parse(await readFile(join(cacheDir, "udi", "partitions", files[2]!), "utf8"));
    assert.equal(envelope.results.length, 300);
    // the same records pulled page by page fingerprint the same as the bulk download
    const pulled = await pullEndpoint({
      api: { baseUrl: api.url, requestsPerMinute: 0 },
      endpoint: udi,
      cacheDir: join(work, "pulled"),
    });
    assert.equal(first.fingerprint, pulled.fingerprint);

    const again = await downloadEndpoint({ manifestUrl, endpoint: udi, cacheDir });
    assert.deepEqual(again.fetched, []);
    assert.equal(again.unchanged.length, 3);
    assert.equal(again.fingerprint, first.fingerprint);

    // 2500 records: partition 3 grows (300 -> 1000 records), partition 1 and 2 are the same
    api.setRecords("device/udi", generateRecords("udi", 2_500), "2026-11-20");
    const grown = await downloadEndpoint({ manifestUrl, endpoint: udi, cacheDir });
    assert.deepEqual(
      grown.fetched,
      ["device-udi-0001-of-0003.json", "device-udi-0002-of-0003.json", "device-udi-0003-of-0003.json"].slice(
        2,
      ),
    );
    assert.equal(grown.records, 2_500);

    // a new export with fewer partitions: every partition refetched, the stale one removed
    api.setRecords("device/udi", generateRecords("udi", 1_500), "2026-11-27");
    const shrunk = await downloadEndpoint({ manifestUrl, endpoint: udi, cacheDir });
    assert.equal(shrunk.partitions, 2);
    assert.equal(shrunk.fetched.length, 2);
    assert.equal(shrunk.records, 1_500);
    assert.equal(shrunk.exportDate, "2026-11-27");
    assert.equal(shrunk.removed.length, 3);
    assert.deepEqual((await readdir(join(cacheDir, "udi", "partitions"))).sort(), [
      "device-udi-0001-of-0002.json",
      "device-udi-0002-of-0002.json",
    ]);
    assert.equal(shrunk.freshness.how, "download");
  });
});

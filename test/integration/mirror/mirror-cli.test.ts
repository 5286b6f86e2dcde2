import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type FakeApi, startFakeApi } from "../../../examples/openfda-mirror/fake-api.ts";
import { generateRecords } from "../../../examples/openfda-mirror/generate-records.ts";
import { findEndpoint } from "../../../src/mirror/endpoints.ts";
import { PGSHIFT_BIN, runCli } from "../../helpers/cli.ts";
import { useTestDatabase } from "../../helpers/database.ts";

const db = useTestDatabase("mirror_cli");
const RECORDS = 12_000;
let api: FakeApi;
let work: string;

async function pagedKeys(dir: string): Promise<string[]> {
  const keys: string[] = [];
  for (const name of (await readdir(dir)).sort()) {
    const envelope = JSON.parse(await readFile(join(dir, name), "utf8"));
    for (const record of envelope.results) keys.push(record.k_number);
  }
  return keys;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("pgshift mirror pull | status | refresh | get", () => {
  before(async () => {
    work = await mkdtemp(join(tmpdir(), "pgshift-mirror-cli-"));
    api = await startFakeApi({
      maxSkip: 4_000,
      data: [
        {
          endpoint: findEndpoint("510k"),
          records: generateRecords("510k", RECORDS),
          lastUpdated: "2026-11-27",
        },
      ],
    });
  });
  after(async () => {
    await api?.close();
    await rm(work, { recursive: true, force: true });
  });

  it("a pull killed with SIGKILL resumes where it stopped: every record once, none lost", async () => {
    const cache = join(work, "cache");
    const args = [
      "mirror",
      "pull",
      "510k",
      "--cache",
      cache,
      "--api",
      api.url,
      "--page-size",
      "500",
      "--rate",
      "600",
      "--to",
      db().url,
    ];
    const child = spawn(process.execPath, [PGSHIFT_BIN, ...args], { stdio: "ignore" });
    const closed = new Promise((resolve) => child.on("close", resolve));
    const state = join(cache, "510k", ".pull-state.json");
    for (let i = 0; i < 400; i++) {
      const pages = await readFile(state, "utf8").then(
        (t) => JSON.parse(t).pages as number,
        () => 0,
      );
      if (pages >= 10) break;
      await sleep(25);
    }
    child.kill("SIGKILL");
    await closed;
    const saved = JSON.parse(await readFile(state, "utf8"));
    assert.equal(saved.done, false);
    assert.ok(saved.pages >= 10 && saved.pages < RECORDS / 500, `killed after ${saved.pages} pages`);
    const resumed = await runCli(["--json", ...args]);
    assert.equal(resumed.code, 0, resumed.stderr);
    const result = JSON.parse(resumed.stdout);
    assert.equal(result.status, "complete");
    assert.equal(result.resumed, true);
    assert.equal(result.records, RECORDS);
    assert.ok(result.pagesThisRun <= RECORDS / 500 - saved.pages + 1);
    const keys = await pagedKeys(join(cache, "510k", "pages"));
    assert.equal(keys.length, RECORDS);
    assert.equal(new Set(keys).size, RECORDS);

    const status = await runCli([
      "mirror",
      "status",
      "--endpoint",
      "510k",
      "--endpoint",
      "udi",
      "--to",
      db().url,
    ]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /510k +2026-11-27 +\S+ +12000 +[0-9a-f]{12} +168\.0 h +\d+ min +fresh/);
    assert.match(status.stdout, /udi .*never.*STALE/);

    const refresh = await runCli([
      "mirror",
      "refresh",
      "--cache",
      cache,
      "--schema",
      "fda",
      "--to",
      db().url,
    ]);
    assert.equal(refresh.code, 0, refresh.stderr);
    assert.match(refresh.stdout, /version 1 is live in schema fda/);
    assert.match(refresh.stdout, /510k +12000 .*identical/);
    assert.match(
      refresh.stdout,
      /not in the cache \(left out\): classification, event, recall, enforcement, pma, udi/,
    );

    const get = await runCli([
      "mirror",
      "get",
      "510k",
      "K000042",
      "K999999",
      "--cache",
      cache,
      "--api",
      api.url,
      "--schema",
      "fda",
      "--to",
      db().url,
    ]);
    assert.equal(get.code, 0, get.stderr);
    assert.match(get.stdout, /K000042: found \(tier postgres, age \d+ s\)/);
    assert.match(get.stdout, /K999999: no such record \(tier api, age 0 s\); postgres: miss; cache: miss/);
  });

  it("download fetches the manifest's partitions, then none while they are unchanged", async () => {
    const cache = join(work, "bulk");
    const args = [
      "mirror",
      "download",
      "510k",
      "--cache",
      cache,
      "--manifest",
      `${api.url}/download.json`,
      "--to",
      db().url,
    ];
    const first = await runCli(args);
    assert.equal(first.code, 0, first.stderr);
    assert.match(
      first.stdout,
      /download 510k: export 2026-11-27, 12000 records in 3 partitions; fetched 3, unchanged 0, removed 0/,
    );
    const second = await runCli(args);
    assert.match(second.stdout, /12000 records in 3 partitions; fetched 0, unchanged 3, removed 0/);
    const status = await runCli(["mirror", "status", "--endpoint", "510k", "--to", db().url]);
    assert.match(status.stdout, /510k +2026-11-27 +\S+ +12000 /);
  });

  it("bad input is a usage error with exit code 2", async () => {
    const unknown = await runCli([
      "mirror",
      "pull",
      "drug",
      "--cache",
      work,
      "--api",
      api.url,
      "--no-record",
    ]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown endpoint "drug"; known: 510k/);
    const size = await runCli([
      "mirror",
      "pull",
      "510k",
      "--cache",
      work,
      "--api",
      api.url,
      "--page-size",
      "5000",
      "--no-record",
    ]);
    assert.equal(size.code, 2);
    assert.match(size.stderr, /page size must be a whole number from 1 to 1000/);
  });
});

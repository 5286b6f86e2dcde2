import assert from "node:assert/strict";
import { test } from "node:test";
import { alterSystemSql, confSnippet, formatMemory, parseMemory, tune } from "../../../src/provision/tune.ts";

const GiB = 1024 ** 3;

function asConf(result: ReturnType<typeof tune>): string {
  return confSnippet(result.settings);
}

test("a 2GB, 2-core web server: 1/4 of RAM shared, wal_buffers rounded up to 16MB, work_mem floored at 4MB", () => {
  const result = tune({ memoryBytes: 2 * GiB, cpus: 2, workload: "web", storage: "ssd", pgVersion: 16 });
  assert.equal(
    asConf(result),
    [
      "max_connections = 200",
      "shared_buffers = '512MB'",
      "effective_cache_size = '1536MB'",
      "maintenance_work_mem = '128MB'",
      "checkpoint_completion_target = 0.9",
      "wal_buffers = '16MB'",
      "default_statistics_target = 100",
      "random_page_cost = 1.1",
      "effective_io_concurrency = 200",
      // (2097152 - 524288) / ((200 + 8) * 3) = 2520kB, below pgtune's 4MB floor
      "work_mem = '4MB'",
      "huge_pages = 'off'",
      "min_wal_size = '1GB'",
      "max_wal_size = '4GB'",
      "jit = 'off'",
      "wal_compression = 'lz4'",
    ].join("\n"),
  );
  assert.deepEqual(result.warnings, []);
});

test("a 16GB, 4-core web server with 100 connections gets parallel settings and huge pages", () => {
  const result = tune({ memoryBytes: 16 * GiB, cpus: 4, connections: 100, workload: "web", storage: "ssd" });
  assert.equal(
    asConf(result),
    [
      "max_connections = 100",
      "shared_buffers = '4GB'",
      "effective_cache_size = '12GB'",
      "maintenance_work_mem = '1GB'",
      "checkpoint_completion_target = 0.9",
      "wal_buffers = '16MB'",
      "default_statistics_target = 100",
      "random_page_cost = 1.1",
      "effective_io_concurrency = 200",
      // (16777216 - 4194304) / ((100 + 4) * 3) = 40329.8kB
      "work_mem = '40329kB'",
      "huge_pages = 'try'",
      "min_wal_size = '1GB'",
      "max_wal_size = '4GB'",
      "jit = 'off'",
      "wal_compression = 'lz4'",
      "max_worker_processes = 4",
      "max_parallel_workers_per_gather = 2",
      "max_parallel_workers = 4",
      "max_parallel_maintenance_workers = 2",
    ].join("\n"),
  );
});

test("a 64GB, 32-core data warehouse on HDD: maintenance capped at 8GB, autovacuum capped at 2GB, workers uncapped per gather", () => {
  const result = tune({ memoryBytes: 64 * GiB, cpus: 32, workload: "dw", storage: "hdd", pgVersion: 17 });
  assert.equal(
    asConf(result),
    [
      "max_connections = 40",
      "shared_buffers = '16GB'",
      "effective_cache_size = '48GB'",
      "maintenance_work_mem = '8GB'",
      "checkpoint_completion_target = 0.9",
      "wal_buffers = '16MB'",
      "default_statistics_target = 500",
      "random_page_cost = 4",
      "effective_io_concurrency = 2",
      // (67108864 - 16777216) / ((40 + 32) * 3) / 2 = 116508.4kB
      "work_mem = '116508kB'",
      "huge_pages = 'try'",
      "min_wal_size = '4GB'",
      "max_wal_size = '16GB'",
      "wal_compression = 'lz4'",
      "autovacuum_max_workers = 5",
      "autovacuum_work_mem = '2GB'",
      "max_worker_processes = 32",
      "max_parallel_workers_per_gather = 16",
      "max_parallel_workers = 32",
      "max_parallel_maintenance_workers = 4",
    ].join("\n"),
  );
  const restart = result.settings.filter((s) => s.restart).map((s) => s.name);
  assert.deepEqual(restart, [
    "max_connections",
    "shared_buffers",
    "wal_buffers",
    "huge_pages",
    "autovacuum_max_workers",
    "max_worker_processes",
  ]);
});

test("desktop: 1/16 of RAM shared, wal_level minimal without senders; ALTER SYSTEM quotes names and values", () => {
  const result = tune({ memoryBytes: 8 * GiB, workload: "desktop", storage: "san", pgVersion: 14 });
  const byName = Object.fromEntries(result.settings.map((s) => [s.name, s.value]));
  assert.equal(byName.shared_buffers, "512MB");
  assert.equal(byName.effective_cache_size, "2GB");
  assert.equal(byName.wal_level, "minimal");
  assert.equal(byName.max_wal_senders, "0");
  assert.equal(byName.wal_compression, "on");
  assert.equal(byName.effective_io_concurrency, "300");
  assert.equal(byName.jit, undefined);
  assert.equal(
    alterSystemSql(result.settings.slice(0, 2)),
    `ALTER SYSTEM SET "max_connections" = '20';\nALTER SYSTEM SET "shared_buffers" = '512MB';`,
  );
});

test("memory parsing and formatting, and bad input refused", () => {
  assert.equal(parseMemory("16GB"), 16 * GiB);
  assert.equal(parseMemory("512mb"), 512 * 1024 ** 2);
  assert.equal(parseMemory("1.5GB"), 1.5 * GiB);
  assert.equal(formatMemory(1536 * 1024), "1536MB");
  assert.equal(formatMemory(40329), "40329kB");
  assert.throws(() => parseMemory("lots"), /memory must look like/);
  assert.throws(() => tune({ memoryBytes: GiB, workload: "batch" as "web" }), /workload must be one of/);
  assert.deepEqual(tune({ memoryBytes: 128 * 1024 ** 2 }).warnings, [
    "pgtune's formulas are not meant for machines under 256MB of RAM",
  ]);
});

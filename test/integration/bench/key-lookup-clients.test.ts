import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import { kNumber } from "../../../bench/generate-documents.ts";
import { KeyLookupClients, summarizeRuns } from "../../../bench/lib/key-lookup-clients.ts";
import { keyLookupSql } from "../../../bench/lib/key-lookup-methods.ts";
import { DocumentStore } from "../../../src/documents/document-store.ts";
import { useTestDatabase } from "../../helpers/database.ts";

const db = useTestDatabase("bench_lookups");

test("summarizeRuns takes p50 and p99 over every lookup of every run, and the mean rate", () => {
  const summary = summarizeRuns([
    { latencies: [1, 1, 1, 1, 1, 1, 1, 1, 1, 1], qps: 1000 },
    { latencies: [2, 2, 2, 2, 2, 2, 2, 2, 2, 50], qps: 3000 },
  ]);
  assert.equal(summary.queries, 20);
  assert.equal(summary.p50_ms, 1);
  assert.equal(summary.p99_ms, 50);
  assert.deepEqual(summary.p99_ms_runs, [1, 50]);
  assert.equal(summary.qps, 2000);
  assert.equal(summary.start_lag_p99_ms, undefined);
});

test("key lookup clients in worker threads look keys up through DocumentStore, closed and open loop", async () => {
  const store = new DocumentStore(db().pool, { table: "fda_docs", keyColumns: ["k_number"] });
  await store.ensureTable();
  for (let i = 0; i < 20; i++) await store.put(kNumber(i), { k_number: kNumber(i), i });
  const target = { url: db().url, schema: "public", table: "fda_docs", keyColumn: "k_number" };
  const group = await KeyLookupClients.start({
    ...target,
    storeModule: fileURLToPath(new URL("../../../src/documents/document-store.ts", import.meta.url)),
    sql: keyLookupSql(target),
    docs: 20,
    seed: 1,
    clients: 4,
    threads: 2,
    warmup: 5,
  });
  try {
    const closed = await group.run({ durationMs: 300 });
    assert.ok(closed.latencies.length > 10, `only ${closed.latencies.length} lookups`);
    assert.ok(closed.latencies.every((ms) => ms > 0));
    assert.equal(closed.startLags, undefined);
    // 4 clients × 40/s for 0.5 s: 80 lookups due, each charged from when it was due
    const open = await group.run({ durationMs: 500, ratePerClient: 40 });
    assert.equal(open.latencies.length, 80);
    assert.equal(open.startLags!.length, 80);
    assert.ok(
      open.startLags!.every((lag) => lag >= 0),
      "no lookup is sent before it is due",
    );
    assert.ok(open.latencies.every((ms, i) => ms >= open.startLags![i]!));
  } finally {
    await group.close();
  }
  // The threads' connections (default application_name) are closed; the server may take a moment.
  let open = -1;
  for (let i = 0; i < 50 && open !== 0; i++) {
    if (i > 0) await new Promise((resolve) => setTimeout(resolve, 50));
    const { rows } = await db().pool.query(
      "select count(*)::int as n from pg_stat_activity where datname = current_database() and application_name = ''",
    );
    open = rows[0].n;
  }
  assert.equal(open, 0, "the threads closed their connections");
});

import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { test } from "node:test";
import { refreshDataset, registerRefreshMetrics, singleTableDataset } from "../../../src/index.ts";
import { startHealthServer } from "../../../src/serve/index.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import { writeTemp } from "../documents/fixtures.ts";

const db = useTestDatabase("refresh_metrics");

const ndjson = (records: object[]) => `${records.map((r) => JSON.stringify(r)).join("\n")}\n`;

test("serve's /metrics: the live version and the newest run's outcome and time per dataset", async () => {
  const health = await startHealthServer({ pool: db().pool });
  try {
    registerRefreshMetrics(health, db().pool);
    const scrape = async () => (await fetch(`${health.url}/metrics`)).text();
    // before any refresh: no refresh families (the table does not exist yet), the rest still served
    assert.doesNotMatch(await scrape(), /^# HELP pgshift_refresh_/m);

    const path = await writeTemp("m.ndjson", ndjson([{ id: "a" }, { id: "b" }]));
    const dataset = singleTableDataset({ schema: "met", table: "items", from: `ndjson:${path}`, key: "/id" });
    const before = Date.now() / 1000;
    await refreshDataset({ pool: db().pool, dataset });
    await refreshDataset({ pool: db().pool, dataset });
    let text = await scrape();
    assert.match(text, /^pgshift_refresh_live_version\{dataset="met"\} 2$/m);
    assert.match(text, /^pgshift_refresh_last_outcome\{dataset="met",outcome="switched"\} 1$/m);
    assert.match(text, /^pgshift_refresh_last_outcome\{dataset="met",outcome="failed"\} 0$/m);
    const at = Number(/^pgshift_refresh_last_run_timestamp_seconds\{dataset="met"\} (\S+)$/m.exec(text)![1]);
    assert.ok(at >= before - 5 && at <= Date.now() / 1000 + 5, String(at));
    assert.match(text, /^pgshift_refresh_live_switched_timestamp_seconds\{dataset="met"\} \d/m);

    // a run that fails verification: live stays 2, the outcome says so
    await writeFile(path, ndjson([{ id: "a" }]));
    const failed = await refreshDataset({
      pool: db().pool,
      dataset: { ...dataset, checks: ["select count(*) = 99 from items"] },
    });
    assert.equal(failed.status, "verification_failed");
    text = await scrape();
    assert.match(text, /^pgshift_refresh_live_version\{dataset="met"\} 2$/m);
    assert.match(text, /^pgshift_refresh_last_outcome\{dataset="met",outcome="verification_failed"\} 1$/m);
    assert.match(text, /^pgshift_refresh_last_outcome\{dataset="met",outcome="switched"\} 0$/m);
  } finally {
    await health.close();
  }
});

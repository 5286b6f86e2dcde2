import { createReadStream, createWriteStream } from "node:fs";
import { once } from "node:events";
import { join } from "node:path";
import { createInterface } from "node:readline";
import pg from "pg";
import { generateDocuments } from "../generate-documents.ts";
import type { BenchContext, Scenario } from "../lib/context.ts";
import { freshDatabase, settle } from "../lib/instance.ts";
import { round } from "../lib/measure.ts";
import { emptyScenario, ratio, type ScenarioResult } from "../lib/result.ts";
import { refreshDataset, rollbackDataset, singleTableDataset } from "../../src/refresh/index.ts";

const PROBE_CLIENTS = 20;
const CHANGED_EVERY = 100; // 1 % of the records changed

/** Writes every CHANGED_EVERY-th record of the NDJSON file with one field changed: the delta source. */
async function writeDelta(from: string, to: string): Promise<number> {
  const out = createWriteStream(to);
  let i = 0;
  let written = 0;
  for await (const line of createInterface({ input: createReadStream(from) })) {
    if (line && i++ % CHANGED_EVERY === 0) {
      const record = JSON.parse(line) as Record<string, unknown>;
      record.city = `Changed ${i}`;
      if (!out.write(`${JSON.stringify(record)}\n`)) await once(out, "drain");
      written++;
    }
  }
  out.end();
  await once(out, "finish");
  return written;
}

/**
 * Blue-green refresh of a document dataset (GIN-indexed, keyed by k_number) with 20 probe readers: a full
 * reload and a 1 %-changed delta of the same dataset measured side by side, then a rollback.
 */
export function refreshScenario(options: { docs: number }): Scenario {
  return async (ctx: BenchContext): Promise<ScenarioResult> => {
    const result = emptyScenario(
      "refresh",
      `pgshift refresh of ${options.docs.toLocaleString("en-US")} API-like documents (GIN index) with ${PROBE_CLIENTS} probe readers: full reload vs a delta of 1 % changed records, then rollback.`,
    );
    const docs =
      ctx.documents && ctx.documents.count === options.docs
        ? ctx.documents
        : await generateDocuments({ outDir: join(ctx.workDir, "refresh-docs"), count: options.docs });
    const deltaPath = join(ctx.workDir, "refresh-delta.ndjson");
    const changed = await writeDelta(docs.ndjsonPath, deltaPath);
    result.params = { docs: docs.count, changed, probe_clients: PROBE_CLIENTS };
    const url = await freshDatabase(ctx.instance.adminUrl, "bench_refresh");
    const pool = new pg.Pool({ connectionString: url, max: PROBE_CLIENTS + 8 });
    try {
      const dataset = (from: string) =>
        singleTableDataset({ schema: "bench", table: "device", from, key: "/k_number", gin: true });
      ctx.log("refresh: first load (not measured)");
      await refreshDataset({ pool, dataset: dataset(`ndjson:${docs.ndjsonPath}`), keep: 1 });
      await settle(ctx.instance.adminUrl);
      ctx.log("refresh: full reload with probe readers");
      const full = await refreshDataset({
        pool,
        dataset: dataset(`ndjson:${docs.ndjsonPath}`),
        probe: PROBE_CLIENTS,
        keep: 1,
      });
      await settle(ctx.instance.adminUrl);
      ctx.log("refresh: delta (1 % changed) with probe readers");
      const delta = await refreshDataset({
        pool,
        dataset: dataset(`ndjson:${deltaPath}`),
        delta: true,
        probe: PROBE_CLIENTS,
        keep: 1,
      });
      ctx.log("refresh: rollback");
      const back = await rollbackDataset({ pool, dataset: "bench", reason: "bench" });
      const failed = (full.probe?.failed ?? 0) + (delta.probe?.failed ?? 0);
      result.measurements = {
        full: { wallMs: round(full.durationMs), stepMs: full.stepMs, swap: full.swap, probe: full.probe },
        delta: {
          wallMs: round(delta.durationMs),
          stepMs: delta.stepMs,
          swap: delta.swap,
          probe: delta.probe,
          table: delta.tables[0],
        },
        rollback: { wallMs: round(back.durationMs), swap: back.swap },
      };
      result.ratios.refresh_delta_vs_full_wall = ratio(
        "delta refresh wall (1 % changed) / full reload wall of the same dataset",
        delta.durationMs / full.durationMs,
        { op: "<=", value: 0.5 },
      );
      result.ratios.refresh_failed_queries = ratio(
        `probe queries that failed during both refreshes (${PROBE_CLIENTS} readers)`,
        failed,
        { op: "<=", value: 0 },
      );
      result.ratios.refresh_swap_lock_ms = ratio(
        "longest schema-swap lock hold in ms",
        Math.max(full.swap?.lockHeldMs ?? NaN, delta.swap?.lockHeldMs ?? NaN),
        { op: "<", value: 100 },
      );
      result.ratios.refresh_reader_p99_ms = ratio(
        "reader p99 in ms over build and switch (worst of the two refreshes)",
        Math.max(full.probe?.p99Ms ?? NaN, delta.probe?.p99Ms ?? NaN),
        { op: "<", value: 250 },
      );
      result.ratios.refresh_rollback_ms = ratio("rollback wall in ms", back.durationMs, {
        op: "<",
        value: 1000,
      });
      result.tables.push({
        title: "Refresh steps (ms)",
        headers: [
          "run",
          "wall",
          "build",
          "verify",
          "snapshot-guard",
          "swap",
          "lock held",
          "reader p99",
          "failed",
        ],
        rows: [full, delta].map((r) => [
          r.mode,
          round(r.durationMs),
          round(r.stepMs.build ?? 0),
          round(r.stepMs.verify ?? 0),
          round(r.stepMs["snapshot-guard"] ?? 0),
          round(r.stepMs.swap ?? 0),
          round(r.swap?.lockHeldMs ?? 0, 1),
          round(r.probe?.p99Ms ?? 0, 1),
          r.probe?.failed ?? 0,
        ]),
      });
    } finally {
      await pool.end();
    }
    return result;
  };
}

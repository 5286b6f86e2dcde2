import { createReadStream, createWriteStream } from "node:fs";
import { once } from "node:events";
import { join } from "node:path";
import { createInterface } from "node:readline";
import pg from "pg";
import { generateDocuments } from "../generate-documents.ts";
import type { BenchContext, Scenario } from "../lib/context.ts";
import { freshDatabase, settle } from "../lib/instance.ts";
import { redactSecrets } from "../lib/pgshift.ts";
import { round } from "../lib/measure.ts";
import { emptyScenario, ratio, type ScenarioResult } from "../lib/result.ts";
import { refreshDataset, rollbackDataset, singleTableDataset } from "../../src/refresh/index.ts";
import {
  measurePgbouncerRefresh,
  PGBOUNCER_MAX_DOCS,
  REFRESH_STEPS_HEADERS,
  REFRESH_STEPS_TITLE,
} from "./refresh-pgbouncer.ts";

const PROBE_CLIENTS = 20;
const CHANGED_EVERY = 100; // 1 % of the records changed

/**
 * Writes every CHANGED_EVERY-th record (from `offset` on) of the NDJSON file with one field changed: a
 * delta source; successive deltas take different offsets, as a schedule of refreshes changes different rows.
 */
async function writeDelta(from: string, to: string, offset: number): Promise<number> {
  const out = createWriteStream(to);
  let i = 0;
  let written = 0;
  for await (const line of createInterface({ input: createReadStream(from) })) {
    if (line && i++ % CHANGED_EVERY === offset) {
      const record = JSON.parse(line) as Record<string, unknown>;
      record.city = `Changed ${offset} ${i}`;
      if (!out.write(`${JSON.stringify(record)}\n`)) await once(out, "drain");
      written++;
    }
  }
  out.end();
  await once(out, "finish");
  return written;
}

/**
 * Blue-green refresh of a document dataset (GIN-indexed, keyed by k_number, --keep 1) with 20 probe
 * readers: a full reload, the first 1 %-changed delta after it, and a delta in the steady state of a delta
 * schedule (its build reuses the spare the deltas before it kept), measured side by side; then a rollback.
 * Then the same through a real PgBouncer (transaction mode): two databases behind one alias, a full
 * refresh switched by PAUSE/RELOAD/RESUME and one by RELOAD only, readers on the alias, then a rollback.
 */
export function refreshScenario(options: { docs: number }): Scenario {
  return async (ctx: BenchContext): Promise<ScenarioResult> => {
    const result = emptyScenario(
      "refresh",
      `pgshift refresh of ${options.docs.toLocaleString("en-US")} API-like documents (GIN index) with ${PROBE_CLIENTS} probe readers, --keep 1: full reload vs the first 1 %-changed delta after it vs a delta in the steady state of a delta schedule (its build reuses the spare), then rollback. Then through PgBouncer (transaction mode, two databases behind one alias, readers through it) on the first ${Math.min(options.docs, PGBOUNCER_MAX_DOCS).toLocaleString("en-US")} of those documents (three full builds): a full refresh switched by PAUSE/RELOAD/RESUME, one by RELOAD only, then rollback.`,
    );
    const docs =
      ctx.documents && ctx.documents.count === options.docs
        ? ctx.documents
        : await generateDocuments({ outDir: join(ctx.workDir, "refresh-docs"), count: options.docs });
    const deltaPaths = [0, 33, 66].map((offset) => join(ctx.workDir, `refresh-delta-${offset}.ndjson`));
    let changed = 0;
    for (const [i, path] of deltaPaths.entries())
      changed = await writeDelta(docs.ndjsonPath, path, [0, 33, 66][i]!);
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
      await settle(ctx.instance.adminUrl);
      ctx.log("refresh: first delta after the full reload (1 % changed) with probe readers");
      const firstDelta = await refreshDataset({
        pool,
        dataset: dataset(`ndjson:${deltaPaths[0]}`),
        delta: true,
        probe: PROBE_CLIENTS,
        keep: 1,
      });
      // the spare the first delta kept is the first load (every row's loaded_at differs from live's): this
      // one copies live too and keeps the full reload's version, which differs from live in the deltas' rows
      ctx.log("refresh: second delta (not measured)");
      await refreshDataset({ pool, dataset: dataset(`ndjson:${deltaPaths[1]}`), delta: true, keep: 1 });
      await settle(ctx.instance.adminUrl);
      ctx.log("refresh: steady-state delta (1 % changed) with probe readers");
      const delta = await refreshDataset({
        pool,
        dataset: dataset(`ndjson:${deltaPaths[2]}`),
        delta: true,
        probe: PROBE_CLIENTS,
        keep: 1,
      });
      ctx.log("refresh: rollback");
      const back = await rollbackDataset({ pool, dataset: "bench", reason: "bench" });
      const measured = [full, firstDelta, delta];
      const failed = measured.reduce((sum, r) => sum + (r.probe?.failed ?? 0), 0);
      result.measurements = {
        full: { wallMs: round(full.durationMs), stepMs: full.stepMs, swap: full.swap, probe: full.probe },
        firstDelta: {
          wallMs: round(firstDelta.durationMs),
          stepMs: firstDelta.stepMs,
          swap: firstDelta.swap,
          probe: firstDelta.probe,
          table: firstDelta.tables[0],
        },
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
        "delta refresh wall (1 % changed, steady state of a delta schedule: reuses the spare) / full reload wall of the same dataset",
        delta.durationMs / full.durationMs,
        { op: "<=", value: 0.5 },
        delta.tables[0]?.recycledFrom ? undefined : "the build did not reuse the spare",
      );
      result.ratios.refresh_first_delta_vs_full_wall = ratio(
        "first delta after a full reload (copies live and indexes it again) / full reload wall",
        firstDelta.durationMs / full.durationMs,
        { op: "<=", value: 0.5 },
      );
      result.ratios.refresh_failed_queries = ratio(
        `probe queries that failed during the three measured refreshes (${PROBE_CLIENTS} readers)`,
        failed,
        { op: "<=", value: 0 },
      );
      result.ratios.refresh_swap_lock_ms = ratio(
        "longest schema-swap lock hold in ms",
        Math.max(...measured.map((r) => r.swap?.lockHeldMs ?? NaN)),
        { op: "<", value: 100 },
      );
      result.ratios.refresh_reader_p99_ms = ratio(
        "reader p99 in ms over build and switch (worst of the three refreshes)",
        Math.max(...measured.map((r) => r.probe?.p99Ms ?? NaN)),
        { op: "<", value: 250 },
      );
      result.ratios.refresh_mixed_window_ms = ratio(
        "mixed-version window in ms: longest overlap of two versions answering readers (worst of the three refreshes)",
        Math.max(...measured.map((r) => r.probe?.mixedWindowMs ?? NaN)),
        null,
      );
      result.ratios.refresh_rollback_ms = ratio("rollback wall in ms", back.durationMs, {
        op: "<",
        value: 1000,
      });
      result.tables.push({
        title: REFRESH_STEPS_TITLE,
        headers: [...REFRESH_STEPS_HEADERS],
        rows: (
          [
            ["full", full],
            ["first delta", firstDelta],
            ["steady delta", delta],
          ] as const
        ).map(([run, r]) => [
          run,
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
    // the schema-mode figures stand on their own: a PgBouncer failure (or no pgbouncer) leaves them reported
    try {
      await measurePgbouncerRefresh(ctx, result, {
        ndjsonPath: docs.ndjsonPath,
        docs: docs.count,
        probeClients: PROBE_CLIENTS,
      });
    } catch (error) {
      result.status = "partial";
      result.notes.push(
        `PgBouncer part failed: ${redactSecrets(error instanceof Error ? error.message : String(error)).slice(0, 800)}`,
      );
    }
    return result;
  };
}

import { createReadStream, createWriteStream } from "node:fs";
import { once } from "node:events";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { startAliasBouncer } from "../../test/helpers/pgbouncer.ts";
import { generateDocuments } from "../generate-documents.ts";
import type { BenchContext, Scenario } from "../lib/context.ts";
import { freshDatabase, settle } from "../lib/instance.ts";
import { round } from "../lib/measure.ts";
import { emptyScenario, ratio, type ScenarioResult } from "../lib/result.ts";
import {
  type PgbouncerRefreshResult,
  type PgbouncerSwitch,
  refreshViaPgbouncer,
  rollbackViaPgbouncer,
  singleTableDataset,
} from "../../src/refresh/index.ts";

/**
 * The refresh scenario's PgBouncer part builds three full versions (first load, two measured): at most
 * this many of the scenario's documents, so it adds well under a minute at the quick size. The
 * `refresh-pgbouncer` scenario (full runs) takes the size instead.
 */
export const PGBOUNCER_MAX_DOCS = 25_000;
const ALIAS = "bench_app";

/** The table both refresh scenarios fill: one row per measured refresh. */
export const REFRESH_STEPS_TITLE = "Refresh steps (ms)";
export const REFRESH_STEPS_HEADERS = [
  "run",
  "wall",
  "build",
  "verify",
  "snapshot-guard",
  "swap",
  "lock held",
  "reader p99",
  "failed",
] as const;

/** The first `count` records of an NDJSON file: the same generated documents, fewer of them. */
async function writeHead(from: string, to: string, count: number): Promise<number> {
  const out = createWriteStream(to);
  let written = 0;
  const lines = createInterface({ input: createReadStream(from) });
  for await (const line of lines) {
    if (!line) continue;
    if (written === count) break;
    if (!out.write(`${line}\n`)) await once(out, "drain");
    written++;
  }
  lines.close();
  out.end();
  await once(out, "finish");
  return written;
}

/**
 * Blue-green refresh across two databases behind one alias of a real PgBouncer (transaction mode) in
 * front of the bench's instance: a first load (not measured), a full refresh switched by
 * PAUSE/RELOAD/RESUME (`pgbouncer`), one switched by RELOAD only (`pgbouncer-reload`), both with
 * `probeClients` readers connected through the alias, then a rollback. Adds its ratios, measurements
 * and table rows to `result`.
 */
export async function measurePgbouncerRefresh(
  ctx: BenchContext,
  result: ScenarioResult,
  options: { ndjsonPath: string; docs: number; probeClients: number; maxDocs?: number },
): Promise<void> {
  const wanted = Math.min(options.docs, options.maxDocs ?? PGBOUNCER_MAX_DOCS);
  const path = join(ctx.workDir, "refresh-pgbouncer.ndjson");
  const docs = wanted === options.docs ? options.docs : await writeHead(options.ndjsonPath, path, wanted);
  const source = wanted === options.docs ? options.ndjsonPath : path;
  result.params.pgbouncer_docs = docs;
  const blue = await freshDatabase(ctx.instance.adminUrl, "bench_refresh_blue");
  const green = await freshDatabase(ctx.instance.adminUrl, "bench_refresh_green");
  const bouncer = await startAliasBouncer(ctx.instance.adminUrl, ALIAS, "bench_refresh_blue", {
    // PgBouncer's own default pool size: what an untuned deployment runs
    poolSize: 20,
  });
  try {
    const settings = (mode: PgbouncerSwitch["mode"]): PgbouncerSwitch => ({
      mode,
      adminUrl: bouncer.adminUrl,
      alias: ALIAS,
      configFile: bouncer.configFile,
      databases: { blue, green },
    });
    const dataset = singleTableDataset({
      schema: "bench",
      table: "device",
      from: `ndjson:${source}`,
      key: "/k_number",
      gin: true,
    });
    ctx.log(`refresh: PgBouncer first load, ${docs.toLocaleString("en-US")} documents (not measured)`);
    await refreshViaPgbouncer({ dataset, switch: settings("pgbouncer") });
    await settle(ctx.instance.adminUrl);
    ctx.log("refresh: PgBouncer full refresh (PAUSE/RELOAD/RESUME) with probe readers through the alias");
    const paused = await refreshViaPgbouncer({
      dataset,
      switch: settings("pgbouncer"),
      probe: options.probeClients,
    });
    await settle(ctx.instance.adminUrl);
    ctx.log("refresh: PgBouncer full refresh (RELOAD only) with probe readers through the alias");
    const reloaded = await refreshViaPgbouncer({
      dataset,
      switch: settings("pgbouncer-reload"),
      probe: options.probeClients,
    });
    ctx.log("refresh: PgBouncer rollback (PAUSE/RELOAD/RESUME)");
    const back = await rollbackViaPgbouncer({
      dataset: "bench",
      switch: settings("pgbouncer"),
      reason: "bench",
    });
    const measured = [paused, reloaded];
    const notSwitched = measured.filter((r) => r.status !== "switched");
    const caveat = notSwitched.length ? "a refresh did not switch (verification failed)" : undefined;
    const run = (r: PgbouncerRefreshResult) => ({
      wallMs: round(r.durationMs),
      status: r.status,
      stepMs: r.stepMs,
      switch: r.switch,
      probe: r.probe,
    });
    result.measurements.pgbouncer = {
      docs,
      pause: run(paused),
      reload: run(reloaded),
      rollback: { wallMs: round(back.durationMs), switch: back.switch },
    };
    result.ratios.refresh_pgbouncer_failed_queries = ratio(
      `probe queries through the PgBouncer alias (transaction mode) that failed during the two measured refreshes (${options.probeClients} readers)`,
      measured.reduce((sum, r) => sum + (r.probe?.failed ?? 0), 0),
      { op: "<=", value: 0 },
      caveat,
    );
    result.ratios.refresh_pgbouncer_reader_p99_ms = ratio(
      "reader p99 in ms through the PgBouncer alias over build and switch (worst of the two refreshes)",
      Math.max(...measured.map((r) => r.probe?.p99Ms ?? NaN)),
      { op: "<", value: 250 },
      caveat,
    );
    result.ratios.refresh_pgbouncer_pause_ms = ratio(
      "PgBouncer PAUSE-to-RESUME window in ms (new queries through the alias stall for it), pgbouncer mode",
      paused.switch?.stallMs ?? null,
      null,
    );
    result.ratios.refresh_pgbouncer_mixed_window_ms = ratio(
      "mixed-version window in ms through the PgBouncer alias, pgbouncer mode (PAUSE: 0 expected)",
      paused.probe?.mixedWindowMs ?? null,
      null,
    );
    result.ratios.refresh_pgbouncer_reload_mixed_window_ms = ratio(
      "mixed-version window in ms through the PgBouncer alias, pgbouncer-reload mode (up to the longest transaction)",
      reloaded.probe?.mixedWindowMs ?? null,
      null,
    );
    result.ratios.refresh_pgbouncer_rollback_ms = ratio(
      "rollback through PgBouncer (PAUSE/RELOAD/RESUME) wall in ms",
      back.durationMs,
      { op: "<", value: 1000 },
    );
    let table = result.tables.find((t) => t.title === REFRESH_STEPS_TITLE);
    if (!table) {
      // standalone (the refresh-pgbouncer scenario): the switch in "swap", the PAUSE window in "lock held"
      table = { title: REFRESH_STEPS_TITLE, headers: [...REFRESH_STEPS_HEADERS], rows: [] };
      result.tables.push(table);
    }
    for (const [name, r] of [
      ["pgbouncer full", paused],
      ["pgbouncer-reload full", reloaded],
    ] as const)
      table.rows.push([
        name,
        round(r.durationMs),
        round(r.stepMs.build ?? 0),
        round(r.stepMs.verify ?? 0),
        "-",
        round(r.stepMs.switch ?? 0),
        r.switch?.stallMs != null ? round(r.switch.stallMs, 1) : "-",
        round(r.probe?.p99Ms ?? 0, 1),
        r.probe?.failed ?? 0,
      ]);
  } finally {
    await bouncer.stop();
  }
}

/**
 * The PgBouncer part alone at the size (1M documents unless `--docs`), in full runs: the switch
 * does not depend on the size, but the readers run through the alias during three full builds of it.
 */
export function refreshPgbouncerScenario(options: { docs: number; probeClients: number }): Scenario {
  return async (ctx: BenchContext): Promise<ScenarioResult> => {
    const result = emptyScenario(
      "refresh-pgbouncer",
      `pgshift refresh through a real PgBouncer (transaction mode, two databases behind one alias, ${options.probeClients} probe readers through it) of ${options.docs.toLocaleString("en-US")} API-like documents (GIN index), three full builds: a first load, a full refresh switched by PAUSE/RELOAD/RESUME, one by RELOAD only, then rollback.`,
    );
    const docs =
      ctx.documents && ctx.documents.count === options.docs
        ? ctx.documents
        : await generateDocuments({ outDir: join(ctx.workDir, "refresh-docs"), count: options.docs });
    result.params = { docs: docs.count, probe_clients: options.probeClients };
    await measurePgbouncerRefresh(ctx, result, {
      ndjsonPath: docs.ndjsonPath,
      docs: docs.count,
      probeClients: options.probeClients,
      maxDocs: docs.count,
    });
    return result;
  };
}

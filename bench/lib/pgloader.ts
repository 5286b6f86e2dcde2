import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { type MeasuredRun, runMeasured } from "./measure.ts";

/**
 * pgloader's load command for a SQLite file. Its defaults (workers, batch sizes, `create tables,
 * create indexes, reset sequences, foreign keys`) are what users get; the one cast is needed because
 * pgloader reads DATETIME columns as text dates and rejects ORM-style millisecond epochs (every row of
 * such a table fails): keeping them as bigint is the usual workaround, and is cheaper than a conversion.
 */
export function pgloaderCommand(sqlitePath: string, url: string, prefetchRows?: number): string {
  const withClause = "include drop, create tables, create indexes, reset sequences, foreign keys";
  return [
    "load database",
    `  from sqlite://${sqlitePath}`,
    `  into ${url}`,
    `  with ${withClause}${prefetchRows ? `, prefetch rows = ${prefetchRows}` : ""}`,
    "  cast type datetime to bigint drop typemod",
    ";",
    "",
  ].join("\n");
}

export interface PgloaderRun extends MeasuredRun {
  /** "COPY Threads Completion" from pgloader's summary: its data phase, in ms. */
  dataMs?: number;
  indexMs?: number;
  /** Errors pgloader counted in its summary (it exits 0 even when tables failed). */
  errors: number;
  rowsReported?: number;
}

/** pgloader prints durations as `6.840s`, `1m1.324s` or `1h2m3.5s`; returns ms. */
export function pgloaderDurationMs(line: string | undefined): number | undefined {
  const match = line ? /(?:(\d+)h)?(?:(\d+)m)?([\d.]+)s\s*$/.exec(line.trim()) : null;
  if (!match) return undefined;
  const [, hours, minutes, secs] = match;
  return ((Number(hours ?? 0) * 60 + Number(minutes ?? 0)) * 60 + Number(secs)) * 1000;
}

/** Reads pgloader's summary table. */
export function parsePgloaderSummary(
  output: string,
): Pick<PgloaderRun, "dataMs" | "indexMs" | "errors" | "rowsReported"> {
  const lines = output.split("\n");
  const find = (label: string) => lines.find((line) => line.trimStart().startsWith(label));
  let errors = 0;
  for (const line of lines) {
    if (/\bERROR\b/.test(line) && /^\d{4}-\d\d-\d\dT/.test(line)) errors++;
  }
  const total = find("Total import time");
  let rowsReported: number | undefined;
  if (total) {
    // "Total import time   ✓   600000   95.7 MB   11.052s": errors (✓ when none), rows, bytes, time
    const [errorCell, rowsCell] = total
      .trim()
      .replace(/^Total import time/, "")
      .trim()
      .split(/\s+/);
    if (errorCell && errorCell !== "✓" && Number.isFinite(Number(errorCell)))
      errors = Math.max(errors, Number(errorCell));
    rowsReported = Number(rowsCell);
  }
  return {
    dataMs: pgloaderDurationMs(find("COPY Threads Completion")),
    indexMs: pgloaderDurationMs(find("Create Indexes")),
    errors,
    ...(rowsReported !== undefined && Number.isFinite(rowsReported) ? { rowsReported } : {}),
  };
}

/** pgloader's Lisp heap ran out (its known failure on large tables with its default batch sizes). */
export function heapExhausted(run: MeasuredRun): boolean {
  return /Heap exhausted/i.test(`${run.stdout}\n${run.stderr}`);
}

export async function runPgloader(options: {
  sqlitePath: string;
  url: string;
  scratchDir: string;
  /** `prefetch rows` (default: pgloader's own, 100000). */
  prefetchRows?: number;
}): Promise<PgloaderRun> {
  const loadFile = join(options.scratchDir, "pgloader.load");
  writeFileSync(loadFile, pgloaderCommand(options.sqlitePath, options.url, options.prefetchRows), {
    mode: 0o600,
  });
  const run = await runMeasured("pgloader", ["--no-ssl-cert-verification", loadFile], {
    cwd: options.scratchDir,
    timeoutMs: 25 * 60_000,
  });
  return { ...run, ...parsePgloaderSummary(`${run.stdout}\n${run.stderr}`) };
}

import type { BenchContext } from "../lib/context.ts";
import { type MeasuredRun, round } from "../lib/measure.ts";
import { failureText, parseJsonResult, pgshiftSupports, runPgshift, helpFailures } from "../lib/pgshift.ts";
import { emptyScenario, ratio, type ScenarioResult } from "../lib/result.ts";

/** Full verification (`pgshift verify`) of the sqlite scenario's import, timed against that import. */
export async function verifyScenario(ctx: BenchContext): Promise<ScenarioResult> {
  const result = emptyScenario(
    "verify",
    "Full verification (row counts and per-row content checksums on both sides) of the sqlite scenario's pgshift import, timed against that import.",
  );
  const target = { op: "<=" as const, value: 1.0 };
  const imported = ctx.sqliteImport;
  if (!imported) {
    result.status = "not available";
    result.notes.push(
      "not available: the sqlite scenario did not leave a completed pgshift import to verify.",
    );
    result.ratios.verify_vs_import_time = ratio("pgshift verify wall / pgshift import wall", null, target);
    return result;
  }
  if (!(await pgshiftSupports(ctx.repoRoot, ["verify"]))) {
    result.status = "not available";
    result.notes.push(
      `not available: ${helpFailures.get("verify") ?? "`pgshift verify` does not exist in this build"}.`,
    );
    result.ratios.verify_vs_import_time = ratio("pgshift verify wall / pgshift import wall", null, target);
    return result;
  }
  // As many runs as the import had (best of N on both sides); any run that is not identical fails the scenario.
  const repeats = ctx.mode === "quick" ? 2 : 3;
  const runs: MeasuredRun[] = [];
  for (let i = 1; i <= repeats; i++) {
    ctx.log(`verify: pgshift verify of the sqlite import (run ${i}/${repeats})`);
    runs.push(
      await runPgshift(
        ctx.repoRoot,
        [
          "verify",
          `sqlite:${imported.sqlite.path}`,
          "--to",
          imported.url,
          "--json",
          "--jobs",
          String(ctx.jobs),
        ],
        { timeoutMs: 25 * 60_000 },
      ),
    );
  }
  const failedRun = runs.find((r) => r.exitCode !== 0);
  const run = failedRun ?? [...runs].sort((a, b) => a.wallMs - b.wallMs)[0]!;
  const report = parseJsonResult(run.stdout);
  const identical = run.exitCode === 0;
  const verifyS = round(run.wallMs / 1000, 2);
  const importS = round(imported.importWallMs / 1000, 2);
  result.params = {
    rows: imported.sqlite.rows,
    tables: Object.keys(imported.sqlite.tables).length,
    jobs: ctx.jobs,
  };
  result.measurements = {
    verify: {
      wall_s: verifyS,
      peak_rss_mb: run.peakTreeRssMb,
      exit_code: run.exitCode,
      identical,
      wall_s_runs: runs.map((r) => round(r.wallMs / 1000, 2)),
      ...(report && typeof report.identical === "boolean" ? { reported_identical: report.identical } : {}),
    },
    import: { wall_s: importS, included_verification: imported.importVerified },
  };
  result.ratios.verify_vs_import_time = ratio(
    "pgshift verify wall / pgshift import wall",
    identical ? run.wallMs / imported.importWallMs : null,
    target,
  );
  result.ratios.import_and_verify_vs_pgloader_wall = ratio(
    "(pgshift import + verify) wall / pgloader wall",
    identical && imported.pgloaderWallMs
      ? (imported.importWallMs + run.wallMs) / imported.pgloaderWallMs
      : null,
    null,
  );
  result.tables.push({
    title: `Verification vs import, ${imported.sqlite.rows.toLocaleString("en-US")} rows`,
    headers: ["step", "wall s", "rows/s", "peak RSS MB", "outcome"],
    rows: [
      [
        "pgshift import",
        importS,
        Math.round(imported.sqlite.rows / importS).toLocaleString("en-US"),
        "see sqlite",
        "loaded",
      ],
      [
        "pgshift verify (full)",
        verifyS,
        Math.round(imported.sqlite.rows / verifyS).toLocaleString("en-US"),
        run.peakTreeRssMb,
        identical ? "identical" : failureText(run, 3),
      ],
    ],
  });
  if (!identical) {
    result.status = "failed";
    result.notes.push(`pgshift verify did not report identical: ${failureText(run)}`);
  }
  if (imported.importVerified) {
    result.notes.push(
      "The import's wall time includes its own end-of-import verification (no --no-verify in this build).",
    );
  }
  return result;
}

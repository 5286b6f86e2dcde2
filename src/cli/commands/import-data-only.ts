import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { auditOperation, writeReport } from "../audit-operation.ts";
import { redactUrl } from "../../config/redact.ts";
import { ExitCode, UsageError } from "../../errors.ts";
import type { NameMap } from "../../load/data-only/table-mapping.ts";
import type { CommandContext } from "../context.ts";
import { renderDataOnlyResult, renderUndoResult } from "../render/data-only-summary.ts";

/** Reads a `--map FILE`: one JSON object of strings, {"table": "target", "table.column": "target_column"}. */
async function readNameMap(file: string): Promise<NameMap> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, "utf8"));
  } catch (error) {
    throw new UsageError(`--map ${file}: not a readable JSON file (${(error as Error).message})`);
  }
  if (
    typeof parsed !== "object" ||
    parsed === null ||
    Array.isArray(parsed) ||
    Object.values(parsed).some((v) => typeof v !== "string")
  )
    throw new UsageError(
      `--map ${file}: expected one JSON object of names, {"table": "target", "table.column": "target_column"}`,
    );
  return parsed as NameMap;
}

export async function runDataOnlyImport(
  ctx: CommandContext,
  path: string,
  spec: string,
  opts: {
    tables?: string[] | undefined;
    exclude?: string[] | undefined;
    map?: string;
    dryRun?: boolean;
    verify?: boolean;
    report?: string;
    chunkRows?: number | undefined;
  },
): Promise<number> {
  const map = opts.map ? await readNameMap(opts.map) : undefined;
  const pool = await ctx.pool({ max: 4 });
  const { importSqliteDataOnly } = await import("../../load/data-only/import-data-only.ts");
  const result = await importSqliteDataOnly({
    path,
    spec,
    pool,
    schema: ctx.settings.schema,
    ...(opts.tables ? { tables: opts.tables } : {}),
    ...(opts.exclude ? { exclude: opts.exclude } : {}),
    ...(map ? { map } : {}),
    ...(opts.chunkRows ? { chunkRows: opts.chunkRows } : {}),
    ...(ctx.globals.to !== undefined ? { hintTo: redactUrl(ctx.globals.to) } : {}),
    dryRun: Boolean(opts.dryRun),
    verify: opts.verify !== false,
  });
  let reportPath: string | undefined;
  if (!result.dryRun || opts.report) {
    reportPath = resolve(
      opts.report ?? join(ctx.settings.reportDir, `import-${result.runId ?? "dry-run"}.json`),
    );
    const report = await writeReport(reportPath, { kind: "import-sqlite-data-only", ...result });
    if (!result.dryRun)
      await auditOperation(ctx.out, pool, {
        action: "import",
        detail: { kind: "import-sqlite-data-only", source: spec, runId: result.runId, ok: result.ok },
        report,
        errorCode: result.error?.code,
      });
  }
  ctx.out.result({ ...result, report: reportPath }, () => renderDataOnlyResult(result, reportPath));
  if (result.ok) return ExitCode.ok;
  if (result.dryRun) return ExitCode.usage;
  if (!result.error && result.verification) return ExitCode.mismatch;
  return ExitCode.failure;
}

export async function runUndo(ctx: CommandContext, runId: string): Promise<number> {
  const pool = await ctx.pool({ max: 2 });
  const { undoImport } = await import("../../load/data-only/undo-run.ts");
  const result = await undoImport({ pool, runId });
  ctx.out.result(result, () => renderUndoResult(result));
  return ExitCode.ok;
}

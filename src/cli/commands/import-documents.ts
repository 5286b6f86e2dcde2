import { EMPTY_AS, type EmptyAs } from "../../sources/csv/csv-source.ts";
import { join, resolve } from "node:path";
import { auditOperation, writeReport } from "../audit-operation.ts";
import {
  type DuplicatePolicy,
  type ImportDocumentsResult,
  type ImportMode,
  importDocuments,
} from "../../documents/import-documents.ts";
import { ExitCode, UsageError } from "../../errors.ts";
import type { BadValuePolicy } from "../../load/quarantine.ts";
import { JobProgress } from "../../progress.ts";
import type { SourceSpec } from "../../sources/source-spec.ts";
import type { VerifyResult } from "../../verify/verify-result.ts";
import type { CommandContext } from "../context.ts";
import { renderTable } from "../output.ts";
import type { VerifyIntegrityResult } from "../../crypto/verify-integrity.ts";
import { keyringFromFlag } from "./keys-command.ts";

/** "/a,/b" given once or more -> ["/a", "/b"]. */
function pointers(opts: Record<string, unknown>, name: string): string[] {
  return list(opts, name)
    .flatMap((item) => item.split(","))
    .map((item) => item.trim())
    .filter(Boolean);
}

function text(opts: Record<string, unknown>, ...names: string[]): string | undefined {
  for (const name of names) {
    const value = opts[name];
    if (typeof value === "string") return value;
    if (Array.isArray(value) && value.length > 0) return value.map(String).join(",");
  }
  return undefined;
}

function list(opts: Record<string, unknown>, ...names: string[]): string[] {
  for (const name of names) {
    const value = opts[name];
    if (typeof value === "string") return [value];
    if (Array.isArray(value)) return value.map(String);
  }
  return [];
}

function flag(opts: Record<string, unknown>, name: string): boolean | undefined {
  const value = opts[name];
  return value === undefined ? undefined : Boolean(value);
}

function oneOf<T extends string>(
  value: string | undefined,
  allowed: readonly T[],
  option: string,
): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value))
    throw new UsageError(`${option} must be one of ${allowed.join(", ")}, not "${value}"`);
  return value as T;
}

/** "50%" or "50" -> 0.5; undefined when not given. */
function parsePercent(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const match = /^\s*(\d+(?:\.\d+)?)\s*%?\s*$/.exec(value);
  const share = match ? Number(match[1]) / 100 : Number.NaN;
  if (!(share >= 0 && share <= 1))
    throw new UsageError(`--max-delete takes a percentage from 0% to 100%, e.g. 50%, not "${value}"`);
  return share;
}

/**
 * `pgshift import json:DIR|json:FILE|ndjson:FILE|csv:FILE`: called by the import command for document
 * sources with its parsed options (commander's camelCase names); renders progress, a summary table and a
 * JSON report under settings.reportDir; returns the exit code (1 when records were quarantined).
 */
export async function runDocumentImport(
  ctx: CommandContext,
  spec: SourceSpec,
  opts: Record<string, unknown>,
): Promise<number> {
  const mode = oneOf<ImportMode>(text(opts, "mode"), ["insert", "upsert", "replace"], "--mode");
  const onBadValue = oneOf<BadValuePolicy>(
    text(opts, "onBadValue"),
    ["fail", "quarantine"],
    "--on-bad-value",
  );
  const duplicates = oneOf<DuplicatePolicy>(text(opts, "duplicates"), ["fail", "last-wins"], "--duplicates");
  const key = text(opts, "key");
  const records = text(opts, "records");
  const table = text(opts, "table");
  const delimiter = text(opts, "delimiter");
  const encoding = text(opts, "encoding");
  const emptyAs = oneOf<EmptyAs>(text(opts, "emptyAs"), EMPTY_AS, "--empty-as");
  const trgm = list(opts, "trgm");
  const typed = flag(opts, "typed");
  const maxDelete = parsePercent(text(opts, "maxDelete"));
  const encryptedPaths = pointers(opts, "encrypt");
  const blindIndexPaths = pointers(opts, "blindIndex");
  const integrity = Boolean(opts.integrity);
  const protect = encryptedPaths.length > 0 || blindIndexPaths.length > 0 || integrity;
  const keyring = protect ? keyringFromFlag(opts.keys) : undefined;
  const settings = ctx.settings;
  // the import's own connection, one per parallel COPY stream (--jobs), one spare
  const pool = await ctx.pool({ max: settings.jobs + 2 });
  const verify = opts.verify !== false;
  // verification's source side, computed while the import reads the source: for document tables
  // (CSV is typed unless --no-typed), whose verification reads them
  const documentTable = spec.kind === "csv" ? typed === false : typed !== true;
  // (encrypted documents are checked by their MACs instead: they differ from the source by design)
  const sourceDigests =
    verify && documentTable && encryptedPaths.length === 0
      ? new (await import("../../verify/source-digests.ts")).SourceDigests(Boolean(key))
      : undefined;
  const result = await importDocuments({
    pool,
    from: spec,
    jobs: settings.jobs,
    schema: text(opts, "schema") ?? settings.schema,
    ...(table ? { table } : {}),
    ...(key ? { key } : {}),
    ...(records ? { records } : {}),
    ...(mode ? { mode } : {}),
    mirror: Boolean(opts.mirror),
    ...(maxDelete !== undefined ? { maxDelete } : {}),
    allowEmpty: Boolean(opts.allowEmpty),
    columns: list(opts, "column", "columns"),
    ...(onBadValue ? { onBadValue } : {}),
    ...(duplicates ? { duplicates } : {}),
    gin: Boolean(opts.gin),
    trgm,
    ...(typed !== undefined ? { typed } : {}),
    flatten: Boolean(opts.flatten),
    ...(delimiter ? { delimiter } : {}),
    ...(encoding ? { encoding } : {}),
    ...(emptyAs ? { emptyAs } : {}),
    ...(protect ? { encryptedPaths, blindIndexPaths, integrity } : {}),
    ...(keyring ? { keyring } : {}),
    onProgress: ctx.progress.onProgress,
    signal: ctx.signal,
    ...(sourceDigests ? { loadedRecords: sourceDigests } : {}),
  }).catch(async (error: unknown) => {
    await sourceDigests?.close();
    throw error;
  });
  // Verification reads the source again and the table back from the server (skip with --no-verify).
  let verification: VerifyResult | undefined;
  // encrypted documents differ from the source by design: they are checked by their MACs instead
  let integrityCheck: VerifyIntegrityResult | undefined;
  if (verify && keyring && integrity) {
    const { verifyIntegrity } = await import("../../crypto/verify-integrity.ts");
    integrityCheck = await verifyIntegrity({
      pool,
      schema: result.target.schema,
      table: result.target.table,
      keyring,
    });
  }
  if (verify && result.target.kind === "documents" && encryptedPaths.length === 0) {
    const { verifyDocuments } = await import("../../verify/document-verify.ts");
    // The overall bar follows the verification: every record read again.
    const verifyProgress = new JobProgress(ctx.progress.onProgress, "import", "records");
    verifyProgress.phase("verify", { done: 0, total: result.recordsRead });
    verification = await verifyDocuments({
      pool,
      from: spec,
      schema: result.target.schema,
      table: result.target.table,
      ...(key ? { key } : {}),
      ...(records ? { records } : {}),
      columns: list(opts, "column", "columns"),
      ...(duplicates ? { duplicates } : {}),
      // rows the table held before and this import did not replace are expected to remain
      allowExtra:
        result.mode === "insert"
          ? !result.tableCreated
          : result.mode === "upsert" && (!result.mirror || result.mirrorSkipped !== undefined),
      typed: false,
      ...(delimiter ? { delimiter } : {}),
      ...(encoding ? { encoding } : {}),
      ...(emptyAs ? { emptyAs } : {}),
      runId: result.runId,
      onProgress: verifyProgress.sumOfItems(),
      ...(sourceDigests ? { sourceDigests } : {}),
      jobs: settings.jobs,
    });
  }
  await sourceDigests?.close();
  ctx.progress.stop();
  const reportOption = opts.report;
  const reportPath =
    typeof reportOption === "string"
      ? resolve(reportOption)
      : resolve(join(settings.reportDir, `import-${result.target.table}-${result.runId}.json`));
  const report = await writeReport(reportPath, {
    kind: "import-documents",
    ...result,
    ...(verification ? { verification } : {}),
    ...(integrityCheck ? { integrity: integrityCheck } : {}),
  });
  const verified =
    (verification === undefined || verification.identical) && integrityCheck?.status !== "tampered";
  await auditOperation(ctx.out, pool, {
    action: "import",
    detail: {
      kind: "import-documents",
      runId: result.runId,
      table: result.target.table,
      ok: result.quarantined === 0 && verified,
    },
    report,
  });
  ctx.out.result(
    {
      ok: result.quarantined === 0 && verified,
      report: reportPath,
      ...result,
      ...(verification ? { verification } : {}),
      ...(integrityCheck ? { integrity: integrityCheck } : {}),
    },
    () =>
      [
        renderSummary(result, reportPath),
        ...(encryptedPaths.length > 0 && opts.verify !== false
          ? []
          : [verificationLine(result, verification, opts.verify !== false)]),
        ...(result.encryption
          ? [
              `encrypted: ${result.encryption.encryptedPaths.join(", ") || "-"} under key "${result.encryption.keyId}"${result.encryption.blindIndexPaths.length ? ` (blind index: ${result.encryption.blindIndexPaths.join(", ")})` : ""}${result.encryption.integrity ? "; record MACs in record_mac" : ""}`,
            ]
          : []),
        ...(integrityCheck
          ? [
              integrityCheck.status === "intact"
                ? `integrity: intact (${integrityCheck.rowsChecked} record MACs and ciphertexts checked)`
                : `integrity: ${integrityCheck.rowsWithProblems} record(s) do NOT check; see the report`,
            ]
          : encryptedPaths.length > 0 && opts.verify !== false
            ? [
                "encrypted documents differ from the source by design: checked by counts only (add --integrity for per-record MACs)",
              ]
            : []),
      ].join("\n"),
  );
  if (integrityCheck?.status === "tampered") return ExitCode.mismatch;
  if (result.mirrorSkipped) ctx.out.notice(`--mirror: ${result.mirrorSkipped}`);
  if (result.quarantined > 0)
    ctx.out.notice(
      `${result.quarantined} record(s) quarantined: select * from pgshift.quarantine where run_id = '${result.runId}'`,
    );
  if (verification && verification.status !== "identical") {
    ctx.out.notice(
      `verification: ${verification.status === "mismatch" ? "DIFFERENCES found" : "could not verify"}; details in ${reportPath} (or run pgshift verify ${spec.spec} with the same flags)`,
    );
    return verification.status === "mismatch" ? ExitCode.mismatch : ExitCode.failure;
  }
  return result.quarantined > 0 ? ExitCode.failure : ExitCode.ok;
}

function verificationLine(
  result: ImportDocumentsResult,
  verification: VerifyResult | undefined,
  requested: boolean,
): string {
  if (!requested) return "verification skipped (--no-verify); record counts were checked";
  if (!verification)
    return "typed table: checked by counts only (records read = loaded + quarantined); content verification covers document tables";
  const t = verification.tables[0];
  if (verification.identical)
    return `verified: identical (${t?.sourceRows ?? 0} documents, per-document checksums of keys and jsonb${result.quarantined ? `, ${result.quarantined} quarantined left out` : ""}${t?.extraRows ? `, ${t.extraRows} earlier rows kept` : ""})`;
  if (verification.status === "mismatch")
    return `verification: DIFFERENCES (${t?.missingRows ?? 0} missing, ${t?.extraRows ?? 0} extra, ${t?.changedRows ?? 0} changed${t?.problems.length ? `; ${t.problems.join("; ")}` : ""})`;
  return `verification: could not verify (${t?.error?.message ?? "error"})`;
}

function renderSummary(result: ImportDocumentsResult, reportPath: string): string {
  const seconds = (result.durationMs / 1000).toFixed(1);
  const rows: [string, string | number][] = [
    ["source", result.source],
    [
      "target",
      `${result.target.schema}.${result.target.table} (${result.target.kind} table${result.tableCreated ? ", created" : ""})`,
    ],
    ...(result.tableRequested
      ? ([["table name", `shortened to 63 bytes with a hash suffix (asked: ${result.tableRequested})`]] as [
          string,
          string,
        ][])
      : []),
    ["mode", `${result.mode}${result.mirror ? " + mirror" : ""}`],
    ["files", result.files],
    ["records read", result.recordsRead],
    ["records loaded", result.recordsLoaded],
    ["quarantined", result.quarantined],
    ["inserted", result.inserted],
    ["updated", result.updated],
    ["unchanged", result.unchanged],
    [
      "deleted",
      result.mirrorSkipped
        ? `${result.deleted} (--mirror skipped: source not read completely)`
        : result.deleted,
    ],
    ["duplicate keys", `${result.duplicates.count} (${result.duplicates.policy})`],
    ["indexes", result.indexes.join(", ") || "-"],
    ["time", `${seconds} s, ${result.recordsPerSecond} records/s`],
  ];
  const lines = [renderTable(["", ""], rows).split("\n").slice(2).join("\n")];
  for (const problem of result.problems.slice(0, 10)) lines.push(`  ! ${problem.reason}`);
  if (result.problems.length > 10) lines.push(`  ! ... ${result.quarantined - 10} more in the report`);
  lines.push(`report: ${reportPath}`);
  return lines.join("\n");
}

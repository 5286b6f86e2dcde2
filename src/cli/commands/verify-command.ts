import type { EmptyAs } from "../../sources/csv/csv-source.ts";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import type { Command } from "commander";
import { ExitCode, PgshiftError, UsageError } from "../../errors.ts";
import { JobProgress } from "../../progress.ts";
import type { NamingPolicy } from "../../schema/naming.ts";
import { parseSourceSpec } from "../../sources/source-spec.ts";
import {
  type CheckingKey,
  checkingKeyFromFile,
  checkReportSignature,
  hmacKeyFromEnv,
  signReport,
} from "../../verify/report.ts";
import type { TableVerification } from "../../verify/types.ts";
import type { VerifyResult } from "../../verify/verify-result.ts";
import { action } from "../action.ts";
import { DEFAULT_KEY_ENV, hmacKeyEnvOption, signingKey, signKeyOption } from "../report-signing.ts";
import { renderTable } from "../output.ts";
import type { CommandContext } from "../context.ts";
import { keyringFromFlag } from "./keys-command.ts";

interface VerifyFlags {
  sample?: string;
  report?: string;
  signKey?: string;
  hmacKeyEnv?: string;
  naming?: string;
  tables?: string;
  exclude?: string;
  maxDiffs?: string;
  key?: string;
  records?: string;
  table?: string;
  column?: string[];
  duplicates?: string;
  allowExtra?: boolean;
  typed?: boolean;
  delimiter?: string;
  encoding?: string;
  emptyAs?: string;
  runId?: string;
  integrity?: boolean;
  keys?: string;
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

interface VerifyReportFlags {
  hmacKeyEnv?: string;
  hmacKeyFile?: string;
  publicKey?: string;
}

function list(value: string | undefined): string[] | undefined {
  const items = value
    ?.split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  return items?.length ? items : undefined;
}

function parseSample(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  const sample = text.endsWith("%") ? Number(text.slice(0, -1)) / 100 : Number(text);
  if (!Number.isFinite(sample) || sample <= 0 || sample > 1)
    throw new UsageError(`--sample must be a fraction in (0, 1] or a percentage like 5%, not "${value}"`);
  return sample;
}

function checkingKey(flags: VerifyReportFlags): CheckingKey {
  const given = [flags.publicKey, flags.hmacKeyEnv, flags.hmacKeyFile].filter(Boolean).length;
  if (given > 1) throw new UsageError("pass one of --public-key, --hmac-key-env or --hmac-key-file");
  if (flags.publicKey) return checkingKeyFromFile(flags.publicKey);
  if (flags.hmacKeyFile) return checkingKeyFromFile(flags.hmacKeyFile);
  if (flags.hmacKeyEnv) return hmacKeyFromEnv(flags.hmacKeyEnv);
  if (process.env[DEFAULT_KEY_ENV]) return hmacKeyFromEnv(DEFAULT_KEY_ENV);
  throw new UsageError(
    `no key to check the signature with: pass --public-key FILE (Ed25519), --hmac-key-env VAR or --hmac-key-file FILE, or set ${DEFAULT_KEY_ENV}`,
  );
}

/** `verify --integrity --table T --keys FILE`: renders every record whose MAC or ciphertext does not check. */
async function runIntegrityVerify(ctx: CommandContext, flags: VerifyFlags): Promise<number> {
  if (!flags.table) throw new UsageError("verify --integrity needs --table NAME");
  const keyring = keyringFromFlag(flags.keys, true)!;
  const signing = signingKey(flags);
  const pool = await ctx.pool({ max: 2 });
  const { verifyIntegrity } = await import("../../crypto/verify-integrity.ts");
  const result = await verifyIntegrity({
    pool,
    schema: ctx.settings.schema,
    table: flags.table,
    keyring,
    onProgress: ctx.progress.onProgress,
    signal: ctx.signal,
  });
  ctx.progress.stop();
  const report = signing ? signReport(result, signing) : result;
  const reportPath = resolve(
    flags.report ?? join(ctx.settings.reportDir, `verify-integrity-${result.table}-${timestamp()}.json`),
  );
  await mkdir(dirname(reportPath), { recursive: true });
  await writeFile(reportPath, `${JSON.stringify(report, null, 2)}\n`);
  ctx.out.result({ ...report, report: reportPath }, () => {
    const lines = [
      result.status === "intact"
        ? `intact: ${result.rowsChecked} record(s) of ${result.schema}.${result.table} checked (${result.integrity ? "record MACs" : "no record MACs"}${result.encryptedPaths.length ? `, encrypted ${result.encryptedPaths.join(", ")}` : ""}${result.encryptedColumns.length ? `, encrypted columns ${result.encryptedColumns.join(", ")}` : ""})`
        : `TAMPERED: ${result.rowsWithProblems} of ${result.rowsChecked} record(s) of ${result.schema}.${result.table} do not check:`,
    ];
    for (const problem of result.problems)
      lines.push(
        `  ${problem.key.join(", ")}: ${problem.problem}${problem.pointer ? ` at ${problem.pointer}` : ""}`,
      );
    if (!result.listedAll) lines.push("  ... more in the report");
    lines.push(`report: ${reportPath}`);
    return lines.join("\n");
  });
  return result.status === "intact" ? ExitCode.ok : ExitCode.mismatch;
}

function keyText(key: Record<string, string | null>): string {
  return Object.entries(key)
    .map(([k, v]) => `${k}=${v === null ? "NULL" : v}`)
    .join(", ");
}

function quoted(value: string | null): string {
  return value === null ? "NULL" : JSON.stringify(value);
}

function detail(t: TableVerification): string {
  if (t.status === "error") return t.error?.message ?? "error";
  const parts: string[] = [...t.problems];
  if (t.missingRows) parts.push(`${t.missingRows} missing`);
  if (t.extraRows) parts.push(`${t.extraRows} extra`);
  if (t.changedRows) parts.push(`${t.changedRows} changed`);
  if (t.status === "mismatch" && !t.complete)
    parts.push(`(${t.chunking.narrowed} of ${t.chunking.mismatched} differing chunks narrowed)`);
  if (t.quarantinedRows) parts.push(`${t.quarantinedRows} quarantined (left out)`);
  if (t.sample) parts.push(`sample ${t.sample.sourceRows}/${t.sourceRows} rows`);
  return parts.join(", ");
}

/** The human rendering of a verification result. */
export function renderVerifyResult(result: VerifyResult, reportPath: string | undefined): string {
  const lines = [
    renderTable(
      ["table", "source rows", "target rows", "chunks", "status", "detail"],
      result.tables.map((t) => [
        t.schema === "public" ? t.table : `${t.schema}.${t.table}`,
        t.sourceRows,
        t.targetRows,
        t.chunking.chunks,
        t.status,
        detail(t),
      ]),
    ),
  ];
  for (const t of result.tables.filter((t) => t.status === "mismatch")) {
    const shown = t.missing.length + t.extra.length + t.changed.length;
    if (shown === 0) continue;
    lines.push("", `${t.schema}.${t.table}:`);
    for (const key of t.missing) lines.push(`  missing  ${keyText(key)}`);
    for (const key of t.extra) lines.push(`  extra    ${keyText(key)}`);
    for (const row of t.changed) {
      lines.push(`  changed  ${keyText(row.key)}`);
      for (const c of row.columns)
        lines.push(`             ${c.column}: source ${quoted(c.source)}, target ${quoted(c.target)}`);
    }
    const more = t.missingRows + t.extraRows + t.changedRows - shown;
    if (more > 0) lines.push(`  ... and ${more} more (see the report)`);
  }
  const s = result.summary;
  lines.push("");
  if (result.identical)
    lines.push(
      `identical: ${s.tables} table(s), ${s.sourceRows} rows — counts and per-row checksums match${result.sample !== null ? ` (sampled ${(result.sample * 100).toFixed(2)}% of rows)` : ""}`,
    );
  else
    lines.push(
      `${result.status === "error" ? "ERROR" : "MISMATCH"}: ${s.mismatched} of ${s.tables} table(s) differ${s.errors ? `, ${s.errors} could not be verified` : ""}`,
    );
  if (result.plan.from === "rebuilt" && result.source.kind === "sqlite")
    lines.push("(no import run stored in the target: tables and types were planned again from the source)");
  if (result.source.kind !== "sqlite")
    lines.push(
      "(documents: the source read again with the import's flags: --key, --records, --table, --column)",
    );
  if (reportPath) lines.push(`report: ${reportPath}`);
  return lines.join("\n");
}

function timestamp(): string {
  return new Date()
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z");
}

export function registerVerifyCommands(program: Command): void {
  program
    .command("verify")
    .description(
      "prove every row arrived: per-row checksums of the source and of what PostgreSQL stores, compared per key range; exit 0 only when identical, 3 on mismatch",
    )
    .argument(
      "[source]",
      "the source that was imported (not with --integrity): sqlite:PATH (or a .db/.sqlite/.sqlite3 path), json:DIR|FILE, ndjson:FILE, csv:FILE",
    )
    .option(
      "--sample <fraction>",
      "compare only this fraction of rows, chosen by key hash (e.g. 0.01 or 1%); full by default",
    )
    .option("--report <path>", "where to write the JSON report (default under the report directory)")
    .addOption(signKeyOption())
    .addOption(hmacKeyEnvOption())
    .option(
      "--naming <policy>",
      "keep or snake: the naming the import used, when the target holds no import run",
    )
    .option("--tables <list>", "only these source tables (comma-separated)")
    .option("--exclude <list>", "skip these source tables (comma-separated)")
    .option("--max-diffs <n>", "keys listed per kind of difference and table (default 20)")
    .option("--key <pointers>", "documents: the import's --key JSON pointer(s), comma-separated")
    .option("--records <pointer>", "documents: the import's --records pointer (e.g. /results)")
    .option("--table <name>", "documents: the import's --table (default: file or directory name)")
    .option("--column <spec>", "documents: the import's --column specs (repeatable)", collect)
    .option("--duplicates <policy>", "documents: the import's --duplicates policy: fail or last-wins")
    .option(
      "--allow-extra",
      "documents: rows not in this source are expected (insert into a filled table, upsert without --mirror)",
    )
    .option("--no-typed", "CSV: the import made a document table (--no-typed)")
    .option("--delimiter <char>", "CSV: field delimiter the import used")
    .option("--encoding <name>", "CSV: text encoding the import used")
    .option("--empty-as <null|empty>", "CSV: what the import took an unquoted empty field for")
    .option("--run-id <id>", "documents: the import run whose pgshift.quarantine rows to count")
    .option(
      "--integrity",
      "recompute the record MACs and authenticate the encrypted fields of --table (no source needed); exit 3 naming every record that does not check",
    )
    .option(
      "--keys <file|env:VAR>",
      "with --integrity, or for a SQLite import with encrypted columns: the key file (default env:PGSHIFT_KEYS)",
    )
    .action(
      action(async (ctx, sourceArg: string | undefined, flags: VerifyFlags) => {
        if (flags.integrity) {
          if (sourceArg !== undefined)
            throw new UsageError(
              "verify --integrity checks a table, not a source: drop the source, pass --table",
            );
          return runIntegrityVerify(ctx, flags);
        }
        if (sourceArg === undefined)
          throw new UsageError("verify needs the source that was imported (or --integrity --table T)");
        const source = parseSourceSpec(sourceArg);
        if (source.kind !== "sqlite" && !["json", "ndjson", "csv"].includes(source.kind))
          throw new UsageError(
            `verify checks SQLite and document imports; "${sourceArg}" is a ${source.kind} source`,
          );
        const sample = parseSample(flags.sample);
        if (source.kind !== "sqlite" && sample !== undefined)
          throw new UsageError(
            "--sample applies to SQLite verification; document tables are verified in full",
          );
        const naming = flags.naming;
        if (naming !== undefined && naming !== "keep" && naming !== "snake")
          throw new UsageError(`--naming must be keep or snake, not "${naming}"`);
        let maxDiffs: number | undefined;
        if (flags.maxDiffs !== undefined) {
          maxDiffs = Number(flags.maxDiffs);
          if (!Number.isInteger(maxDiffs) || maxDiffs < 0)
            throw new UsageError(`--max-diffs must be a whole number, not "${flags.maxDiffs}"`);
        }
        const key = signingKey(flags);
        const settings = ctx.settings;
        const schemaGiven = ctx.resolvedSettings.sources.schema !== undefined;
        const tables = list(flags.tables);
        const exclude = list(flags.exclude);
        const pool = await ctx.pool({ max: settings.jobs + 2 });
        ctx.progress.setMaxItems(settings.jobs);
        if (flags.duplicates !== undefined && !["fail", "last-wins"].includes(flags.duplicates))
          throw new UsageError(`--duplicates must be fail or last-wins, not "${flags.duplicates}"`);
        // Loaded when used, as the importers are.
        const { verifyDocuments } = await import("../../verify/document-verify.ts");
        const { verifySqlite } = await import("../../verify/verify-import.ts");
        const sqliteKeys = source.kind === "sqlite" ? keyringFromFlag(flags.keys) : undefined;
        const result =
          source.kind !== "sqlite"
            ? await verifyDocuments({
                pool,
                from: source,
                schema: settings.schema,
                ...(flags.key ? { key: flags.key } : {}),
                ...(flags.records ? { records: flags.records } : {}),
                ...(flags.table ? { table: flags.table } : {}),
                ...(flags.column ? { columns: flags.column } : {}),
                ...(flags.duplicates ? { duplicates: flags.duplicates as "fail" | "last-wins" } : {}),
                allowExtra: Boolean(flags.allowExtra),
                ...(flags.typed === false ? { typed: false } : {}),
                ...(flags.delimiter ? { delimiter: flags.delimiter } : {}),
                ...(flags.encoding ? { encoding: flags.encoding } : {}),
                ...(flags.emptyAs ? { emptyAs: flags.emptyAs as EmptyAs } : {}),
                ...(flags.runId ? { runId: flags.runId } : {}),
                ...(maxDiffs !== undefined ? { maxDiffs } : {}),
                // One overall figure: the records read again, whatever the number of files.
                onProgress: new JobProgress(ctx.progress.onProgress, "verify", "records").sumOfItems(),
              })
            : await verifySqlite({
                sourcePath: source.path,
                spec: source.spec,
                pool,
                jobs: settings.jobs,
                ...(schemaGiven ? { schema: settings.schema } : {}),
                ...(naming ? { naming: naming as NamingPolicy } : {}),
                ...(tables ? { tables } : {}),
                ...(exclude ? { exclude } : {}),
                ...(sample !== undefined ? { sample } : {}),
                ...(maxDiffs !== undefined ? { maxDiffs } : {}),
                onProgress: ctx.progress.onProgress,
                signal: ctx.signal,
                // encrypted columns are decrypted and compared (a table that has them needs the keys)
                ...(sqliteKeys ? { keyring: sqliteKeys } : {}),
              });
        ctx.progress.stop();
        const report = key ? signReport(result, key) : result;
        const reportPath = resolve(flags.report ?? join(settings.reportDir, `verify-${timestamp()}.json`));
        await mkdir(dirname(reportPath), { recursive: true });
        await writeFile(reportPath, `${JSON.stringify(report, null, 2)}\n`);
        ctx.out.result({ ...report, report: reportPath }, () => renderVerifyResult(result, reportPath));
        if (result.status === "identical") return ExitCode.ok;
        return result.status === "mismatch" ? ExitCode.mismatch : ExitCode.failure;
      }),
    );

  program
    .command("verify-report")
    .description(
      "check a verification report's signature: exit 0 when valid, 3 when invalid or tampered with",
    )
    .argument("<file>", "a report written by pgshift verify")
    .option("--public-key <file>", "PEM Ed25519 public key (for reports signed with --sign-key)")
    .option(
      "--hmac-key-env <var>",
      `HMAC key from this environment variable (default ${DEFAULT_KEY_ENV} when set)`,
    )
    .option("--hmac-key-file <file>", "HMAC key from this file")
    .action(
      action(async (ctx, file: string, flags: VerifyReportFlags) => {
        const key = checkingKey(flags);
        let report: Record<string, unknown>;
        try {
          const parsed = JSON.parse(await readFile(file, "utf8")) as unknown;
          if (!parsed || typeof parsed !== "object" || Array.isArray(parsed))
            throw new Error("not a JSON object");
          report = parsed as Record<string, unknown>;
        } catch (error) {
          throw new PgshiftError(
            "report_unreadable",
            `cannot read report ${file}: ${(error as Error).message}`,
            {
              exitCode: ExitCode.mismatch,
              details: { file },
            },
          );
        }
        const check = checkReportSignature(report, key);
        const result = {
          file: resolve(file),
          valid: check.valid,
          algorithm: check.algorithm ?? null,
          reason: check.reason ?? null,
          reportStatus: report.status ?? null,
          source: report.source ?? null,
          finishedAt: report.finishedAt ?? null,
        };
        ctx.out.result(result, () =>
          check.valid
            ? `valid ${check.algorithm} signature: ${file} (verification status: ${String(report.status)}, finished ${String(report.finishedAt)})`
            : `INVALID: ${file}: ${check.reason}`,
        );
        return check.valid ? ExitCode.ok : ExitCode.mismatch;
      }),
    );
}

import { join, resolve } from "node:path";
import { auditOperation, writeReport } from "../audit-operation.ts";
import type { Command } from "commander";
import { redactUrl } from "../../config/redact.ts";
import { ExitCode, UsageError } from "../../errors.ts";
import type { IfExists } from "../../load/import-sqlite.ts";
import type { BadValuePolicy } from "../../load/quarantine.ts";
import type { NamingPolicy } from "../../schema/naming.ts";
import { parseSourceSpec } from "../../sources/source-spec.ts";
import { action } from "../action.ts";
import type { CommandContext } from "../context.ts";
import { renderSqliteResult } from "../render/import-summary.ts";
import { keyringFromFlag } from "./keys-command.ts";

interface ImportFlags {
  tables?: string;
  exclude?: string;
  naming?: string;
  ifExists?: string;
  cascade?: boolean;
  dryRun?: boolean;
  onBadValue?: string;
  resume?: boolean | string;
  verify?: boolean;
  report?: string;
  chunkRows?: string;
  verbose?: boolean;
  dataOnly?: boolean;
  map?: string;
  undo?: string;
  [documentFlag: string]: unknown;
}

function oneOf<T extends string>(
  value: string | undefined,
  allowed: readonly T[],
  flag: string,
): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value))
    throw new UsageError(`${flag} must be one of ${allowed.join(", ")}, not "${value}"`);
  return value as T;
}

function names(list: string | undefined): string[] | undefined {
  if (list === undefined) return undefined;
  const items = list
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  return items.length ? items : undefined;
}

/** A repeatable comma-separated flag's items. */
function listFlag(value: unknown): string[] {
  const items = Array.isArray(value) ? value.map(String) : typeof value === "string" ? [value] : [];
  return items
    .flatMap((item) => item.split(","))
    .map((item) => item.trim())
    .filter(Boolean);
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

async function runSqliteImport(
  ctx: CommandContext,
  path: string,
  spec: string,
  opts: ImportFlags,
): Promise<number> {
  const settings = ctx.settings;
  const naming = oneOf<NamingPolicy>(opts.naming, ["keep", "snake"], "--naming");
  const ifExists = oneOf<IfExists>(opts.ifExists, ["fail", "replace", "append"], "--if-exists");
  const onBadValue = oneOf<BadValuePolicy>(opts.onBadValue, ["fail", "quarantine"], "--on-bad-value");
  let chunkRows: number | undefined;
  if (opts.chunkRows !== undefined) {
    chunkRows = Number(opts.chunkRows);
    if (!Number.isInteger(chunkRows) || chunkRows < 1)
      throw new UsageError(`--chunk-rows must be a positive integer, not "${opts.chunkRows}"`);
  }
  if (opts.cascade && ifExists !== "replace")
    throw new UsageError("--cascade applies to --if-exists replace only");
  const tables = names(opts.tables);
  const exclude = names(opts.exclude);
  const encryptedColumns = listFlag(opts.encryptColumns);
  const blindIndexColumns = listFlag(opts.blindIndex);
  const integrity = Boolean(opts.integrity);
  const protect = encryptedColumns.length > 0 || blindIndexColumns.length > 0 || integrity;
  if (opts.encrypt !== undefined)
    throw new UsageError(
      "--encrypt takes JSON pointers of documents; for a SQLite import name columns with --encrypt-columns TABLE.COLUMN,...",
    );
  if (protect && opts.dataOnly)
    throw new UsageError(
      "--data-only loads into existing tables: --encrypt-columns, --blind-index and --integrity do not apply",
    );
  // a resumed run takes what it encrypts from its stored plan: only the keys are given again
  const keyring = (protect || opts.resume) && !opts.dryRun ? keyringFromFlag(opts.keys) : undefined;
  if (opts.map && !opts.dataOnly) throw new UsageError("--map applies to --data-only");
  if (opts.dataOnly) {
    if (ifExists || opts.cascade || naming || opts.resume || onBadValue)
      throw new UsageError(
        "--data-only loads into the tables that exist: --if-exists, --cascade, --naming, --resume and --on-bad-value do not apply (undo a run with --undo RUN_ID)",
      );
    const { runDataOnlyImport } = await import("./import-data-only.ts");
    return runDataOnlyImport(ctx, path, spec, {
      tables,
      exclude,
      ...(opts.map ? { map: opts.map } : {}),
      dryRun: Boolean(opts.dryRun),
      verify: opts.verify !== false,
      ...(opts.report ? { report: opts.report } : {}),
      chunkRows,
    });
  }
  const pool = await ctx.pool({ max: settings.jobs + 2 });
  // Loaded when used: every other command starts without the importer and its dependencies.
  const { importSqlite } = await import("../../load/import-sqlite.ts");
  // Tables load `jobs` at a time; its verification then checks two at a time.
  ctx.progress.setMaxItems(Math.max(settings.jobs, 2));
  const result = await importSqlite({
    path,
    spec,
    pool,
    schema: settings.schema,
    jobs: settings.jobs,
    ...(tables ? { tables } : {}),
    ...(exclude ? { exclude } : {}),
    ...(naming ? { naming } : {}),
    ...(ifExists ? { ifExists } : {}),
    ...(opts.cascade ? { cascade: true } : {}),
    ...(ctx.globals.to !== undefined ? { hintTo: redactUrl(ctx.globals.to) } : {}),
    ...(onBadValue ? { onBadValue } : {}),
    ...(chunkRows ? { chunkRows } : {}),
    ...(opts.resume ? { resume: opts.resume } : {}),
    dryRun: Boolean(opts.dryRun),
    verify: opts.verify !== false,
    ...(protect ? { encryptedColumns, blindIndexColumns, integrity } : {}),
    ...(keyring ? { keyring } : {}),
    onProgress: ctx.progress.onProgress,
    signal: ctx.signal,
    // retries after a lost connection are said, so that a flaky network is visible
    logger: { info: () => undefined, warn: (message) => ctx.out.notice(`warning: ${message}`) },
  });
  ctx.progress.stop();
  let reportPath: string | undefined;
  if (!result.dryRun || opts.report) {
    reportPath = resolve(opts.report ?? join(settings.reportDir, `import-${result.runId ?? "dry-run"}.json`));
    const report = await writeReport(reportPath, { kind: "import-sqlite", ...result });
    if (!result.dryRun)
      await auditOperation(ctx.out, pool, {
        action: "import",
        detail: { kind: "import-sqlite", source: spec, runId: result.runId, ok: result.ok },
        report,
        errorCode: result.error?.code,
      });
  }
  ctx.out.result({ ...result, report: reportPath }, () =>
    renderSqliteResult(result, reportPath, { verbose: Boolean(opts.verbose) }),
  );
  if (result.ok) return ExitCode.ok;
  if (result.error?.code === "verify_mismatch") return ExitCode.mismatch;
  return ExitCode.failure;
}

export function registerImportCommand(program: Command): void {
  program
    .command("import")
    .description(
      "import a SQLite database (sqlite:PATH or *.db/*.sqlite/*.sqlite3), JSON documents (json:DIR|FILE), NDJSON or CSV into PostgreSQL",
    )
    .argument(
      "[source]",
      "sqlite:PATH, json:DIR, json:FILE, ndjson:FILE[.gz], csv:FILE, or a path with a known extension",
    )
    .option(
      "--data-only",
      "SQLite: load into the tables that already exist (created by the application's ORM): map names, check types first, create nothing",
    )
    .option(
      "--map <file>",
      'SQLite, with --data-only: JSON names {"table": "target", "table.column": "target_column"}',
    )
    .option(
      "--undo <runId>",
      "remove exactly the rows a --data-only or --if-exists append run wrote and restore its sequences (no table is dropped)",
    )
    .option("--tables <list>", "SQLite: only these tables (comma-separated)")
    .option("--exclude <list>", "SQLite: skip these tables (comma-separated)")
    .option(
      "--naming <policy>",
      "SQLite: keep (names exactly, quoted) or snake (lower_snake_case)",
      undefined,
    )
    .option(
      "--if-exists <policy>",
      "SQLite: when a target table exists: fail, replace (drop and recreate) or append",
    )
    .option(
      "--cascade",
      "SQLite: where --if-exists replace meets objects of yours that depend on the replaced tables, drop them too (listed afterwards; pgshift's own views and foreign keys are recreated)",
    )
    .option("--dry-run", "SQLite: print the DDL plan and the type decisions, change nothing")
    .option(
      "--resume [runId]",
      "SQLite: continue the last unfinished import of this source (committed chunks are kept)",
    )
    .option("--no-verify", "skip the checksum verification after loading (row counts are still checked)")
    .option("--chunk-rows <n>", "SQLite: rows per COPY transaction and checkpoint (default 100000)")
    .option(
      "--on-bad-value <policy>",
      "unrepresentable values: fail (default) or quarantine the whole row in pgshift.quarantine",
    )
    .option("--report <path>", "where to write the JSON report (default under the report directory)")
    .option("--verbose", "SQLite: print the SQL of each object not created (always in the report)")
    .option("--table <name>", "documents: target table (default: file or directory name)")
    .option("--key <pointers>", "documents: JSON pointer(s) of the key, comma-separated (e.g. /k_number)")
    .option(
      "--records <pointer>",
      "documents: JSON pointer of the records array in each file (e.g. /results)",
    )
    .option("--mode <mode>", "documents: insert, upsert or replace")
    .option("--mirror", "documents: with upsert, delete keys no longer in the source")
    .option(
      "--max-delete <percent>",
      "documents: --mirror may delete at most this share of the table's rows (default 50%)",
    )
    .option("--allow-empty", "documents: a source with no record may empty the table (replace, --mirror)")
    .option("--column <spec>", "documents: extra typed column NAME=/pointer:type (repeatable)", collect)
    .option("--gin", "documents: add a GIN (jsonb_path_ops) index on doc")
    .option("--trgm <pointer>", "documents: add a trigram index on this path (repeatable)", collect)
    .option("--typed", "documents: typed table with inferred columns (default for CSV)")
    .option("--no-typed", "documents: a document table even for CSV (key columns + doc jsonb)")
    .option("--flatten", "documents: flatten nested objects into columns (typed tables)")
    .option("--delimiter <char>", "CSV: field delimiter (default ,)")
    .option("--encoding <name>", "CSV: text encoding of the file (default utf8)")
    .option(
      "--empty-as <null|empty>",
      'CSV: an unquoted empty field is NULL (null, default) or an empty string (empty); a quoted "" is always an empty string',
    )
    .option("--duplicates <policy>", "documents: duplicate keys within one import: fail or last-wins")
    .option(
      "--encrypt <pointers>",
      "documents: encrypt these fields at rest (AES-256-GCM), comma-separated JSON pointers (repeatable)",
      collect,
    )
    .option(
      "--encrypt-columns <columns>",
      "SQLite: encrypt these columns at rest (AES-256-GCM, stored as jsonb envelopes), comma-separated TABLE.COLUMN (repeatable)",
      collect,
    )
    .option(
      "--blind-index <list>",
      "encrypted fields (documents: JSON pointers) or columns (SQLite: TABLE.COLUMN) that also get a blind index for equality lookups (repeatable)",
      collect,
    )
    .option(
      "--integrity",
      "keep a keyed HMAC-SHA256 of every record in record_mac (SQLite: of every table with encrypted columns)",
    )
    .option(
      "--keys <file|env:VAR>",
      "the key file for --encrypt/--encrypt-columns/--integrity (default env:PGSHIFT_KEYS)",
    )
    .action(
      action(async (ctx, source: string | undefined, opts: ImportFlags) => {
        if (opts.undo !== undefined) {
          if (source !== undefined) throw new UsageError("--undo RUN_ID takes no source");
          const { runUndo } = await import("./import-data-only.ts");
          return runUndo(ctx, opts.undo);
        }
        if (source === undefined) throw new UsageError("import needs a source (or --undo RUN_ID)");
        const spec = parseSourceSpec(source);
        if (spec.kind === "sqlite") return runSqliteImport(ctx, spec.path, spec.spec, opts);
        if (opts.encryptColumns !== undefined)
          throw new UsageError(
            "--encrypt-columns is for SQLite imports; encrypt document fields with --encrypt /pointer,...",
          );
        const { runDocumentImport } = await import("./import-documents.ts");
        return runDocumentImport(ctx, spec, { ...ctx.globals, ...opts });
      }),
    );
}

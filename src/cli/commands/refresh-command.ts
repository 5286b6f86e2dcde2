import { join, resolve } from "node:path";
import type { Command } from "commander";
import { parseDuration } from "../../duration.ts";
import { ExitCode, UsageError } from "../../errors.ts";
import type { Dataset } from "../../refresh/dataset.ts";
import type {
  PgbouncerRefreshResult,
  PgbouncerRefreshStatus,
  PgbouncerSwitch,
} from "../../refresh/pgbouncer-refresh.ts";
import type { RefreshResult } from "../../refresh/refresh-dataset.ts";
import type { ProbeReport } from "../../refresh/probe-readers.ts";
import type { RefreshStatus } from "../../refresh/refresh-status.ts";
import { action } from "../action.ts";
import { hmacKeyEnvOption, signingKey, signKeyOption } from "../report-signing.ts";
import { auditOperation } from "../audit-operation.ts";
import type { CommandContext } from "../context.ts";
import { renderTable } from "../output.ts";

/** The refresh library, loaded when a refresh command runs: other commands start without it. */
const library = () => import("../../refresh/index.ts");

interface RunFlags {
  dataset?: string;
  table?: string;
  key?: string[];
  records?: string;
  column?: string[];
  gin?: boolean;
  trgm?: string[];
  duplicates?: string;
  check?: string[];
  delta?: boolean;
  deletedKeys?: string;
  onConflict?: string;
  probe?: string;
  snapshotWait?: string;
  lockTimeout?: string;
  reason?: string;
  name?: string;
  keep?: string;
  keepFor?: string;
  signKey?: string;
  hmacKeyEnv?: string;
  report?: string;
}

/** --switch and the PgBouncer flags (run, rollback, status). */
interface SwitchFlags {
  switch?: string;
  pgbouncerAdmin?: string;
  pgbouncerConfig?: string;
  pgbouncerAlias?: string;
  green?: string;
  pauseBudget?: string;
}

/** The probe's figures in one line: queries, failures by SQLSTATE, latency, versions and their overlap. */
function probeLine(label: string, probe: ProbeReport): string {
  const failures = Object.keys(probe.failedBySqlstate).length
    ? ` (${JSON.stringify(probe.failedBySqlstate)})`
    : "";
  const versions =
    probe.versionsSeen === undefined
      ? ""
      : `; ${probe.versionsSeen} version(s) answered, mixed-version window ${probe.mixedWindowMs!.toFixed(1)} ms`;
  return `${label}: ${probe.queries} queries, ${probe.failed} failed${failures}, p50 ${probe.p50Ms.toFixed(1)} ms, p99 ${probe.p99Ms.toFixed(1)} ms, max ${probe.maxMs.toFixed(1)} ms${versions}`;
}

function addSwitchOptions(command: Command): Command {
  return command
    .option(
      "--switch <mode>",
      "schema (default: one database, schema rename), pgbouncer (two databases behind a PgBouncer alias: PAUSE, RELOAD, RESUME) or pgbouncer-reload (RELOAD only: a mixed window up to the longest transaction)",
    )
    .option(
      "--pgbouncer-admin <url>",
      "PgBouncer's admin console, e.g. postgres://admin@127.0.0.1:6432/pgbouncer",
    )
    .option("--pgbouncer-config <file>", "the pgbouncer.ini PgBouncer reads (the alias's line is rewritten)")
    .option("--pgbouncer-alias <name>", "the [databases] alias applications connect to")
    .option("--green <url>", "the second database (the first, blue, is the target: --to / DATABASE_URL)")
    .option("--pause-budget <duration>", "longest PAUSE allowed before aborting (5s, 800ms)", "5s");
}

/** The PgBouncer switch settings, or undefined in schema mode. */
async function pgbouncerSwitchOf(
  ctx: CommandContext,
  flags: SwitchFlags,
): Promise<PgbouncerSwitch | undefined> {
  const mode = flags.switch ?? "schema";
  if (mode === "schema") {
    const stray = (["pgbouncerAdmin", "pgbouncerConfig", "pgbouncerAlias", "green"] as const).filter(
      (f) => flags[f] !== undefined,
    );
    if (stray.length)
      throw new UsageError(
        "--pgbouncer-admin, --pgbouncer-config, --pgbouncer-alias and --green go with --switch pgbouncer",
      );
    return undefined;
  }
  if (mode !== "pgbouncer" && mode !== "pgbouncer-reload")
    throw new UsageError(`--switch must be schema, pgbouncer or pgbouncer-reload, not "${mode}"`);
  const missing = [
    ["--pgbouncer-admin", flags.pgbouncerAdmin],
    ["--pgbouncer-config", flags.pgbouncerConfig],
    ["--pgbouncer-alias", flags.pgbouncerAlias],
    ["--green", flags.green],
  ].filter(([, v]) => !v);
  if (missing.length) throw new UsageError(`--switch ${mode} needs ${missing.map(([f]) => f).join(", ")}`);
  for (const url of [flags.pgbouncerAdmin!, flags.green!])
    try {
      ctx.out.addSecret(decodeURIComponent(new URL(url).password));
    } catch {
      throw new UsageError("--pgbouncer-admin and --green must be postgres:// URLs");
    }
  const { url: blue } = await ctx.targetUrl();
  return {
    mode,
    adminUrl: flags.pgbouncerAdmin!,
    alias: flags.pgbouncerAlias!,
    configFile: resolve(flags.pgbouncerConfig!),
    databases: { blue, green: flags.green! },
    pauseBudgetMs: parseDuration(flags.pauseBudget ?? "5s", "--pause-budget"),
  };
}

export function renderPgbouncerRefreshResult(result: PgbouncerRefreshResult): string {
  const lines = [
    result.status === "switched"
      ? `refresh ${result.dataset}: version ${result.version} is live in the ${result.live} database (schema ${result.schema}); the ${result.previousLive} database keeps ${result.previousVersion === null ? "nothing" : `version ${result.previousVersion}`} for rollback`
      : `refresh ${result.dataset}: version ${result.version} FAILED verification; the alias still points at the ${result.live} database`,
    "",
    renderTable(
      ["table", "rows", "verified"],
      result.tables.map((t) => [
        t.table,
        String(t.check?.rows ?? ""),
        t.check ? (t.check.identical ? "identical" : `MISMATCH ${t.check.problems.join(", ")}`.trim()) : "",
      ]),
    ),
  ];
  for (const check of result.checks)
    lines.push(`check ${check.ok ? "ok" : `FAILED (${check.error})`}: ${check.sql}`);
  for (const fk of result.foreignKeys)
    lines.push(
      `foreign key ${fk.ok ? "ok" : "FAILED"}: ${fk.name}${fk.orphans ? ` (${fk.orphans} orphaned row(s))` : ""}`,
    );
  const sw = result.switch;
  if (sw)
    lines.push(
      sw.mode === "pgbouncer"
        ? `switch (PAUSE, RELOAD, RESUME): PAUSE took ${sw.pauseMs!.toFixed(1)} ms, clients stalled ${sw.stallMs!.toFixed(1)} ms`
        : `switch (RELOAD only): ${sw.reloadMs.toFixed(1)} ms; transactions in flight finished on the ${result.previousLive} database (a mixed window up to the longest transaction)`,
    );
  if (result.probe) lines.push(probeLine("probe (through PgBouncer)", result.probe));
  lines.push(...reportLines(result));
  lines.push(`took ${(result.durationMs / 1000).toFixed(1)} s`);
  return lines.join("\n");
}

/** Where the run's report went, or why it did not. */
function reportLines(result: Pick<RefreshResult, "report" | "reportError">): string[] {
  if (result.reportError) return [`report NOT written: ${result.reportError}`];
  if (result.report)
    return [
      `report: ${result.report.path}${result.report.signed ? ` (signed, ${result.report.signed})` : ""}`,
    ];
  return [];
}

function renderPgbouncerStatus(status: PgbouncerRefreshStatus): string {
  return [
    `dataset ${status.dataset}: alias ${status.alias} points at the ${status.liveDatabase} database`,
    "",
    "blue:",
    renderStatus(status.blue),
    "",
    "green:",
    renderStatus(status.green),
  ].join("\n");
}

function timestamp(): string {
  return new Date()
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z");
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function number(flag: string, value: string | undefined, scale = 1): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`${flag} must be a number >= 0, got "${value}"`);
  return Math.round(n * scale);
}

function wholeNumber(flag: string, value: string): number {
  if (!/^\d+$/.test(value)) throw new UsageError(`${flag} must be a whole number, got "${value}"`);
  return Number(value);
}

function schemaOf(ctx: CommandContext): string | undefined {
  return ctx.globals.schema;
}

async function datasetOf(ctx: CommandContext, source: string | undefined, flags: RunFlags): Promise<Dataset> {
  const { readDatasetFile, singleTableDataset } = await library();
  const checks = flags.check ?? [];
  if (flags.dataset) {
    if (source || flags.table)
      throw new UsageError("pass either --dataset FILE or SOURCE --table T, not both");
    const dataset = await readDatasetFile(flags.dataset);
    return { ...dataset, checks: [...dataset.checks, ...checks] };
  }
  const schema = schemaOf(ctx);
  if (!source || !flags.table || !schema)
    throw new UsageError("pass SOURCE --schema S --table T [--key /ptr], or --dataset FILE");
  return singleTableDataset({
    schema,
    table: flags.table,
    from: source,
    checks,
    ...(flags.name ? { name: flags.name } : {}),
    ...(flags.key?.length ? { key: flags.key.length === 1 ? flags.key[0]! : flags.key } : {}),
    ...(flags.records ? { records: flags.records } : {}),
    ...(flags.column?.length ? { columns: flags.column } : {}),
    ...(flags.gin ? { gin: true } : {}),
    ...(flags.trgm?.length ? { trgm: flags.trgm } : {}),
    ...(flags.duplicates ? { duplicates: flags.duplicates as "fail" | "last-wins" } : {}),
  });
}

export function renderRefreshResult(result: RefreshResult): string {
  const lines = [
    result.status === "switched"
      ? `refresh ${result.dataset}: version ${result.version} is live in schema ${result.schema}` +
        (result.previousSchema ? ` (version ${result.previousVersion} kept as ${result.previousSchema})` : "")
      : `refresh ${result.dataset}: version ${result.version} FAILED verification; live is untouched, the next version was dropped`,
    "",
    renderTable(
      ["table", "rows", "inserted", "updated", "unchanged", "deleted", "verified"],
      result.tables.map((t) => [
        t.table,
        String(t.check?.rows ?? ""),
        String(t.inserted),
        String(t.updated),
        String(t.unchanged),
        String(t.deleted),
        t.check ? (t.check.identical ? "identical" : `MISMATCH ${t.check.problems.join(", ")}`.trim()) : "",
      ]),
    ),
  ];
  for (const check of result.checks)
    lines.push(`check ${check.ok ? "ok" : `FAILED (${check.error})`}: ${check.sql}`);
  for (const fk of result.foreignKeys ?? [])
    lines.push(
      `foreign key ${fk.ok ? "ok" : "FAILED"}: ${fk.name}${fk.error ? ` (${fk.error})` : fk.orphans ? ` (${fk.orphans} orphaned row(s), first values: ${fk.sample.join(", ")})` : ""}`,
    );
  if (result.swap)
    lines.push(
      `swap: lock held ${result.swap.lockHeldMs.toFixed(1)} ms, ${result.swap.attempts} attempt(s); waited ${result.snapshotWaitMs} ms for old snapshots`,
    );
  if (result.probe) lines.push(probeLine("probe", result.probe));
  if (result.prune)
    lines.push(
      "error" in result.prune
        ? `prune after the switch failed (the switch stands): ${result.prune.error}`
        : `pruned ${result.prune.pruned.map((p) => p.schema).join(", ") || "nothing"}` +
            (result.prune.spare
              ? ` (version ${result.prune.spare.version}'s tables kept as ${result.prune.spare.schema} for the next delta build)`
              : ""),
    );
  const reused = result.tables.filter((t) => t.recycledFrom).map((t) => t.table);
  if (result.recycled)
    lines.push(
      reused.length
        ? `delta build reused ${result.recycled.schema} (brought in line with live) for: ${reused.join(", ")}`
        : `delta build copied live: ${result.recycled.schema} differed too much or in shape (dropped)`,
    );
  lines.push(...reportLines(result));
  lines.push(`took ${(result.durationMs / 1000).toFixed(1)} s`);
  return lines.join("\n");
}

function renderStatus(status: RefreshStatus): string {
  if (status.versions.length === 0) return `dataset ${status.dataset}: no versions recorded`;
  const spare = status.spare
    ? `\nspare: ${status.spare.schema} (tables of pruned version ${status.spare.version}, for the next delta build)`
    : "";
  return `${renderTable(
    ["version", "status", "schema", "mode", "rows", "switched at", "by", "why"],
    status.versions.map((v) => [
      String(v.version),
      v.status,
      v.schemaName,
      v.mode,
      Object.entries(v.counts)
        .map(([t, n]) => `${t}=${n}`)
        .join(" "),
      v.switchedAt ?? "",
      v.switchedBy ?? "",
      v.reason ?? (v.error as { message?: string } | null)?.message ?? "",
    ]),
  )}${spare}`;
}

function datasetName(ctx: CommandContext, name: string | undefined): string {
  const dataset = name ?? schemaOf(ctx);
  if (!dataset) throw new UsageError("name the dataset: pgshift refresh <command> DATASET (or --schema S)");
  return dataset;
}

export function registerRefreshCommands(program: Command): void {
  const group = program
    .command("refresh")
    .description(
      "blue-green data refresh: build the next version aside, verify, switch atomically, roll back",
    )
    .addHelpText(
      "after",
      "\nSwitch modes (--switch): schema (default; one database, ALTER SCHEMA renames in one transaction); pgbouncer (two databases behind one PgBouncer alias: PAUSE within --pause-budget, RELOAD, RESUME); pgbouncer-reload (RELOAD only, a mixed window up to the longest transaction).\nEvery run writes a JSON report (--report; signed with --sign-key or --hmac-key-env).\nExit codes: 0 switched; 1 failure (live untouched); 2 usage; 3 verification failed (live untouched).",
    );

  addSwitchOptions(group.command("run"))
    .description("build <schema>__next, verify it against the sources, then swap it live")
    .argument("[source]", "json:DIR, json:FILE, ndjson:FILE, csv:FILE (one table, with --schema and --table)")
    .option(
      "--dataset <file>",
      "a dataset file (JSON: schema, tables with sources and import options, checks)",
    )
    .option("--table <name>", "the table (one-table dataset)")
    .option("--key <pointer>", "JSON pointer of the key (repeat for a composite key)", collect)
    .option("--records <pointer>", "JSON pointer of the records array in each file")
    .option("--column <spec>", "extra typed column name=/pointer:type (repeatable)", collect)
    .option("--gin", "GIN (jsonb_path_ops) index on doc")
    .option("--trgm <pointer>", "trigram index on a text path (repeatable)", collect)
    .option("--duplicates <policy>", "fail or last-wins")
    .option(
      "--check <sql>",
      "SQL returning true, run against the next version before the switch (repeatable)",
      collect,
    )
    .option("--delta", "the sources hold only changed/new records: next = live + delta")
    .option("--deleted-keys <file>", "with --delta: keys to delete, one a line")
    .option(
      "--on-conflict <policy>",
      "with --delta, rows changed locally since the last refresh that the delta changes too: fail (default), source-wins, keep-local",
    )
    .option(
      "--probe <n>",
      "run N reader clients (key lookups; containment queries where doc has a GIN index) during build and switch, report failed queries and latency",
    )
    .option(
      "--snapshot-wait <seconds>",
      "how long to wait for sessions with snapshots older than the load",
      "30",
    )
    .option("--lock-timeout <ms>", "lock_timeout of the swap transaction (retried with jitter)", "2000")
    .option("--reason <text>", "why (recorded with the version)")
    .option("--name <dataset>", "name the versions are recorded under (default: the schema)")
    .option("--report <path>", "where to write the JSON report (default under the report directory)")
    .addOption(signKeyOption())
    .addOption(hmacKeyEnvOption())
    .option("--keep <n>", "after the switch, keep the newest N previous versions (drop older ones)")
    .option(
      "--keep-for <duration>",
      "after the switch, keep previous versions retired less than this long ago (24h, 30m); with --keep, either keeps",
    )
    .action(
      action(async (ctx, source: string | undefined, flags: RunFlags & SwitchFlags) => {
        const { assertConflictPolicy, refreshDataset, refreshViaPgbouncer } = await library();
        const dataset = await datasetOf(ctx, source, flags);
        const viaPgbouncer = await pgbouncerSwitchOf(ctx, flags);
        const key = signingKey(flags);
        const reportPath = resolve(
          flags.report ?? join(ctx.settings.reportDir, `refresh-${dataset.name}-${timestamp()}.json`),
        );
        const probe = number("--probe", flags.probe);
        if (viaPgbouncer) {
          const schemaOnly = (
            [
              ["--keep", flags.keep],
              ["--keep-for", flags.keepFor],
            ] as const
          ).filter(([, value]) => value !== undefined);
          if (schemaOnly.length)
            throw new UsageError(
              `${schemaOnly.map(([flag]) => flag).join(", ")} work with --switch schema only: in the PgBouncer modes the idle database holds the one previous version`,
            );
          const result = await refreshViaPgbouncer({
            dataset,
            switch: viaPgbouncer,
            delta: Boolean(flags.delta),
            ...(probe ? { probe } : {}),
            ...(flags.reason ? { reason: flags.reason } : {}),
            report: { path: reportPath, ...(key ? { key } : {}) },
            onStep: (_step, detail) => ctx.out.notice(detail),
            signal: ctx.signal,
          });
          ctx.out.result(result, () => renderPgbouncerRefreshResult(result));
          // the event goes to the database that holds the version (live now, or the one that refused it)
          const built =
            viaPgbouncer.databases[
              result.status === "switched" ? result.live : result.live === "blue" ? "green" : "blue"
            ];
          const { createPool } = await import("../../pg/pool.ts");
          const auditPool = createPool({ url: built, max: 1 });
          try {
            await auditOperation(ctx.out, auditPool, {
              action: "refresh",
              detail: {
                dataset: result.dataset,
                version: result.version,
                status: result.status,
                switch: viaPgbouncer.mode,
              },
              report: JSON.stringify(result),
            });
          } finally {
            await auditPool.end();
          }
          return result.status === "switched" ? ExitCode.ok : ExitCode.mismatch;
        }
        const pool = await ctx.pool({ max: Math.max(6, (probe ?? 0) + 4) });
        const result = await refreshDataset({
          pool,
          dataset,
          delta: Boolean(flags.delta),
          ...(flags.deletedKeys ? { deletedKeysFile: flags.deletedKeys } : {}),
          ...(flags.onConflict ? { onConflict: assertConflictPolicy(flags.onConflict) } : {}),
          ...(probe ? { probe } : {}),
          ...(flags.keep !== undefined ? { keep: wholeNumber("--keep", flags.keep) } : {}),
          ...(flags.keepFor !== undefined ? { keepFor: flags.keepFor } : {}),
          snapshotWaitMs: number("--snapshot-wait", flags.snapshotWait, 1000)!,
          lockTimeoutMs: number("--lock-timeout", flags.lockTimeout)!,
          ...(flags.reason ? { reason: flags.reason } : {}),
          report: { path: reportPath, ...(key ? { key } : {}) },
          onStep: (_step, detail) => ctx.out.notice(detail),
          signal: ctx.signal,
        });
        ctx.out.result(result, () => renderRefreshResult(result));
        await auditOperation(ctx.out, pool, {
          action: "refresh",
          detail: { dataset: result.dataset, version: result.version, status: result.status },
          report: JSON.stringify(result),
        });
        return result.status === "switched" ? ExitCode.ok : ExitCode.mismatch;
      }),
    );

  addSwitchOptions(group.command("rollback"))
    .description("put the previous version back live (one schema swap)")
    .argument("[dataset]", "dataset name (default: --schema)")
    .option("--reason <text>", "why (recorded)")
    .action(
      action(async (ctx, name: string | undefined, flags: { reason?: string } & SwitchFlags) => {
        const { rollbackDataset, rollbackViaPgbouncer } = await library();
        const viaPgbouncer = await pgbouncerSwitchOf(ctx, flags);
        if (viaPgbouncer) {
          const result = await rollbackViaPgbouncer({
            dataset: datasetName(ctx, name),
            switch: viaPgbouncer,
            ...(flags.reason ? { reason: flags.reason } : {}),
          });
          ctx.out.result(
            result,
            () =>
              `rollback ${result.dataset}: version ${result.version} is live again in the ${result.live} database; version ${result.rolledBack} kept in the other (took ${result.durationMs.toFixed(0)} ms)`,
          );
          return ExitCode.ok;
        }
        const pool = await ctx.pool();
        const result = await rollbackDataset({
          pool,
          dataset: datasetName(ctx, name),
          ...(flags.reason ? { reason: flags.reason } : {}),
        });
        ctx.out.result(
          result,
          () =>
            `rollback ${result.dataset}: version ${result.version} is live again; version ${result.rolledBack} kept as previous (lock held ${result.swap.lockHeldMs.toFixed(1)} ms, took ${result.durationMs.toFixed(0)} ms)`,
        );
        await auditOperation(ctx.out, pool, {
          action: "refresh_rollback",
          detail: { dataset: result.dataset, version: result.version, rolledBack: result.rolledBack },
          report: JSON.stringify(result),
        });
        return ExitCode.ok;
      }),
    );

  addSwitchOptions(group.command("status"))
    .description(
      "versions of a dataset: live, previous, building, failed; counts, sources, who switched and why",
    )
    .argument("[dataset]", "dataset name (default: --schema)")
    .action(
      action(async (ctx, name: string | undefined, flags: SwitchFlags) => {
        const { pgbouncerRefreshStatus, refreshStatus } = await library();
        const viaPgbouncer = await pgbouncerSwitchOf(ctx, flags);
        if (viaPgbouncer) {
          const status = await pgbouncerRefreshStatus({
            dataset: datasetName(ctx, name),
            switch: viaPgbouncer,
          });
          ctx.out.result(status, () => renderPgbouncerStatus(status));
          return ExitCode.ok;
        }
        const status = await refreshStatus({ pool: await ctx.pool(), dataset: datasetName(ctx, name) });
        ctx.out.result(status, () => renderStatus(status));
        return ExitCode.ok;
      }),
    );

  group
    .command("prune")
    .description("drop previous versions beyond the newest --keep N and retired longer ago than --keep-for")
    .argument("[dataset]", "dataset name (default: --schema)")
    .option("--keep <n>", "previous versions to keep (newest first)")
    .option("--keep-for <duration>", "keep previous versions retired less than this long ago (24h, 30m)")
    .action(
      action(async (ctx, name: string | undefined, flags: { keep?: string; keepFor?: string }) => {
        const { pruneDataset } = await library();
        const result = await pruneDataset({
          pool: await ctx.pool(),
          dataset: datasetName(ctx, name),
          ...(flags.keep !== undefined ? { keep: wholeNumber("--keep", flags.keep) } : {}),
          ...(flags.keepFor !== undefined ? { keepFor: flags.keepFor } : {}),
        });
        ctx.out.result(
          result,
          () =>
            `prune ${result.dataset}: dropped ${result.pruned.map((p) => p.schema).join(", ") || "nothing"}; kept versions ${result.kept.join(", ") || "none"}`,
        );
        return ExitCode.ok;
      }),
    );
}

import { userInfo } from "node:os";
import type pg from "pg";
import { UsageError } from "../errors.ts";
import { createPool } from "../pg/pool.ts";
import { quoteIdent } from "../pg/quote.ts";
import { buildFull, dropSchema, schemaExists, type TableBuild } from "./build-next.ts";
import type { Dataset } from "./dataset.ts";
import { verificationSummary } from "./verify-next.ts";
import { checkForeignKeys, type ForeignKeyCheck } from "./foreign-keys.ts";
import { aliasTargetOfUrl, readAliasTarget, readConfig, sameTarget } from "./pgbouncer-ini.ts";
import {
  type AliasSwitchResult,
  assertAliasName,
  type PgbouncerSwitchMode,
  servedTarget,
  switchAlias,
} from "./pgbouncer-switch.ts";
import { type ProbeReport, startProbe } from "./probe-readers.ts";
import { NoPreviousVersionError, PgbouncerConfigDriftError, RefreshFailedError } from "./refresh-errors.ts";
import { withRefreshLock } from "./refresh-lock.ts";
import { type RefreshReportOptions, type RefreshReportRecord, writeRefreshReport } from "./refresh-report.ts";
import { ensureRefreshSchema } from "./refresh-schema.ts";
import { type RefreshStatus, refreshStatus } from "./refresh-status.ts";
import { runUserChecks, type TableCheck, type UserCheck, verifyTable } from "./verify-next.ts";

export type Color = "blue" | "green";

/** Two databases behind one PgBouncer alias; a refresh builds into the one the alias does not point at. */
export interface PgbouncerSwitch {
  mode: PgbouncerSwitchMode;
  /** PgBouncer's admin console, e.g. postgres://admin@127.0.0.1:6432/pgbouncer. */
  adminUrl: string;
  /** The `[databases]` alias applications connect to. */
  alias: string;
  /** The pgbouncer.ini PgBouncer reads (rewritten: the alias's line only). */
  configFile: string;
  /** Direct URLs of the two databases (not through PgBouncer). */
  databases: { blue: string; green: string };
  /** How long PAUSE may take (default 5000 ms). */
  pauseBudgetMs?: number;
}

export interface PgbouncerRefreshOptions {
  dataset: Dataset;
  switch: PgbouncerSwitch;
  delta?: boolean;
  by?: string;
  reason?: string;
  /** N reader clients through the alias (via PgBouncer) during build and switch. */
  probe?: number;
  onStep?: (step: PgbouncerRefreshStep, detail: string) => void | Promise<void>;
  signal?: AbortSignal;
  /**
   * Write the run's JSON report here (signed when a key is given), recorded with the version in the
   * database it was built in; also for failed runs.
   */
  report?: RefreshReportOptions;
}

export type PgbouncerRefreshStep = "build" | "verify" | "switch";

export interface PgbouncerRefreshResult {
  dataset: string;
  schema: string;
  version: number;
  previousVersion: number | null;
  status: "switched" | "verification_failed";
  /** The database the alias points at now, and the one it pointed at before. */
  live: Color;
  previousLive: Color;
  by: string;
  reason: string | null;
  tables: (TableBuild & { check: TableCheck | null })[];
  checks: UserCheck[];
  foreignKeys: ForeignKeyCheck[];
  switch: AliasSwitchResult | null;
  probe?: ProbeReport;
  stepMs: Partial<Record<PgbouncerRefreshStep, number>>;
  durationMs: number;
  /** The report written (with options.report): path, sha256, signature algorithm. */
  report?: RefreshReportRecord;
  /** Why the report could not be written (the run's outcome stands). */
  reportError?: string;
}

const other = (color: Color): Color => (color === "blue" ? "green" : "blue");

/**
 * Which of the two databases the alias points at: the config's alias line, which must agree with what
 * the running PgBouncer serves (SHOW DATABASES). A switch killed between the config rewrite and RELOAD
 * leaves them apart; building into the database the file does not name would then build into live.
 */
export async function liveColor(settings: PgbouncerSwitch): Promise<Color> {
  assertAliasName(settings.alias);
  const target = readAliasTarget(await readConfig(settings.configFile), settings.alias);
  const served = await servedTarget(settings.adminUrl, settings.alias);
  if (!served || !sameTarget(target, served))
    throw new PgbouncerConfigDriftError(
      settings.alias,
      settings.configFile,
      target.dbname,
      served?.dbname ?? null,
    );
  for (const color of ["blue", "green"] as const)
    if (sameTarget(target, aliasTargetOfUrl(settings.databases[color]))) return color;
  throw new UsageError(
    `PgBouncer alias "${settings.alias}" points at database "${target.dbname}", which is neither the blue nor the green database given`,
  );
}

async function withPools<T>(
  settings: PgbouncerSwitch,
  fn: (pools: Record<Color, pg.Pool>) => Promise<T>,
): Promise<T> {
  const pools = {
    blue: createPool({ url: settings.databases.blue, max: 4, applicationName: "pgshift refresh" }),
    green: createPool({ url: settings.databases.green, max: 4, applicationName: "pgshift refresh" }),
  };
  try {
    return await fn(pools);
  } finally {
    await Promise.all([pools.blue.end(), pools.green.end()]);
  }
}

/** The dataset's refresh lock in both databases (blue first, always): one run, rollback or prune at a time. */
function withBothLocks<T>(pools: Record<Color, pg.Pool>, dataset: string, fn: () => Promise<T>): Promise<T> {
  return withRefreshLock(pools.blue, dataset, () => withRefreshLock(pools.green, dataset, fn));
}

/** The longest running transaction on a database, described for the PAUSE-timeout error. */
async function longestTransaction(pool: pg.Pool): Promise<string | null> {
  const { rows } = await pool.query(
    `select pid, application_name, round(extract(epoch from clock_timestamp() - xact_start)::numeric, 1) as seconds
       from pg_stat_activity
      where datname = current_database() and xact_start is not null and pid <> pg_backend_pid()
      order by xact_start limit 1`,
  );
  const r = rows[0];
  return r
    ? `pid ${r.pid}${r.application_name ? ` (${r.application_name})` : ""}, in a transaction for ${r.seconds} s`
    : null;
}

const aliasUrl = (settings: PgbouncerSwitch): string => {
  const url = new URL(settings.adminUrl);
  url.pathname = `/${encodeURIComponent(settings.alias)}`;
  return url.toString();
};

function switchOptions(settings: PgbouncerSwitch, from: pg.Pool, to: Color) {
  return {
    mode: settings.mode,
    adminUrl: settings.adminUrl,
    alias: settings.alias,
    configFile: settings.configFile,
    to: aliasTargetOfUrl(settings.databases[to]),
    ...(settings.pauseBudgetMs !== undefined ? { pauseBudgetMs: settings.pauseBudgetMs } : {}),
    longestTransaction: () => longestTransaction(from),
  };
}

/**
 * Refreshes a dataset across two databases behind one PgBouncer alias: drops and rebuilds schema
 * `<schema>` in the database the alias does not point at, verifies it, then points the alias there
 * (PAUSE/RELOAD/RESUME, or RELOAD only in mode "pgbouncer-reload"). The other database keeps the
 * previous version for rollback. Versions are recorded in each database's pgshift schema: the one the
 * alias points at holds the live row. A failure leaves the alias where it was.
 *
 * @example
 *   await refreshViaPgbouncer({ dataset, switch: { mode: "pgbouncer", adminUrl, alias: "app",
 *     configFile: "/etc/pgbouncer/pgbouncer.ini", databases: { blue, green } } });
 */
export async function refreshViaPgbouncer(options: PgbouncerRefreshOptions): Promise<PgbouncerRefreshResult> {
  const { dataset, switch: settings } = options;
  if (options.delta)
    throw new UsageError(
      "--delta is not supported with --switch pgbouncer: the idle database holds the previous version, not the live one; use --switch schema for delta refreshes",
    );
  const started = performance.now();
  await liveColor(settings); // a config or alias problem is said before connecting
  const schema = dataset.schema;
  return withPools(settings, async (pools) => {
    await ensureRefreshSchema(pools.blue);
    await ensureRefreshSchema(pools.green);
    return withBothLocks(pools, dataset.name, async () => {
      // read under the locks: a rollback that ran meanwhile moved the alias
      const liveNow = await liveColor(settings);
      const idle = other(liveNow);
      const target = pools[idle];
      const versions = await Promise.all(
        [pools.blue, pools.green].map((p) =>
          p.query(
            "select coalesce(max(version), 0) as max from pgshift.refresh_versions where dataset = $1",
            [dataset.name],
          ),
        ),
      );
      const version = Math.max(...versions.map((v) => Number(v.rows[0].max))) + 1;
      const liveRow = (
        await pools[liveNow].query(
          "select version from pgshift.refresh_versions where dataset = $1 and status = 'live'",
          [dataset.name],
        )
      ).rows[0];
      const previousVersion: number | null = liveRow?.version ?? null;
      await target.query(
        `update pgshift.refresh_versions set status = 'failed', error = '{"step": "build", "message": "abandoned: the run ended before it finished"}'
            where dataset = $1 and status = 'building'`,
        [dataset.name],
      );
      await target.query(
        "insert into pgshift.refresh_versions (dataset, version, schema_name, status, mode) values ($1, $2, $3, 'building', 'full')",
        [dataset.name, version, schema],
      );
      // the readers go through PgBouncer, as the applications do
      const readers = options.probe ?? 0;
      const probePool = readers > 0 ? createPool({ url: aliasUrl(settings), max: 2 }) : undefined;
      const probe = probePool
        ? await startProbe(
            probePool,
            readers,
            (await schemaExists(pools[liveNow], schema))
              ? dataset.tables.map((t) => ({ schema, table: t.table }))
              : [],
          )
        : undefined;
      let probeReport: ProbeReport | undefined;
      const stopProbe = async () => {
        if (probe && !probeReport) {
          probeReport = await probe.stop();
          await probePool?.end();
        }
        return probeReport ? { probe: probeReport } : {};
      };
      let step = "build" as PgbouncerRefreshStep;
      const stepMs: Partial<Record<PgbouncerRefreshStep, number>> = {};
      let stepStarted = performance.now();
      const enter = (next: PgbouncerRefreshStep) => {
        stepMs[step] = performance.now() - stepStarted;
        step = next;
        stepStarted = performance.now();
      };
      // the report is written last: it holds the whole result; the outcome stands whatever happens to it
      const finish = async (result: PgbouncerRefreshResult): Promise<PgbouncerRefreshResult> => {
        if (!options.report) return result;
        try {
          return { ...result, report: await writeRefreshReport(target, options.report, { ...result }) };
        } catch (error) {
          return { ...result, reportError: (error as Error).message };
        }
      };
      const markFailed = (message: string) =>
        target
          .query(
            "update pgshift.refresh_versions set status = 'failed', error = $3 where dataset = $1 and version = $2",
            [dataset.name, version, JSON.stringify({ step, message })],
          )
          .catch(() => undefined);
      try {
        await options.onStep?.(
          "build",
          `full build of ${dataset.tables.length} table(s) into ${schema} of the ${idle} database`,
        );
        // The idle database's copy is the version before the live one: rebuilding it ends that rollback.
        await dropSchema(target, schema);
        await target.query(
          "update pgshift.refresh_versions set status = 'pruned' where dataset = $1 and status in ('previous', 'live')",
          [dataset.name],
        );
        await target.query(`create schema ${quoteIdent(schema)}`);
        const builds: TableBuild[] = [];
        for (const table of dataset.tables)
          builds.push(await buildFull(target, schema, table, options.signal));

        enter("verify");
        await options.onStep?.("verify", `counts and checksums of ${schema} (${idle}) against the sources`);
        const tableChecks: TableCheck[] = [];
        for (const [i, table] of dataset.tables.entries())
          tableChecks.push(
            await verifyTable(target, schema, table, { delta: false, runId: builds[i]!.runId }),
          );
        const [foreignKeys, checks] = await Promise.all([
          checkForeignKeys(target, schema, dataset.foreignKeys ?? []),
          runUserChecks(target, schema, dataset.checks),
        ]);
        const verification = verificationSummary(tableChecks, checks, foreignKeys);
        await target.query(
          `update pgshift.refresh_versions set sources = $3, counts = $4, verification = $5, built_at = now()
              where dataset = $1 and version = $2`,
          [
            dataset.name,
            version,
            JSON.stringify(tableChecks.map((c) => ({ table: c.table, source: c.source }))),
            JSON.stringify(Object.fromEntries(tableChecks.map((c) => [c.table, c.rows]))),
            JSON.stringify(verification),
          ],
        );
        const by = options.by ?? userInfo().username;
        const base = {
          dataset: dataset.name,
          schema,
          version,
          previousVersion,
          previousLive: liveNow,
          by,
          reason: options.reason ?? null,
          tables: builds.map((b, i) => ({ ...b, check: tableChecks[i] ?? null })),
          checks,
          foreignKeys,
        };
        if (!verification.identical || !verification.checksPassed || !verification.foreignKeysHold) {
          await dropSchema(target, schema).catch(() => undefined);
          await markFailed("verification failed");
          return finish({
            ...base,
            status: "verification_failed" as const,
            live: liveNow,
            switch: null,
            ...(await stopProbe()),
            stepMs: { ...stepMs, verify: performance.now() - stepStarted },
            durationMs: performance.now() - started,
          });
        }

        enter("switch");
        await options.onStep?.("switch", `${settings.alias}: ${liveNow} -> ${idle} (${settings.mode})`);
        const switched = await switchAlias(switchOptions(settings, pools[liveNow], idle));
        await recordSwitch(
          pools,
          liveNow,
          dataset.name,
          previousVersion,
          version,
          by,
          options.reason ?? null,
        );
        return finish({
          ...base,
          status: "switched" as const,
          live: idle,
          switch: switched,
          ...(await stopProbe()),
          stepMs: { ...stepMs, switch: performance.now() - stepStarted },
          durationMs: performance.now() - started,
        });
      } catch (error) {
        await stopProbe().catch(() => undefined);
        await markFailed(error instanceof Error ? error.message : String(error));
        // Before the switch the alias never reached it: what was built goes, as in schema mode. A failed switch
        // keeps it: were the config's restore to have failed too, the alias could point at it.
        let leftBehind: string | null = null;
        if (step === "switch")
          leftBehind = `schema "${schema}" in the ${idle} database (verified, not live; the next run rebuilds it)`;
        else
          await dropSchema(target, schema).catch(() => {
            leftBehind = `schema "${schema}" in the ${idle} database`;
          });
        const failure = new RefreshFailedError(step, version, leftBehind, error);
        if (options.report)
          await writeRefreshReport(target, options.report, {
            dataset: dataset.name,
            schema,
            version,
            status: "failed",
            mode: "full",
            live: liveNow,
            error: failure.toJSON(),
            stepMs,
            durationMs: performance.now() - started,
          }).catch(() => undefined);
        throw failure;
      }
    });
  });
}

/** The database the alias left: its live row becomes previous; the other's version becomes live. */
async function recordSwitch(
  pools: Record<Color, pg.Pool>,
  from: Color,
  dataset: string,
  fromVersion: number | null,
  toVersion: number,
  by: string,
  reason: string | null,
): Promise<void> {
  if (fromVersion !== null)
    await pools[from].query(
      "update pgshift.refresh_versions set status = 'previous', retired_at = now() where dataset = $1 and version = $2",
      [dataset, fromVersion],
    );
  await pools[other(from)].query(
    `update pgshift.refresh_versions set status = 'live', retired_at = null, switched_at = now(), switched_by = $3, reason = $4
      where dataset = $1 and version = $2`,
    [dataset, toVersion, by, reason],
  );
}

export interface PgbouncerRollbackResult {
  dataset: string;
  /** The version live again, and the database holding it. */
  version: number;
  live: Color;
  rolledBack: number | null;
  switch: AliasSwitchResult;
  durationMs: number;
}

/** Points the alias back at the other database, which still holds the previous version. */
export async function rollbackViaPgbouncer(options: {
  dataset: string;
  switch: PgbouncerSwitch;
  by?: string;
  reason?: string;
}): Promise<PgbouncerRollbackResult> {
  const { dataset, switch: settings } = options;
  const started = performance.now();
  await liveColor(settings);
  return withPools(settings, async (pools) => {
    await ensureRefreshSchema(pools.blue);
    await ensureRefreshSchema(pools.green);
    return withBothLocks(pools, dataset, async () => {
      const liveNow = await liveColor(settings);
      const back = other(liveNow);
      const { rows } = await pools[back].query(
        "select version, schema_name from pgshift.refresh_versions where dataset = $1 and status = 'previous' order by version desc limit 1",
        [dataset],
      );
      const target = rows[0];
      if (!target || !(await schemaExists(pools[back], target.schema_name)))
        throw new NoPreviousVersionError(dataset);
      const { rows: liveRows } = await pools[liveNow].query(
        "select version from pgshift.refresh_versions where dataset = $1 and status = 'live'",
        [dataset],
      );
      const rolledBack: number | null = liveRows[0]?.version ?? null;
      const switched = await switchAlias(switchOptions(settings, pools[liveNow], back));
      await recordSwitch(
        pools,
        liveNow,
        dataset,
        rolledBack,
        target.version,
        options.by ?? userInfo().username,
        options.reason ?? `rollback from version ${rolledBack}`,
      );
      return {
        dataset,
        version: target.version,
        live: back,
        rolledBack,
        switch: switched,
        durationMs: performance.now() - started,
      };
    });
  });
}

export interface PgbouncerRefreshStatus {
  dataset: string;
  alias: string;
  /** The database the alias points at (read from the config). */
  liveDatabase: Color;
  blue: RefreshStatus;
  green: RefreshStatus;
}

/** Each database's versions, and which one the alias points at. */
export async function pgbouncerRefreshStatus(options: {
  dataset: string;
  switch: PgbouncerSwitch;
}): Promise<PgbouncerRefreshStatus> {
  const liveDatabase = await liveColor(options.switch);
  return withPools(options.switch, async (pools) => ({
    dataset: options.dataset,
    alias: options.switch.alias,
    liveDatabase,
    blue: await refreshStatus({ pool: pools.blue, dataset: options.dataset }),
    green: await refreshStatus({ pool: pools.green, dataset: options.dataset }),
  }));
}

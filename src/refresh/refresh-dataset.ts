import { userInfo } from "node:os";
import type pg from "pg";
import { parseDuration } from "../duration.ts";
import { UsageError } from "../errors.ts";
import { withClient } from "../pg/pool.ts";
import { quoteIdent, quoteQualified } from "../pg/quote.ts";
import {
  buildDelta,
  buildFull,
  dropSchema,
  primaryKeyColumn,
  readDeletedKeys,
  schemaExists,
  type TableBuild,
} from "./build-next.ts";
import type { Dataset } from "./dataset.ts";
import { verificationSummary } from "./verify-next.ts";
import { checkForeignKeys, type ForeignKeyCheck } from "./foreign-keys.ts";
import { type ProbeReport, startProbe } from "./probe-readers.ts";
import { type PruneResult, pruneVersions, spareSchemaName } from "./prune.ts";
import { RefreshFailedError } from "./refresh-errors.ts";
import {
  assertConflictPolicy,
  type ConflictPolicy,
  localChanges,
  recordRowHashes,
  resolveConflicts,
} from "./conflicts.ts";
import { withRefreshLock } from "./refresh-lock.ts";
import { type RefreshReportOptions, type RefreshReportRecord, writeRefreshReport } from "./refresh-report.ts";
import { ensureRefreshSchema } from "./refresh-schema.ts";
import { swapSchemas } from "./schema-swap.ts";
import { waitForFreshSnapshots } from "./snapshot-guard.ts";
import {
  runUserChecks,
  type TableCheck,
  type UserCheck,
  verifyDeltaTable,
  verifyTable,
} from "./verify-next.ts";

export interface RefreshOptions {
  pool: pg.Pool;
  dataset: Dataset;
  /** The sources hold only changed and new records; next = live + the delta. */
  delta?: boolean;
  /** With delta: a file of keys (one a line) to delete from every table of the dataset. */
  deletedKeysFile?: string;
  /** How long to wait for sessions holding snapshots older than the load (default 30 s). */
  snapshotWaitMs?: number;
  /** lock_timeout of the swap (default 2000 ms), retried with jitter on 55P03. */
  lockTimeoutMs?: number;
  /** Who switched (default: the OS user) and why; recorded with the version. */
  by?: string;
  reason?: string;
  /** Rows of the live version changed locally since the last refresh and changed by the delta too. */
  onConflict?: ConflictPolicy;
  /** After the switch, drop all but the newest `keep` previous versions (default: keep all). */
  keep?: number;
  /**
   * After the switch, drop previous versions retired longer ago than this (ms, or "24h", "30m"); with
   * `keep`, a version stays while either keeps it (among the newest `keep`, or younger than `keepFor`).
   */
  keepFor?: number | string;
  /** N reader clients running key lookups (and containment queries) on the live tables during build and switch. */
  probe?: number;
  /** Write the run's JSON report here (signed when a key is given) and record it with the version. */
  report?: RefreshReportOptions;
  /** Called as each step starts; a returned promise is awaited before the step runs. */
  onStep?: (step: RefreshStep, detail: string) => void | Promise<void>;
  signal?: AbortSignal;
}

export type RefreshStep = "build" | "verify" | "snapshot-guard" | "swap";

export interface RefreshResult {
  dataset: string;
  schema: string;
  version: number;
  /** The version that was live before (kept as schema `<schema>__prev_<version>`), if any. */
  previousVersion: number | null;
  previousSchema: string | null;
  status: "switched" | "verification_failed";
  /** Who ran it and why (recorded with the version). */
  by?: string;
  reason?: string | null;
  mode: "full" | "delta";
  tables: (TableBuild & { check: TableCheck | null })[];
  checks: UserCheck[];
  /** The dataset's foreign keys checked on the next version: orphans per key. */
  foreignKeys: ForeignKeyCheck[];
  snapshotWaitMs: number;
  swap: { attempts: number; lockHeldMs: number } | null;
  /** What the --probe readers saw, when asked for. */
  probe?: ProbeReport;
  /**
   * A delta build that found the spare (`<schema>__spare`: the tables of the newest version an earlier
   * delta run's prune dropped) reused them where shape and rows allowed (tables[].recycledFrom); the spare
   * is used up either way, and this run's prune keeps a new one.
   */
  recycled?: { schema: string };
  /** What the --keep prune after the switch dropped (or why it could not: the switch stands). */
  prune?: PruneResult | { error: string };
  /** The report written (with --report / options.report): path, sha256, signature algorithm. */
  report?: RefreshReportRecord;
  /** Why the report could not be written (the run's outcome stands). */
  reportError?: string;
  /** Milliseconds spent in each step that ran. */
  stepMs: Partial<Record<RefreshStep, number>>;
  durationMs: number;
}

export const nextSchemaName = (schema: string): string => `${schema}__next`;
export const previousSchemaName = (schema: string, version: number): string => `${schema}__prev_${version}`;

/**
 * Refreshes a dataset blue-green: builds the next version in `<schema>__next`, verifies it (counts and
 * checksums against the sources, orphans per foreign key, the user's checks), waits out snapshots older
 * than the load, then swaps schemas in one transaction; the old live version stays as `<schema>__prev_<version>`. Any failure
 * leaves live untouched and drops the next schema. Verification failure returns status
 * "verification_failed"; other failures throw RefreshFailedError.
 *
 * @example
 *   await refreshDataset({ pool, dataset: singleTableDataset({ schema: "recalls", table: "device",
 *     from: "ndjson:device.ndjson", key: "/id" }) });
 */
export async function refreshDataset(options: RefreshOptions): Promise<RefreshResult> {
  const { pool, dataset } = options;
  const started = performance.now();
  const mode = options.delta ? "delta" : "full";
  if (options.deletedKeysFile && !options.delta) throw new UsageError("--deleted-keys goes with --delta");
  if (options.onConflict !== undefined) assertConflictPolicy(options.onConflict);
  if (options.keep !== undefined && !(Number.isInteger(options.keep) && options.keep >= 0))
    throw new UsageError(`--keep must be a whole number >= 0, not ${options.keep}`);
  const keepForMs = options.keepFor === undefined ? undefined : parseDuration(options.keepFor, "--keep-for");
  const deletedKeys = options.deletedKeysFile ? await readDeletedKeys(options.deletedKeysFile) : [];
  await ensureRefreshSchema(pool);
  return withRefreshLock(pool, dataset.name, async () => {
    const live = dataset.schema;
    const next = nextSchemaName(live);
    const { rows: liveRows } = await pool.query(
      "select version from pgshift.refresh_versions where dataset = $1 and status = 'live'",
      [dataset.name],
    );
    const liveVersion: number | null = liveRows[0]?.version ?? null;
    const liveExists = await schemaExists(pool, live);
    if (liveVersion !== null && !liveExists)
      throw new UsageError(
        `dataset "${dataset.name}" records version ${liveVersion} as live but schema "${live}" does not exist`,
      );
    if (options.delta && !liveExists)
      throw new UsageError(`--delta needs a live version in schema "${live}"`);
    const previousVersion = liveExists ? (liveVersion ?? 0) : null;
    const previousSchema = previousVersion === null ? null : previousSchemaName(live, previousVersion);
    if (previousSchema && (await schemaExists(pool, previousSchema)))
      throw new UsageError(`schema "${previousSchema}" exists already; prune or drop it first`);
    // We hold the dataset's lock: a version still "building" belongs to a run that died (killed, lost).
    await pool.query(
      `update pgshift.refresh_versions set status = 'failed', error = '{"step": "build", "message": "abandoned: the run ended before it finished"}'
        where dataset = $1 and status = 'building'`,
      [dataset.name],
    );
    const { rows: versionRows } = await pool.query(
      `insert into pgshift.refresh_versions (dataset, version, schema_name, status, mode)
       select $1, coalesce(max(version), 0) + 1, $2, 'building', $3 from pgshift.refresh_versions where dataset = $1
       returning version`,
      [dataset.name, next, mode],
    );
    const version: number = versionRows[0].version;
    const probe = options.probe
      ? await startProbe(
          pool,
          options.probe,
          liveExists ? dataset.tables.map((t) => ({ schema: live, table: t.table })) : [],
        )
      : undefined;
    let step: RefreshStep = "build";
    const stepMs: Partial<Record<RefreshStep, number>> = {};
    let stepStarted = performance.now();
    const enter = (next: RefreshStep) => {
      stepMs[step] = performance.now() - stepStarted;
      step = next;
      stepStarted = performance.now();
    };
    let recycling: string | null = null;
    const fail = async (error: unknown): Promise<never> => {
      let leftBehind: string | null = null;
      try {
        await dropSchema(pool, next);
      } catch {
        leftBehind = `schema "${next}"`;
      }
      // the spare is no version: what the build did not move of it goes
      if (recycling) await dropSchema(pool, recycling).catch(() => undefined);
      await pool
        .query("delete from pgshift.refresh_row_hashes where dataset = $1 and version = $2", [
          dataset.name,
          version,
        ])
        .catch(() => undefined);
      const message = error instanceof Error ? error.message : String(error);
      await pool
        .query(
          "update pgshift.refresh_versions set status = 'failed', error = $3 where dataset = $1 and version = $2",
          [dataset.name, version, JSON.stringify({ step, message })],
        )
        .catch(() => undefined);
      const failure = new RefreshFailedError(step, version, leftBehind, error);
      if (options.report)
        await writeRefreshReport(pool, options.report, {
          dataset: dataset.name,
          schema: live,
          version,
          status: "failed",
          mode,
          error: failure.toJSON(),
          stepMs,
          durationMs: performance.now() - started,
        }).catch(() => undefined);
      throw failure;
    };
    // the report is written last: it holds the whole result
    const finish = async (result: RefreshResult): Promise<RefreshResult> => {
      if (!options.report) return result;
      // the switch (or the refusal) stands whatever happens to the report: say why it is missing
      try {
        return { ...result, report: await writeRefreshReport(pool, options.report, { ...result }) };
      } catch (error) {
        return { ...result, reportError: (error as Error).message };
      }
    };
    let probeReport: ProbeReport | undefined;
    const stopProbe = async () => {
      if (probe && !probeReport) probeReport = await probe.stop();
      return probeReport ? { probe: probeReport } : {};
    };
    let hashesRecorded: Promise<unknown> = Promise.resolve();
    try {
      // A leftover next schema is an abandoned build (we hold the dataset's lock): start clean.
      await dropSchema(pool, next);
      await pool.query(`create schema ${quoteIdent(next)}`);
      if (options.delta && (await schemaExists(pool, spareSchemaName(live))))
        recycling = spareSchemaName(live);
      await options.onStep?.(
        "build",
        `${mode} build of ${dataset.tables.length} table(s) into ${next}${recycling ? ` (bringing ${recycling} in line with live)` : ""}`,
      );
      const builds: TableBuild[] = [];
      const liveCounts = new Map<string, number>();
      for (const table of dataset.tables) {
        if (options.delta) {
          const { rows } = await pool.query(
            `select count(*)::bigint as n from ${quoteQualified(live, table.table)}`,
          );
          liveCounts.set(table.table, Number(rows[0].n));
          const keyColumn = await primaryKeyColumn(pool, live, table.table);
          if (!keyColumn) throw new UsageError(`--delta needs a primary key on ${live}.${table.table}`);
          // both read live only: side by side
          const [changed, build] = await Promise.all([
            liveVersion === null
              ? { recorded: false, keys: [] }
              : localChanges(pool, {
                  dataset: dataset.name,
                  liveVersion,
                  live,
                  table: table.table,
                  keyColumn,
                }),
            buildDelta(pool, live, next, table, deletedKeys, options.signal, recycling ?? undefined),
          ]);
          build.conflicts = await resolveConflicts(pool, {
            live,
            next,
            table: table.table,
            keyColumn,
            changedLocally: changed.keys,
            policy: options.onConflict ?? "fail",
            recorded: changed.recorded,
          });
          builds.push(build);
        } else builds.push(await buildFull(pool, next, table, options.signal));
      }
      if (recycling) await dropSchema(pool, recycling);
      // Recorded while verification reads next (both only read it): the next delta's local-change baseline.
      hashesRecorded = Promise.all(
        dataset.tables.map(async (table) => {
          const keyColumn = await primaryKeyColumn(pool, next, table.table);
          if (keyColumn)
            await recordRowHashes(pool, {
              dataset: dataset.name,
              version,
              schema: next,
              table: table.table,
              keyColumn,
            });
        }),
      );
      hashesRecorded.catch(() => undefined);
      const { rows: clock } = await pool.query("select now() as at");
      const loadCommittedAt: Date = clock[0].at;

      enter("verify");
      await options.onStep?.("verify", `counts and checksums of ${next} against the sources`);
      const tableChecks: TableCheck[] = [];
      for (const [i, table] of dataset.tables.entries()) {
        const build = builds[i]!;
        const expectedRows = options.delta
          ? liveCounts.get(table.table)! + build.inserted - build.deleted
          : undefined;
        const keyColumn = build.staging ? await primaryKeyColumn(pool, next, table.table) : null;
        tableChecks.push(
          build.staging && keyColumn && expectedRows !== undefined
            ? await verifyDeltaTable(pool, {
                live,
                next,
                table,
                staging: build.staging,
                keyColumn,
                runId: build.runId,
                expectedRows,
                deletedKeys,
                keptLocal: build.conflicts?.policy === "keep-local" ? build.conflicts.conflicts : 0,
              })
            : await verifyTable(pool, next, table, {
                delta: Boolean(options.delta),
                runId: build.runId,
                ...(build.conflicts?.policy === "keep-local" ? { keptLocal: build.conflicts.conflicts } : {}),
                ...(expectedRows !== undefined ? { expectedRows } : {}),
              }),
        );
      }
      // the staged deltas served their purpose; next must hold the dataset's tables only when it goes live
      for (const build of builds)
        if (build.staging) await pool.query(`drop table ${quoteQualified(next, build.staging)}`);
      const [foreignKeys, checks] = await Promise.all([
        checkForeignKeys(pool, next, dataset.foreignKeys ?? []),
        runUserChecks(pool, next, dataset.checks),
      ]);
      await hashesRecorded;
      const counts = Object.fromEntries(tableChecks.map((c) => [c.table, c.rows]));
      const verification = verificationSummary(tableChecks, checks, foreignKeys);
      const tables = builds.map((b, i) => ({ ...b, check: tableChecks[i] ?? null }));
      const delta = options.delta
        ? Object.fromEntries(
            builds.map((b) => [
              b.table,
              {
                inserted: b.inserted,
                updated: b.updated,
                unchanged: b.unchanged,
                deleted: b.deleted,
                ...(b.conflicts ? { conflicts: b.conflicts } : {}),
              },
            ]),
          )
        : null;
      await pool.query(
        `update pgshift.refresh_versions set sources = $3, counts = $4, verification = $5, delta = $6, built_at = now()
          where dataset = $1 and version = $2`,
        [
          dataset.name,
          version,
          JSON.stringify(tableChecks.map((c) => ({ table: c.table, source: c.source }))),
          JSON.stringify(counts),
          JSON.stringify(verification),
          delta === null ? null : JSON.stringify(delta),
        ],
      );
      const by = options.by ?? userInfo().username;
      const base = {
        by,
        reason: options.reason ?? null,
        dataset: dataset.name,
        schema: live,
        version,
        previousVersion,
        previousSchema,
        mode,
        tables,
        checks,
        foreignKeys,
        ...(recycling ? { recycled: { schema: recycling } } : {}),
      } as const;
      if (!verification.identical || !verification.checksPassed || !verification.foreignKeysHold) {
        let leftBehind: string | null = null;
        await dropSchema(pool, next).catch(() => {
          leftBehind = next;
        });
        await pool.query(
          "update pgshift.refresh_versions set status = 'failed', error = $3 where dataset = $1 and version = $2",
          [
            dataset.name,
            version,
            JSON.stringify({ step: "verify", message: "verification failed", leftBehind }),
          ],
        );
        await pool.query("delete from pgshift.refresh_row_hashes where dataset = $1 and version = $2", [
          dataset.name,
          version,
        ]);
        return finish({
          ...base,
          status: "verification_failed",
          snapshotWaitMs: 0,
          swap: null,
          ...(await stopProbe()),
          stepMs: { ...stepMs, verify: performance.now() - stepStarted },
          durationMs: performance.now() - started,
        });
      }

      enter("snapshot-guard");
      await options.onStep?.("snapshot-guard", "waiting for sessions with snapshots older than the load");
      const guard = await withClient(pool, (client) =>
        waitForFreshSnapshots(client, {
          loadCommittedAt,
          ...(options.snapshotWaitMs !== undefined ? { waitMs: options.snapshotWaitMs } : {}),
        }),
      );

      enter("swap");
      await options.onStep?.(
        "swap",
        `${next} -> ${live}${previousSchema ? `, ${live} -> ${previousSchema}` : ""}`,
      );
      const swap = await swapSchemas(pool, {
        renames: [...(previousSchema ? [{ from: live, to: previousSchema }] : []), { from: next, to: live }],
        ...(options.lockTimeoutMs !== undefined ? { lockTimeoutMs: options.lockTimeoutMs } : {}),
        record: async (client) => {
          if (previousSchema) {
            if (liveVersion === null)
              await client.query(
                `insert into pgshift.refresh_versions (dataset, version, schema_name, status, reason, retired_at)
                 values ($1, 0, $2, 'previous', 'the schema that existed before the first refresh', now())
                 on conflict (dataset, version) do update set status = 'previous', schema_name = excluded.schema_name, retired_at = now()`,
                [dataset.name, previousSchema],
              );
            else
              await client.query(
                "update pgshift.refresh_versions set status = 'previous', schema_name = $3, retired_at = now() where dataset = $1 and version = $2",
                [dataset.name, liveVersion, previousSchema],
              );
          }
          await client.query(
            `update pgshift.refresh_versions set status = 'live', schema_name = $3, switched_at = now(), switched_by = $4, reason = $5
              where dataset = $1 and version = $2`,
            [dataset.name, version, live, by, options.reason ?? null],
          );
        },
      });
      let prune: RefreshResult["prune"];
      if (options.keep !== undefined || keepForMs !== undefined)
        // a delta run keeps the newest pruned version as the next delta's spare; a full run drops the spare
        prune = await pruneVersions(pool, dataset.name, options.keep, keepForMs, {
          schema: live,
          keep: Boolean(options.delta),
        }).catch((error: Error) => ({
          error: error.message,
        }));
      return finish({
        ...base,
        ...(prune ? { prune } : {}),
        status: "switched",
        snapshotWaitMs: guard.waitedMs,
        swap,
        ...(await stopProbe()),
        stepMs: { ...stepMs, swap: performance.now() - stepStarted },
        durationMs: performance.now() - started,
      });
    } catch (error) {
      await stopProbe().catch(() => undefined);
      await hashesRecorded.catch(() => undefined);
      return fail(error);
    }
  });
}

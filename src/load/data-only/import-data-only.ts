import { existsSync } from "node:fs";
import { resolve as resolvePath } from "node:path";
import { performance } from "node:perf_hooks";
import type pg from "pg";
import { assertImportSchema } from "../../config/reserved-schema.ts";
import { ExitCode, PgshiftError } from "../../errors.ts";
import { LockKey, withAdvisoryLock } from "../../pg/advisory-lock.ts";
import { openCopy } from "../../pg/copy-writer.ts";
import { ensureInternalSchema } from "../../pg/internal-schema.ts";
import { type TargetIdentity, targetOf, withClient } from "../../pg/pool.ts";
import { quoteIdent, quoteQualified } from "../../pg/quote.ts";
import { loadSqlParser } from "../../schema/expression.ts";
import { buildImportPlan, type ImportPlan, type TablePlan } from "../../schema/plan.ts";
import { readSqliteCatalog } from "../../sources/sqlite/sqlite-catalog.ts";
import { openSqlite } from "../../sources/sqlite/sqlite-rows.ts";
import { scanTable, type TableStats } from "../../sources/sqlite/sqlite-scan.ts";
import { encodeChunk } from "../chunk-encoder.ts";
import { importPart, setRunPhase } from "../import-state.ts";
import { createRun } from "../import-run.ts";
import { quarantinePart } from "../quarantine.ts";
import type { ImportSqliteOptions, VerificationOutcome } from "../import-sqlite.ts";
import { verificationConnectionError } from "../verification-outcome.ts";
import { type CompatibilityProblem, checkCompatibility, checkExistingKeys } from "./compatibility.ts";
import { dataOnlyTablePlan } from "./data-only-plan.ts";
import { readTargetCatalog, type TargetCatalog } from "./target-catalog.ts";
import { foreignKeyOrder, type Mapping, mapTables, type NameMap, ORM_BOOKKEEPING } from "./table-mapping.ts";

/** The SQLite import's options that mean the same here; `schema` is the one holding the ORM's tables. */
export interface ImportDataOnlyOptions extends Pick<
  ImportSqliteOptions,
  "path" | "spec" | "pool" | "schema" | "tables" | "exclude" | "dryRun" | "chunkRows" | "logger" | "hintTo"
> {
  /** Source names -> target names: {"table": "target", "table.column": "target_column"}. */
  map?: NameMap;
  /** false: skip verification. */
  verify?: boolean;
}

export interface SequenceState {
  sequence: string;
  table: string;
  column: string;
  /** Before the run (restored by undo). */
  lastValue: string;
  isCalled: boolean;
  /** After the run: past the largest loaded value. */
  setTo?: string;
}

export interface DataOnlyTableResult {
  source: string;
  target: string;
  rowsLoaded: number;
  /** Rows the table held before the run. */
  rowsBefore: number;
  conversions: Record<string, number>;
}

export interface DataOnlyResult {
  ok: boolean;
  dryRun: boolean;
  runId?: string;
  source: { path: string; spec: string };
  target: TargetIdentity;
  schema: string;
  mapping: Mapping;
  /** Load order (referenced tables first) and the groups loaded in one transaction with constraints deferred. */
  order: string[];
  cycles: string[][];
  problems: CompatibilityProblem[];
  plan: ImportPlan;
  tables: DataOnlyTableResult[];
  sequences: SequenceState[];
  verification?: VerificationOutcome;
  phases: Record<string, number>;
  nextSteps: string[];
  error?: { code: string; message: string };
  seconds: number;
}

/** The compatibility check found errors: nothing was written. Exit code 2. */
export class DataOnlyIncompatibleError extends PgshiftError {
  readonly problems: CompatibilityProblem[];
  constructor(problems: CompatibilityProblem[]) {
    const errors = problems.filter((p) => p.severity === "error");
    super(
      "data_only_incompatible",
      `the target schema cannot take the source's data as it is (nothing was written): ${errors
        .slice(0, 10)
        .map(
          (p) => p.message + (p.examples?.length ? ` [${p.rows} rows, e.g. ${p.examples.join(", ")}]` : ""),
        )
        .join(
          "; ",
        )}${errors.length > 10 ? `; and ${errors.length - 10} more (--dry-run lists them all)` : ""}`,
      { exitCode: ExitCode.usage, details: { problems } },
    );
    this.problems = problems;
  }
}

/**
 * Loads a SQLite database into tables the application's ORM already created (Prisma, Django,
 * Alembic...): maps tables and columns by name, checks every value against the target's actual
 * types before anything is written, loads in foreign-key order converting to those types, sets
 * serial/identity sequences past the maximum, verifies in the target's canonical forms. The run is
 * recorded, so `undoImport({ runId })` removes exactly what it wrote.
 *
 *   const result = await importSqliteDataOnly({ path: "dev.db", pool });
 *   if (!result.ok) console.error(result.nextSteps.join("\n"));
 */
export async function importSqliteDataOnly(options: ImportDataOnlyOptions): Promise<DataOnlyResult> {
  const started = performance.now();
  const path = resolvePath(options.path);
  const spec = options.spec ?? `sqlite:${options.path}`;
  const schema = options.schema ?? "public";
  assertImportSchema(schema);
  const phases: Record<string, number> = {};
  const timed = async <T>(phase: string, fn: () => Promise<T> | T): Promise<T> => {
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      phases[phase] = Math.round(performance.now() - t0) / 1000 + (phases[phase] ?? 0);
    }
  };
  await loadSqlParser();
  if (!existsSync(path))
    throw new PgshiftError("source_not_found", `SQLite file ${options.path} does not exist`, {
      details: { path },
    });
  const db = openSqlite(path);
  try {
    const { sourcePlan, target } = await timed("plan", async () => {
      const catalog = readSqliteCatalog(db);
      const lower = (names: readonly string[] | undefined) => names?.map((n) => n.toLowerCase()) ?? [];
      const wanted = catalog.tables.filter(
        (t) =>
          !ORM_BOOKKEEPING.has(t.name) &&
          (!options.tables?.length || lower(options.tables).includes(t.name.toLowerCase())) &&
          !lower(options.exclude).includes(t.name.toLowerCase()),
      );
      const stats = new Map<string, TableStats>();
      for (const table of wanted) stats.set(table.name, scanTable(db, table));
      const sourcePlan = buildImportPlan(
        { ...catalog, tables: wanted, views: [], triggers: [] } as typeof catalog,
        stats,
        {
          sourcePath: path,
          sourceSpec: spec,
          targetSchema: schema,
          naming: "keep",
          chunkRows: options.chunkRows ?? 100_000,
          nocase: "none",
        },
      );
      const target = await withClient(options.pool, (c) => readTargetCatalog(c, schema));
      return { sourcePlan, target };
    });
    const mapping = mapTables(
      sourcePlan.tables.map((t) => ({ name: t.sourceName, columns: t.columns.map((c) => c.sourceName) })),
      target.tables,
      options.map,
    );
    const tables: TablePlan[] = mapping.tables.map((m) =>
      dataOnlyTablePlan(
        sourcePlan.tables.find((t) => t.sourceName === m.source)!,
        m,
        target.tables.find((t) => t.name === m.target)!,
      ),
    );
    const { order, cycles } = foreignKeyOrder(
      tables.map((t) => t.targetName),
      target.foreignKeys,
    );
    tables.sort((a, b) => order.indexOf(a.targetName) - order.indexOf(b.targetName));
    const plan: ImportPlan = {
      ...sourcePlan,
      setupSql: [],
      tables,
      views: [],
      triggers: [],
      names: mapping.tables.flatMap((t) => [
        { kind: "table" as const, source: t.source, target: t.target },
        ...t.columns.map((c) => ({
          kind: "column" as const,
          table: t.source,
          source: c.source,
          target: c.target,
        })),
      ]),
      notes: [],
    };
    const problems = await timed("check", async () => [
      ...checkCompatibility(db, mapping, tables, target.tables),
      ...cycleProblems(cycles, target),
      ...(await withClient(options.pool, (c) => checkExistingKeys(c, db, tables, target.tables))),
    ]);
    const result: DataOnlyResult = {
      ok: false,
      dryRun: Boolean(options.dryRun),
      source: { path, spec },
      target: targetOf(options.pool),
      schema,
      mapping,
      order,
      cycles,
      problems,
      plan,
      tables: [],
      sequences: [],
      phases,
      nextSteps: [],
      seconds: 0,
    };
    const finish = () => {
      result.seconds = Math.round(performance.now() - started) / 1000;
      return result;
    };
    if (options.dryRun) {
      result.ok = !problems.some((p) => p.severity === "error");
      return finish();
    }
    if (problems.some((p) => p.severity === "error")) throw new DataOnlyIncompatibleError(problems);
    await ensureInternalSchema(options.pool, [quarantinePart, importPart]);
    return await withAdvisoryLock(
      options.pool,
      LockKey.import,
      async () => {
        const runId = await createRun(options.pool, plan, path, spec, "append", "fail");
        result.runId = runId;
        try {
          result.sequences = await readSequences(options.pool, plan, target);
          const { rows } = await options.pool.query(
            "select options from pgshift.import_runs where run_id = $1",
            [runId],
          );
          const baselines: Record<string, number> = rows[0].options.baselines ?? {};
          await options.pool.query(
            `update pgshift.import_runs set options = options || $2::jsonb where run_id = $1`,
            [runId, JSON.stringify({ dataOnly: true, sequences: result.sequences, cycles })],
          );
          const conversions = await timed("data", () =>
            loadTables(options.pool, db, runId, plan, cycles, target.foreignKeys),
          );
          await timed("sequences", () => advanceSequences(options.pool, schema, result.sequences));
          result.tables = await timed("count", () =>
            countTables(options.pool, runId, plan, baselines, conversions),
          );
          await withClient(options.pool, (c) => setRunPhase(c, runId, "done", "completed"));
          if (options.verify !== false) {
            const { verifyImport } = await import("../../verify/verify-import.ts");
            result.verification = (await timed("verify", () =>
              verifyImport({ plan, sourcePath: path, pool: options.pool, runId }),
            )) as unknown as VerificationOutcome;
          }
          result.ok = result.verification ? result.verification.identical : true;
          const cut = result.verification && verificationConnectionError(result.verification);
          if (cut) result.error = { code: cut.code, message: cut.message };
          if (!result.ok) result.nextSteps = undoHints(runId, options.hintTo);
        } catch (error) {
          const message = error instanceof Error ? error.message : String(error);
          await withClient(options.pool, (c) => setRunPhase(c, runId, "data", "failed", message)).catch(
            () => undefined,
          );
          result.error = { code: error instanceof PgshiftError ? error.code : "import_failed", message };
          result.nextSteps = undoHints(runId, options.hintTo);
        }
        return finish();
      },
      { waitMs: 0, what: "another pgshift import into this database" },
    );
  } finally {
    db.close();
  }
}

function undoHints(runId: string, to: string | undefined): string[] {
  return [
    `remove exactly what run ${runId} wrote (the ORM's tables stay): pgshift import --undo ${runId}${to ? ` --to ${to}` : ""}`,
  ];
}

function cycleProblems(cycles: string[][], target: TargetCatalog): CompatibilityProblem[] {
  const problems: CompatibilityProblem[] = [];
  // A table referencing only itself loads in one statement (see loadTables): no deferral needed.
  for (const cycle of cycles.filter((c) => c.length > 1)) {
    const blocking = target.foreignKeys.filter(
      (fk) => cycle.includes(fk.table) && cycle.includes(fk.references) && !fk.deferrable,
    );
    if (blocking.length === 0) continue;
    problems.push({
      severity: "error",
      kind: "fk-cycle",
      table: cycle.join(", "),
      message: `tables ${cycle.join(", ")} reference each other through foreign keys that are not deferrable (${blocking
        .map((fk) => `${fk.table}.${fk.name}`)
        .join(
          ", ",
        )}); make them DEFERRABLE (ALTER TABLE ... ALTER CONSTRAINT ... DEFERRABLE) for the load, or load these tables separately with --tables`,
    });
  }
  return problems;
}

/**
 * Loads every chunk in foreign-key order, each in its own transaction with its checkpoint (and xid,
 * for undo and verification); the tables of a cycle load in one transaction with constraints deferred.
 */
async function loadTables(
  pool: pg.Pool,
  db: ReturnType<typeof openSqlite>,
  runId: string,
  plan: ImportPlan,
  cycles: string[][],
  foreignKeys: TargetCatalog["foreignKeys"],
): Promise<Map<string, Record<string, number>>> {
  const conversions = new Map<string, Record<string, number>>();
  const groups: TablePlan[][] = [];
  for (const table of plan.tables) {
    const cycle = cycles.find((c) => c.includes(table.targetName));
    const group = cycle ? groups.find((g) => cycle.includes(g[0]!.targetName)) : undefined;
    if (group) group.push(table);
    else groups.push([table]);
  }
  // A table referencing itself through a foreign key that is not deferrable loads in one COPY: an
  // immediate constraint is checked at the end of the statement, so a child may come before its parent.
  const oneStatement = new Set(
    cycles
      .filter((c) => c.length === 1)
      .flat()
      .filter((t) => foreignKeys.some((fk) => fk.table === t && fk.references === t && !fk.deferrable)),
  );
  await withClient(pool, async (client) => {
    for (const group of groups) {
      const together = group.length > 1 || cycles.some((c) => c.includes(group[0]!.targetName));
      const units = group.flatMap((table) =>
        oneStatement.has(table.targetName)
          ? [{ table, chunks: table.chunks }]
          : table.chunks.map((chunk) => ({ table, chunks: [chunk] })),
      );
      if (together) await client.query("begin");
      try {
        for (const { table, chunks } of units) {
          if (!together) await client.query("begin");
          try {
            await client.query("set constraints all deferred");
            const copy = openCopy(client, {
              schema: plan.targetSchema,
              table: table.targetName,
              columns: table.columns.map((c) => c.targetName),
            });
            const outputs = [];
            try {
              for (const chunk of chunks)
                outputs.push(
                  await encodeChunk(db, { table, chunk, policy: "fail", wholeRows: false }, (data) =>
                    copy.write(data),
                  ),
                );
            } catch (error) {
              await copy.abort(error as Error);
              throw error;
            }
            const loaded = await copy.end();
            const read = outputs.reduce((n, o) => n + o.rowsRead, 0);
            if (loaded !== read)
              throw new PgshiftError(
                "count_mismatch",
                `${table.sourceName}: read ${read} rows but the server loaded ${loaded}`,
              );
            const counted = conversions.get(table.sourceName) ?? {};
            for (const output of outputs)
              table.columns.forEach((c, i) => {
                if (output.conversions[i])
                  counted[c.targetName] = (counted[c.targetName] ?? 0) + output.conversions[i]!;
              });
            conversions.set(table.sourceName, counted);
            for (const [i, chunk] of chunks.entries())
              await client.query(
                `update pgshift.import_chunks set status = 'done', rows_read = $4, rows_loaded = $4, rows_quarantined = 0,
                   committed_at = now(), xid = txid_current() % 4294967296
                 where run_id = $1 and source_table = $2 and chunk = $3`,
                [runId, table.sourceName, chunk.chunk, outputs[i]!.rowsRead],
              );
            if (!together) await client.query("commit");
          } catch (error) {
            if (!together) await client.query("rollback").catch(() => undefined);
            throw error;
          }
        }
        if (together) await client.query("commit");
      } catch (error) {
        if (together) await client.query("rollback").catch(() => undefined);
        throw error;
      }
    }
  });
  return conversions;
}

async function readSequences(
  pool: pg.Pool,
  plan: ImportPlan,
  target: TargetCatalog,
): Promise<SequenceState[]> {
  const found: SequenceState[] = [];
  for (const table of plan.tables) {
    const described = target.tables.find((t) => t.name === table.targetName)!;
    for (const column of described.columns) {
      if (!column.sequence || !table.columns.some((c) => c.targetName === column.name)) continue;
      const { rows } = await pool.query(
        `select last_value::text as last_value, is_called from ${column.sequence}`,
      );
      found.push({
        sequence: column.sequence,
        table: table.targetName,
        column: column.name,
        lastValue: rows[0].last_value,
        isCalled: rows[0].is_called,
      });
    }
  }
  return found;
}

/** Moves each serial/identity sequence past the largest value now in its column (never backwards). */
async function advanceSequences(pool: pg.Pool, schema: string, sequences: SequenceState[]): Promise<void> {
  for (const s of sequences) {
    const { rows } = await pool.query(
      `select setval($1::regclass, greatest(m.top, case when $3 then $2::bigint else $2::bigint - 1 end), true)::text as v
         from (select max(${quoteIdent(s.column)})::bigint as top from ${quoteQualified(schema, s.table)}) m
        where m.top is not null`,
      [s.sequence, s.lastValue, s.isCalled],
    );
    if (rows[0]) s.setTo = rows[0].v;
  }
}

async function countTables(
  pool: pg.Pool,
  runId: string,
  plan: ImportPlan,
  baselines: Record<string, number>,
  conversions: Map<string, Record<string, number>>,
): Promise<DataOnlyTableResult[]> {
  const results: DataOnlyTableResult[] = [];
  const problems: string[] = [];
  for (const table of plan.tables) {
    const { rows } = await pool.query(
      `select coalesce(sum(rows_loaded), 0)::bigint as loaded from pgshift.import_chunks where run_id = $1 and source_table = $2`,
      [runId, table.sourceName],
    );
    const { rows: counted } = await pool.query(
      `select count(*)::bigint as n from ${quoteQualified(plan.targetSchema, table.targetName)}`,
    );
    const before = baselines[table.sourceName] ?? 0;
    const loaded = Number(rows[0].loaded);
    if (Number(counted[0].n) - before !== loaded)
      problems.push(
        `${table.targetName}: ${loaded} rows loaded but ${Number(counted[0].n) - before} more in PostgreSQL`,
      );
    results.push({
      source: table.sourceName,
      target: table.targetName,
      rowsLoaded: loaded,
      rowsBefore: before,
      conversions: conversions.get(table.sourceName) ?? {},
    });
  }
  if (problems.length)
    throw new PgshiftError("count_mismatch", `row counts differ after loading: ${problems.join("; ")}`);
  return results;
}

import { performance } from "node:perf_hooks";
import type pg from "pg";
import { isLockNotAvailable, type PgErrorFields, toPgError } from "../pg/errors.ts";
import { INTERNAL_SCHEMA } from "../pg/internal-schema.ts";
import { inTransaction } from "../pg/pool.ts";
import { quoteQualified } from "../pg/quote.ts";
import { withRetry } from "../pg/retry.ts";
import { MigrationStatementError } from "./errors.ts";
import { appendLog, recordApplied, recordReverted } from "./history.ts";
import type { MigrationFile, MigrationSection } from "./migration-file.ts";
import { nodeKind, type SqlStatement } from "./sql-statements.ts";

export interface SectionRunOptions {
  lockTimeoutMs: number;
  statementTimeoutMs: number;
  /** Retries after a lock_timeout (55P03), with capped, jittered backoff. */
  retries: number;
  retryBaseDelayMs: number;
  retryMaxDelayMs: number;
  /**
   * search_path for the migration's statements, when the session's own would let unqualified names
   * land in pgshift's internal schema (a role named "pgshift" with the default "$user", public).
   */
  searchPath?: string | undefined;
  /** Recorded as applied_by / log `by`. */
  by: string;
  assertHeld: () => Promise<void>;
  onRetry?: (info: { version: string; attempt: number; delayMs: number; error: unknown }) => void;
}

export interface SectionRunResult {
  attempts: number;
  durationMs: number;
  /** Statements that completed (all of them on success). */
  statementsDone: number;
}

/** Thrown with the number of statements that had completed (only non-zero without a transaction). */
export class SectionFailure extends Error {
  constructor(
    readonly error: unknown,
    readonly attempts: number,
    readonly statementsDone: number,
    readonly durationMs: number,
  ) {
    super(error instanceof Error ? error.message : String(error));
  }
}

const retryable = (error: unknown): boolean =>
  error instanceof MigrationStatementError ? error.sqlstate === "55P03" : isLockNotAvailable(error);

/**
 * Runs one section of a migration and records it. With a transaction: every statement and the
 * history row commit together, or nothing does (a lock timeout retries the whole transaction).
 * Without (`-- migrate:no-transaction`): statements run one by one, each retried on its own; a
 * failed CREATE INDEX CONCURRENTLY has its INVALID leftover index dropped before retrying or failing.
 */
export async function runSection(
  client: pg.ClientBase,
  migration: MigrationFile,
  section: MigrationSection,
  direction: "up" | "down",
  options: SectionRunOptions,
): Promise<SectionRunResult> {
  const retry = {
    retries: options.retries,
    baseDelayMs: options.retryBaseDelayMs,
    maxDelayMs: options.retryMaxDelayMs,
    retryOn: retryable,
    onRetry: (info: { attempt: number; delayMs: number; error: unknown }) =>
      options.onRetry?.({ version: migration.version, ...info }),
  };
  const record = async (durationMs: number) => {
    if (direction === "up") await recordApplied(client, options.by, migration, durationMs, "applied");
    else await recordReverted(client, options.by, migration, durationMs);
  };
  const timeouts = [`${options.lockTimeoutMs}ms`, `${options.statementTimeoutMs}ms`];
  let attempts = 0;
  let statementsDone = 0;
  const started = performance.now();
  await options.assertHeld();
  try {
    if (section.transaction) {
      await withRetry(async () => {
        attempts++;
        const attemptStarted = performance.now();
        await inTransaction(client, async () => {
          await client.query(
            "select set_config('lock_timeout', $1, true), set_config('statement_timeout', $2, true)",
            timeouts,
          );
          if (options.searchPath !== undefined)
            await client.query("select set_config('search_path', $1, true)", [options.searchPath]);
          for (const statement of section.statements) await runStatement(client, migration, statement);
          await record(performance.now() - attemptStarted);
        });
      }, retry);
      statementsDone = section.statements.length;
    } else {
      await client.query(
        "select set_config('lock_timeout', $1, false), set_config('statement_timeout', $2, false)",
        timeouts,
      );
      try {
        if (options.searchPath !== undefined)
          await client.query("select set_config('search_path', $1, false)", [options.searchPath]);
        // One attempt runs the section once; each retry of a statement is one more attempt (not one per
        // statement: a three-statement section that ran cleanly took one attempt).
        attempts = 1;
        for (const statement of section.statements) {
          await options.assertHeld();
          let tries = 0;
          await withRetry(async () => {
            if (tries++ > 0) attempts++;
            await runAutocommitStatement(client, migration, statement);
          }, retry);
          statementsDone++;
        }
        await inTransaction(client, () => record(performance.now() - started));
      } finally {
        await client
          .query("reset lock_timeout; reset statement_timeout; reset search_path")
          .catch(() => undefined);
      }
    }
  } catch (error) {
    throw new SectionFailure(error, Math.max(attempts, 1), statementsDone, performance.now() - started);
  }
  return { attempts, durationMs: performance.now() - started, statementsDone };
}

/** Logs a failed attempt (autocommit, after the rollback) so the audit trail shows it. */
export async function logFailure(
  client: pg.ClientBase,
  by: string,
  migration: MigrationFile,
  direction: "up" | "down",
  failure: SectionFailure,
  section: MigrationSection,
): Promise<void> {
  const message = failure.error instanceof Error ? failure.error.message : String(failure.error);
  const partial = section.transaction
    ? ""
    : ` (${direction}, no transaction: ${failure.statementsDone} of ${section.statements.length} statements had completed)`;
  await appendLog(client, by, {
    version: migration.version,
    name: migration.name,
    action: "failed",
    sha256: migration.sha256,
    error: `${direction}: ${message}${partial}`,
  }).catch(() => undefined);
}

async function runStatement(client: pg.ClientBase, migration: MigrationFile, statement: SqlStatement) {
  try {
    await client.query(statement.text);
  } catch (error) {
    const pgError = toPgError(error);
    const fields: PgErrorFields = (pgError as { fields?: PgErrorFields }).fields ?? {};
    const position = Number(fields.position ?? 0);
    const line =
      position > 0
        ? statement.line + statement.text.slice(0, position - 1).split("\n").length - 1
        : statement.line;
    throw new MigrationStatementError(
      migration.version,
      migration.file,
      line,
      statement.text,
      fields,
      pgError instanceof Error ? pgError.message : String(pgError),
      error,
    );
  }
}

async function runAutocommitStatement(
  client: pg.ClientBase,
  migration: MigrationFile,
  statement: SqlStatement,
) {
  const [kind, body] = nodeKind(statement.node);
  const table =
    kind === "IndexStmt" && body.concurrent
      ? (body.relation as { schemaname?: string; relname?: string } | undefined)
      : undefined;
  const tableName = table?.relname ? quoteQualified(table.schemaname, table.relname) : undefined;
  const before = tableName ? await invalidIndexes(client, tableName) : [];
  try {
    await runStatement(client, migration, statement);
  } catch (error) {
    if (tableName) {
      for (const index of await invalidIndexes(client, tableName)) {
        if (!before.includes(index)) await client.query(`drop index concurrently if exists ${index}`);
      }
    }
    throw error;
  }
}

/** INVALID indexes of a table (left by failed concurrent builds), as quoted qualified names. */
async function invalidIndexes(client: pg.ClientBase, table: string): Promise<string[]> {
  const { rows } = await client.query(
    `select format('%I.%I', n.nspname, c.relname) as name
       from pg_index i join pg_class c on c.oid = i.indexrelid join pg_namespace n on n.oid = c.relnamespace
      where i.indrelid = to_regclass($1) and not i.indisvalid`,
    [table],
  );
  return rows.map((r) => r.name as string);
}

/**
 * The search_path migrations must run with, or undefined to keep the session's. Only changed when
 * "$user" would resolve to pgshift's internal schema (the managed local instance's role is named
 * pgshift): unqualified tables of a migration must never land there.
 */
export async function migrationSearchPath(client: pg.ClientBase): Promise<string | undefined> {
  const { rows } = await client.query("select current_setting('search_path') as path, current_user as role");
  const { path, role } = rows[0] as { path: string; role: string };
  if (role !== INTERNAL_SCHEMA) return undefined;
  const entries = path.split(",").map((entry) => entry.trim());
  if (!entries.includes('"$user"') && !entries.includes("$user")) return undefined;
  const kept = entries.filter((entry) => entry !== '"$user"' && entry !== "$user");
  return kept.length ? kept.join(", ") : "public";
}

import type pg from "pg";
import { acquireAdvisoryLock, LockKey } from "./advisory-lock.ts";
import { withTransaction } from "./pool.ts";
import { withRetry } from "./retry.ts";

/** The schema where pgshift keeps its own state in a target database. */
export const INTERNAL_SCHEMA = "pgshift";

/** How long setup waits for another session's setup when the pool sets no lock_timeout. */
const DEFAULT_LOCK_WAIT_MS = 30_000;

/**
 * One area's tables in the `pgshift` schema, versioned on its own: `steps[i]` takes the part from
 * version i to i+1. Steps are append-only; never edit a released step, add a new one.
 */
export interface InternalSchemaPart {
  /** Stable name, e.g. "import", "migrate", "cutover". */
  name: string;
  /** SQL statements; unqualified names are not allowed, always write `pgshift.<table>`. */
  steps: readonly string[];
}

const bootstrap = `
  create schema if not exists pgshift;
  create table if not exists pgshift.schema_parts (
    part text primary key,
    version integer not null,
    updated_at timestamptz not null default now()
  )`;

/**
 * Creates the `pgshift` schema and brings the given parts up to date, once per database. The whole setup
 * is one transaction holding a transaction-scoped advisory lock, so concurrent pgshift processes queue
 * instead of racing, and the lock can never outlive the transaction, even behind a transaction-mode
 * pooler such as PgBouncer. Cheap when already current.
 */
export async function ensureInternalSchema(
  pool: pg.Pool,
  parts: readonly InternalSchemaPart[],
  options: { waitMs?: number } = {},
): Promise<void> {
  if (parts.length > 0 && (await isCurrent(pool, parts))) return;
  // Bounded: another session holding the setup lock (a stuck pgshift, an open psql transaction) is
  // named after this wait instead of being waited for forever. Default: the pool's lock_timeout.
  const sessionLockTimeout = Number((pool.options as { lock_timeout?: number }).lock_timeout ?? 0);
  const waitMs = options.waitMs ?? (sessionLockTimeout > 0 ? sessionLockTimeout : DEFAULT_LOCK_WAIT_MS);
  await withRetry(() =>
    withTransaction(pool, async (client) => {
      await acquireAdvisoryLock(client, LockKey.internalSchema, {
        transaction: true,
        waitMs,
        what: `pgshift's internal schema setup (schema ${INTERNAL_SCHEMA})`,
        next: "wait for that session to finish (or end it: select pg_terminate_backend(pid)), then run again; PGSHIFT_LOCK_TIMEOUT_MS sets how long pgshift waits",
      });
      await client.query(bootstrap);
      for (const part of parts) {
        const { rows } = await client.query("select version from pgshift.schema_parts where part = $1", [
          part.name,
        ]);
        const current: number = rows[0]?.version ?? 0;
        for (let version = current; version < part.steps.length; version++) {
          await client.query(part.steps[version]!);
        }
        if (current < part.steps.length) {
          await client.query(
            `insert into pgshift.schema_parts (part, version) values ($1, $2)
             on conflict (part) do update set version = excluded.version, updated_at = now()`,
            [part.name, part.steps.length],
          );
        }
      }
    }),
  );
}

async function isCurrent(pool: pg.Pool, parts: readonly InternalSchemaPart[]): Promise<boolean> {
  try {
    const { rows } = await pool.query("select part, version from pgshift.schema_parts where part = any($1)", [
      parts.map((p) => p.name),
    ]);
    const versions = new Map<string, number>(rows.map((r) => [r.part, r.version]));
    return parts.every((p) => versions.get(p.name) === p.steps.length);
  } catch {
    return false;
  }
}

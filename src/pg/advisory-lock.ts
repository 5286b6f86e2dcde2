import { setTimeout as sleep } from "node:timers/promises";
import type pg from "pg";
import { PgshiftError } from "../errors.ts";
import { withClient } from "./pool.ts";

/**
 * Advisory lock keys are named constants, one per kind of exclusive work, so that two pgshift
 * processes (or an application and pgshift) never take the same number for different reasons.
 * Values are fixed: changing one would let an old and a new pgshift run side by side.
 */
export const LockKey = {
  /** Schema migrations of one database (`pgshift migrate`). */
  migrate: 0x7067_7368_0001n,
  /** pgshift's own internal schema setup. */
  internalSchema: 0x7067_7368_0002n,
  /** An import into one target (second key part: hash of the source). */
  import: 0x7067_7368_0003n,
  /** A cutover's phase changes. */
  cutover: 0x7067_7368_0004n,
  /** The repairer of cutovers' repair ledgers (one repair run at a time per database). */
  cutoverRepair: 0x7067_7368_0005n,
} as const;

/**
 * First half of two-part (int4, int4) advisory keys, whose second half names one object (a hash of its
 * name). PostgreSQL keeps two-part keys apart from the bigint keys above, so they can never collide.
 */
export const LockClass = {
  /** The leader of one cutover's automatic ramp (second part: hash of the cutover name). */
  cutoverRamp: 0x7067_0006,
} as const;

export interface LockHolder {
  pid: number;
  applicationName: string;
  user: string;
  clientAddr: string | null;
  since: string | null;
  state: string | null;
  query: string | null;
}

export class LockBusyError extends PgshiftError {
  readonly holders: LockHolder[];

  constructor(
    what: string,
    holders: LockHolder[],
    waitedMs: number,
    next = "wait for it to finish or pass a longer --lock-wait",
  ) {
    const who = holders.length
      ? holders
          .map(
            (h) =>
              `pid ${h.pid} (${h.applicationName || "unknown app"}, user ${h.user}, client ${h.clientAddr ?? "local socket"}, since ${h.since})`,
          )
          .join("; ")
      : "another session";
    super(
      "lock_busy",
      `${what} is locked by ${who}${waitedMs ? ` (waited ${Math.round(waitedMs / 1000)} s)` : ""}; ${next}`,
      { details: { holders, waitedMs } },
    );
    this.holders = holders;
  }
}

export interface AdvisoryLockOptions {
  /** How long to wait for the lock; 0 (default) fails at once naming the holder. */
  waitMs?: number;
  /** Human name used in the error message. */
  what?: string;
  pollMs?: number;
  /** What to do next, ending the busy message (default: wait, or pass a longer --lock-wait). */
  next?: string;
}

/** Who holds a session-level advisory lock with this bigint key. */
export async function lockHolders(client: pg.ClientBase, key: bigint): Promise<LockHolder[]> {
  const { rows } = await client.query(
    `select a.pid, coalesce(a.application_name, '') as application_name, coalesce(a.usename, '') as usename,
            a.client_addr::text as client_addr, a.backend_start::text as since, a.state, left(a.query, 200) as query
       from pg_locks l join pg_stat_activity a on a.pid = l.pid
      where l.locktype = 'advisory' and l.granted
        and l.database = (select oid from pg_database where datname = current_database())
        and l.classid = (($1::bigint >> 32) & 4294967295)::oid and l.objid = ($1::bigint & 4294967295)::oid and l.objsubid = 1`,
    [key.toString()],
  );
  return rows.map((r) => ({
    pid: r.pid,
    applicationName: r.application_name,
    user: r.usename,
    clientAddr: r.client_addr,
    since: r.since,
    state: r.state,
    query: r.query,
  }));
}

/**
 * Takes an advisory lock on `client`, polling its try-lock for at most `waitMs`; then fails with
 * LockBusyError naming the holders (pid, application, user, client address, since). `transaction`:
 * a transaction-scoped lock (pg_try_advisory_xact_lock), released by the caller's COMMIT/ROLLBACK.
 * Waiting by polling, never in a blocking lock call, so the wait is bounded whatever lock_timeout is.
 */
export async function acquireAdvisoryLock(
  client: pg.ClientBase,
  key: bigint,
  options: AdvisoryLockOptions & { transaction?: boolean } = {},
): Promise<{ waitedMs: number }> {
  const waitMs = options.waitMs ?? 0;
  const pollMs = options.pollMs ?? 200;
  const tryLock = options.transaction ? "pg_try_advisory_xact_lock" : "pg_try_advisory_lock";
  const started = Date.now();
  for (;;) {
    const { rows } = await client.query(`select ${tryLock}($1::bigint) as ok`, [key.toString()]);
    if (rows[0].ok) return { waitedMs: Date.now() - started };
    const waited = Date.now() - started;
    if (waited >= waitMs) {
      throw new LockBusyError(
        options.what ?? `advisory lock ${key}`,
        await lockHolders(client, key),
        waited,
        ...(options.next ? [options.next] : []),
      );
    }
    await sleep(Math.min(pollMs, waitMs - waited));
  }
}

/**
 * Takes a session-level advisory lock on a dedicated connection that holds no transaction open
 * (so the work may run CREATE INDEX CONCURRENTLY on its own connections), runs `fn`, and always unlocks.
 */
export async function withAdvisoryLock<T>(
  pool: pg.Pool,
  key: bigint,
  fn: (lockClient: pg.PoolClient) => Promise<T>,
  options: AdvisoryLockOptions = {},
): Promise<T> {
  return withClient(pool, async (client) => {
    await acquireAdvisoryLock(client, key, options);
    try {
      return await fn(client);
    } finally {
      await client.query("select pg_advisory_unlock($1::bigint)", [key.toString()]).catch(() => undefined);
    }
  });
}

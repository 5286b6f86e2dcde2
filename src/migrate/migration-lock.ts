import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type pg from "pg";
import { PgshiftError } from "../errors.ts";
import { LockKey, withAdvisoryLock } from "../pg/advisory-lock.ts";
import { targetOf, withClient } from "../pg/pool.ts";
import { LockLostError } from "./errors.ts";

/**
 * How runners exclude each other. `advisory` (default): a session-level advisory lock on a dedicated
 * connection. `row`: a row in `pgshift.migration_lock` with an owner, a heartbeat and an expiry, for
 * connections through a transaction-mode pooler (PgBouncer), where a session lock would be taken on
 * whichever server connection the pooler picked and then leak.
 */
export type LockMode = "advisory" | "row";

export interface MigrationLockOptions {
  mode?: LockMode;
  /** How long to wait for another runner; 0 fails at once naming the holder. */
  waitMs?: number;
  /** Row mode: how long the row stays valid without a heartbeat. */
  rowTtlMs?: number;
  /** Row mode: who we are, stored in the row. */
  owner?: string;
  pollMs?: number;
}

/** What the migration code sees of the lock: its client, and a check that the lock is still ours. */
export interface HeldLock {
  client: pg.PoolClient;
  mode: LockMode;
  /**
   * Throws LockLostError when the lock is no longer ours: the row was taken over (row mode), or the
   * server session holding the advisory lock is not the one this connection now talks to (a
   * transaction-mode pooler moved us), checked in one statement through pg_locks.
   */
  assertHeld(): Promise<void>;
  waitedMs: number;
}

export class RowLockBusyError extends PgshiftError {
  constructor(
    holder:
      | {
          owner: string;
          acquiredAt: string;
          heartbeatAt: string;
          expiresAt: string;
        }
      | undefined,
    waitedMs: number,
  ) {
    super(
      "lock_busy",
      `schema migrations are locked by ${holder ? `${holder.owner} (since ${holder.acquiredAt}, last heartbeat ${holder.heartbeatAt}, expires ${holder.expiresAt})` : "another runner"}${waitedMs ? ` (waited ${Math.round(waitedMs / 1000)} s)` : ""}; wait for it to finish or pass a longer --lock-wait (a crashed runner's row expires by itself)`,
      { details: { holder, waitedMs } },
    );
  }
}

/** Runs `fn` while holding the migration lock of the pool's database; always releases it. */
export async function withMigrationLock<T>(
  pool: pg.Pool,
  options: MigrationLockOptions,
  fn: (lock: HeldLock) => Promise<T>,
): Promise<T> {
  const mode = options.mode ?? "advisory";
  const started = Date.now();
  if (mode === "advisory") {
    const target = targetOf(pool);
    return withAdvisoryLock(
      pool,
      LockKey.migrate,
      async (client) => {
        const assertHeld = async () => {
          const { rows } = await client.query(
            `select exists (
               select 1 from pg_locks
                where locktype = 'advisory' and granted and pid = pg_backend_pid()
                  and classid = (($1::bigint >> 32) & 4294967295)::oid
                  and objid = ($1::bigint & 4294967295)::oid and objsubid = 1) as held`,
            [LockKey.migrate.toString()],
          );
          if (!rows[0].held)
            throw new LockLostError(
              "the advisory migration lock (this connection now reaches a different server session: connecting through a transaction-mode pooler? use --lock-mode row)",
            );
        };
        await assertHeld();
        return fn({ client, mode, assertHeld, waitedMs: Date.now() - started });
      },
      {
        waitMs: options.waitMs ?? 0,
        what: `database ${target.database || "(default)"} (migrations)`,
        ...(options.pollMs ? { pollMs: options.pollMs } : {}),
      },
    );
  }
  return withRowLock(pool, options, fn);
}

async function withRowLock<T>(
  pool: pg.Pool,
  options: MigrationLockOptions,
  fn: (lock: HeldLock) => Promise<T>,
): Promise<T> {
  const ttlMs = options.rowTtlMs ?? 60_000;
  const waitMs = options.waitMs ?? 0;
  const pollMs = options.pollMs ?? 500;
  const owner = `${options.owner ?? "pgshift"} ${randomUUID()}`;
  const started = Date.now();
  // Every statement below stands alone (autocommit), so it works through transaction pooling.
  for (;;) {
    const { rows } = await pool.query(
      `insert into pgshift.migration_lock as l (id, owner, acquired_at, heartbeat_at, expires_at)
       values (true, $1, now(), now(), now() + $2 * interval '1 millisecond')
       on conflict (id) do update set owner = excluded.owner, acquired_at = now(), heartbeat_at = now(),
              expires_at = excluded.expires_at
        where l.expires_at < now()
       returning owner`,
      [owner, ttlMs],
    );
    if (rows.length === 1) break;
    const waited = Date.now() - started;
    if (waited >= waitMs) {
      const holder = await pool.query(
        `select owner, acquired_at::text, heartbeat_at::text, expires_at::text from pgshift.migration_lock where id`,
      );
      const row = holder.rows[0];
      throw new RowLockBusyError(
        row
          ? {
              owner: row.owner,
              acquiredAt: row.acquired_at,
              heartbeatAt: row.heartbeat_at,
              expiresAt: row.expires_at,
            }
          : undefined,
        waited,
      );
    }
    await sleep(Math.min(pollMs, waitMs - waited));
  }
  let lost = false;
  let beating: Promise<unknown> = Promise.resolve();
  const heartbeat = setInterval(
    () => {
      beating = pool
        .query(
          `update pgshift.migration_lock set heartbeat_at = now(), expires_at = now() + $2 * interval '1 millisecond'
            where id and owner = $1`,
          [owner, ttlMs],
        )
        .then((result) => {
          if (result.rowCount === 0) lost = true;
        })
        .catch(() => undefined);
    },
    Math.max(50, Math.floor(ttlMs / 3)),
  );
  heartbeat.unref();
  try {
    return await withClient(pool, (client) =>
      fn({
        client,
        mode: "row",
        waitedMs: Date.now() - started,
        assertHeld: async () => {
          if (lost) throw new LockLostError(`the migration lock row of ${owner}`);
        },
      }),
    );
  } finally {
    clearInterval(heartbeat);
    await beating;
    await pool
      .query("delete from pgshift.migration_lock where id and owner = $1", [owner])
      .catch(() => undefined);
  }
}

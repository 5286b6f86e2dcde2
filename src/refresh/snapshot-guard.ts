import { setTimeout as sleep } from "node:timers/promises";
import type pg from "pg";
import { OldSnapshotError, type OldSnapshotSession } from "./refresh-errors.ts";

export interface SnapshotGuardOptions {
  /** When the next version's load committed (server clock). */
  loadCommittedAt: Date;
  /** How long to wait for old snapshots to go (default 30 s). */
  waitMs?: number;
  pollMs?: number;
}

/**
 * Sessions of this database holding a snapshot (backend_xmin set) in a transaction that began before
 * the load committed: a REPEATABLE READ transaction spanning the swap would resolve names in the new
 * catalog but read with its old snapshot, seeing the new tables empty. READ COMMITTED sessions between
 * statements hold no snapshot and do not count.
 */
export async function oldSnapshotSessions(
  client: pg.ClientBase,
  loadCommittedAt: Date,
): Promise<OldSnapshotSession[]> {
  const { rows } = await client.query(
    `select pid, coalesce(application_name, '') as application_name, coalesce(usename, '') as usename,
            xact_start, state, left(query, 200) as query
       from pg_stat_activity
      where datname = current_database() and pid <> pg_backend_pid() and backend_type = 'client backend'
        and backend_xmin is not null and xact_start < $1
      order by xact_start`,
    [loadCommittedAt],
  );
  return rows.map((r) => ({
    pid: r.pid,
    applicationName: r.application_name,
    user: r.usename,
    xactStart: r.xact_start instanceof Date ? r.xact_start.toISOString() : String(r.xact_start),
    state: r.state,
    query: r.query,
  }));
}

/** Waits (bounded) until no session holds a snapshot older than the load, else OldSnapshotError. */
export async function waitForFreshSnapshots(
  client: pg.ClientBase,
  options: SnapshotGuardOptions,
): Promise<{ waitedMs: number }> {
  const waitMs = options.waitMs ?? 30_000;
  const pollMs = options.pollMs ?? 100;
  const started = Date.now();
  for (;;) {
    const sessions = await oldSnapshotSessions(client, options.loadCommittedAt);
    const waited = Date.now() - started;
    if (sessions.length === 0) return { waitedMs: waited };
    if (waited >= waitMs) throw new OldSnapshotError(sessions, waited);
    await sleep(Math.min(pollMs, waitMs - waited));
  }
}

import type pg from "pg";
import { sqlstateOf } from "../pg/errors.ts";

/** What pg_stat_archiver says, and whether WAL is waiting to be archived. */
export interface ArchiverStatus {
  /** archive_mode is on or always. */
  configured: boolean;
  /** A standby: its primary's archiver is the one that matters. */
  inRecovery: boolean;
  archivedCount: number;
  failedCount: number;
  lastArchivedWal: string | null;
  lastFailedWal: string | null;
  /** True when a completed WAL segment waits for the archiver. */
  behind: boolean;
  /** How long it has waited, in seconds (see readArchiverStatus); 0 when not behind. */
  lagSeconds: number;
}

/**
 * Reads pg_stat_archiver with the segment being written. How long WAL has waited: the age of the oldest
 * `.ready` file when the role may list archive_status/ (superusers, pg_monitor); for other roles, the time
 * since the last successful archive while a completed segment is not archived yet. A new cluster writes
 * segment 1 first, so the segment before the current one is compared from segment 2 on.
 */
export async function readArchiverStatus(pool: pg.Pool | pg.ClientBase): Promise<ArchiverStatus> {
  const { rows } = await pool.query<{
    mode: string;
    recovery: boolean;
    archived: string;
    failed: string;
    last_archived_wal: string | null;
    last_failed_wal: string | null;
    previous_segment: string | null;
    since: number;
  }>(
    `select current_setting('archive_mode') as mode, pg_is_in_recovery() as recovery,
            a.archived_count::text as archived, a.failed_count::text as failed,
            a.last_archived_wal, a.last_failed_wal,
            case when not pg_is_in_recovery()
                  and pg_current_wal_lsn() - '0/0'::pg_lsn >= 2 * s.size
                 then pg_walfile_name(pg_current_wal_lsn() - s.size) end as previous_segment,
            extract(epoch from now() - coalesce(a.last_archived_time, pg_postmaster_start_time()))::float8 as since
       from pg_stat_archiver a,
            (select setting::numeric as size from pg_settings where name = 'wal_segment_size') s`,
  );
  const row = rows[0]!;
  const configured = row.mode !== "off";
  const previous = row.previous_segment;
  // nothing archived yet and nothing failed: no segment has been ready since archiving was turned on
  let behind =
    configured &&
    previous !== null &&
    (row.last_archived_wal === null
      ? Number(row.failed) > 0
      : isOlderSegment(row.last_archived_wal, previous));
  let lagSeconds = behind ? Math.max(0, row.since) : 0;
  const exact = configured && !row.recovery ? await oldestReadySegmentAge(pool) : undefined;
  if (exact !== undefined) {
    behind = exact !== null;
    lagSeconds = exact ?? 0;
  }
  return {
    configured,
    inRecovery: row.recovery,
    archivedCount: Number(row.archived),
    failedCount: Number(row.failed),
    lastArchivedWal: row.last_archived_wal,
    lastFailedWal: row.last_failed_wal,
    behind,
    lagSeconds,
  };
}

/**
 * The age of the oldest segment waiting in archive_status/ (`.ready`), null when none waits; undefined
 * when this role may not list the directory (superusers and pg_monitor may).
 */
async function oldestReadySegmentAge(pool: pg.Pool | pg.ClientBase): Promise<number | null | undefined> {
  try {
    const { rows } = await pool.query<{ age: number | null }>(
      `select extract(epoch from now() - min(modification))::float8 as age
         from pg_ls_archive_statusdir() where name like '%.ready'`,
    );
    const age = rows[0]?.age;
    return age === null || age === undefined ? null : Math.max(0, Number(age));
  } catch (error) {
    if (sqlstateOf(error) === "42501") return undefined;
    throw error;
  }
}

/**
 * Segment names (timeline, log, segment in hex) sort by position; `.partial` and `.backup` suffixes are
 * dropped. A timeline history file (`00000002.history`) says nothing about the segments: not older.
 */
function isOlderSegment(archived: string, segment: string): boolean {
  const name = archived.slice(0, 24);
  return /^[0-9A-F]{24}$/.test(name) && name < segment;
}

/** One standby streaming from this server (pg_stat_replication). */
export interface ReplicaStatus {
  applicationName: string;
  client: string;
  state: string;
  /** replay_lag in seconds; 0 when the standby is idle and caught up (replay_lag is null then). */
  replayLagSeconds: number;
}

export async function readReplicas(pool: pg.Pool | pg.ClientBase): Promise<ReplicaStatus[]> {
  const { rows } = await pool.query<{ name: string; client: string; state: string; lag: number }>(
    `select application_name as name, coalesce(client_addr::text, 'local') as client,
            coalesce(state, 'unknown') as state, coalesce(extract(epoch from replay_lag), 0)::float8 as lag
       from pg_stat_replication order by application_name, client_addr`,
  );
  return rows.map((r) => ({
    applicationName: r.name,
    client: r.client,
    state: r.state,
    replayLagSeconds: Number(r.lag),
  }));
}

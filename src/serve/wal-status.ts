import type pg from "pg";

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
  /**
   * True when a completed WAL segment is not archived yet: the last archived segment is older than
   * the one before the segment being written.
   */
  behind: boolean;
  /** Seconds since the last successful archive (since the server started when none), 0 when not behind. */
  lagSeconds: number;
}

/**
 * Reads pg_stat_archiver with the segment being written. Needs no extra privileges (pg_monitor not
 * required), which is why it compares segment names instead of listing archive_status/*.ready.
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
                  and pg_current_wal_lsn() - '0/0'::pg_lsn >= s.size
                 then pg_walfile_name(pg_current_wal_lsn() - s.size) end as previous_segment,
            extract(epoch from now() - coalesce(a.last_archived_time, pg_postmaster_start_time()))::float8 as since
       from pg_stat_archiver a,
            (select setting::numeric as size from pg_settings where name = 'wal_segment_size') s`,
  );
  const row = rows[0]!;
  const configured = row.mode !== "off";
  const previous = row.previous_segment;
  const behind =
    configured &&
    previous !== null &&
    (row.last_archived_wal === null || isOlderSegment(row.last_archived_wal, previous));
  return {
    configured,
    inRecovery: row.recovery,
    archivedCount: Number(row.archived),
    failedCount: Number(row.failed),
    lastArchivedWal: row.last_archived_wal,
    lastFailedWal: row.last_failed_wal,
    behind,
    lagSeconds: behind ? Math.max(0, row.since) : 0,
  };
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

import { createHash } from "node:crypto";
import type pg from "pg";
import { withAdvisoryLock } from "../pg/advisory-lock.ts";

/**
 * High half of a dataset's advisory lock key (a bigint); the low half is a hash of the dataset name.
 * Apart from pgshift's other keys, whose high half is 0x70677368.
 */
const REFRESH_LOCK_CLASS = 0x7067_0007n;

export function refreshLockKey(dataset: string): bigint {
  const hash = createHash("sha256").update(dataset).digest().readUInt32BE(0);
  return (REFRESH_LOCK_CLASS << 32n) | BigInt(hash);
}

/**
 * Runs `fn` holding the dataset's lock (a session advisory lock on its own connection). A second
 * refresh, rollback or prune of the same dataset fails at once with LockBusyError naming the holder.
 */
export function withRefreshLock<T>(pool: pg.Pool, dataset: string, fn: () => Promise<T>): Promise<T> {
  return withAdvisoryLock(pool, refreshLockKey(dataset), () => fn(), {
    waitMs: 0,
    what: `dataset "${dataset}" (a refresh, rollback or prune runs)`,
    next: "wait for it to finish, then run again",
  });
}

import type pg from "pg";
import { LockKey, withAdvisoryLock } from "../pg/advisory-lock.ts";
import type { ProgressCallback } from "../progress.ts";
import { canonicalEqual, canonicalValue } from "./canonical-json.ts";
import type { CutoverSide } from "./phases.ts";

/** How to read and write one key of a store; lets the repairer and verifier work per key. */
export interface CutoverKeyAccess<T> {
  /** The value `store` holds for `key`, `undefined` (or null) when it has none. */
  read(store: T, key: string): Promise<unknown>;
  /** Makes `store` hold `value` for `key`; `undefined` means remove the key. */
  write(store: T, key: string, value: unknown): Promise<void>;
  /** Every key of `store` (for a full verification). */
  keys?(store: T): AsyncIterable<string> | Iterable<string>;
}

export interface CutoverRepairEntry {
  side: CutoverSide;
  method: string;
  args: readonly unknown[];
  key: string | undefined;
  phase: string;
  error: string;
}

/**
 * Records failed non-authoritative writes durably. When PostgreSQL itself is unreachable the entry
 * stays in memory (`backlog`) and is written on the next flush, so a failure is never silently lost;
 * the backlog size is part of the metrics.
 */
export class RepairLedger {
  private readonly backlog: CutoverRepairEntry[] = [];
  recorded = 0;

  constructor(
    private readonly pool: pg.Pool,
    private readonly cutover: string,
  ) {}

  /** Entries not yet written to PostgreSQL. */
  pending(): CutoverRepairEntry[] {
    return [...this.backlog];
  }

  get backlogSize(): number {
    return this.backlog.length;
  }

  async record(entry: CutoverRepairEntry): Promise<void> {
    this.backlog.push(entry);
    await this.flush().catch(() => undefined);
  }

  /** Writes every buffered entry; throws if PostgreSQL is still unreachable (entries stay buffered). */
  async flush(): Promise<void> {
    while (this.backlog.length > 0) {
      const batch = this.backlog.slice(0, 100);
      const values: unknown[] = [];
      const tuples = batch.map((entry, i) => {
        values.push(
          this.cutover,
          entry.side,
          entry.method,
          JSON.stringify(canonicalValue([...entry.args])),
          entry.key ?? null,
          entry.phase,
          entry.error,
        );
        const b = i * 7;
        return `($${b + 1}, $${b + 2}, $${b + 3}, $${b + 4}::jsonb, $${b + 5}, $${b + 6}, $${b + 7})`;
      });
      await this.pool.query(
        `insert into pgshift.cutover_repairs (cutover, side, method, args, key, phase, error) values ${tuples.join(", ")}`,
        values,
      );
      this.backlog.splice(0, batch.length);
      this.recorded += batch.length;
    }
  }
}

export interface CutoverRepairOptions {
  /** Stop after this many ledger entries (default: all pending). */
  limit?: number;
  onProgress?: ProgressCallback;
  /** How long to wait for another repairer of any cutover to finish (default 30 s). */
  lockWaitMs?: number;
}

export interface CutoverRepairResult {
  cutover: string;
  /** Ledger entries examined. */
  examined: number;
  /** Entries closed in this run. */
  repaired: number;
  /** Entries that failed again (attempts incremented, still pending). */
  failed: number;
  /** Entries left pending because an earlier entry for the same key failed (order is kept). */
  deferred: number;
  /** Pending entries left after the run. */
  pending: number;
  /** "sync" copies each key's current value from the other side; "replay" re-runs the recorded call. */
  mode: "sync" | "replay";
  errors: { id: number; key: string | null; error: string }[];
}

interface LedgerRow {
  id: number;
  side: CutoverSide;
  method: string;
  args: unknown[];
  key: string | null;
}

/**
 * Closes recorded divergences. With `keyAccess`, each key's current value is copied from the other
 * side (read, write, read again until the source did not move meanwhile), which is idempotent and
 * correct whatever happened to the key since the failure. Without it, recorded calls are replayed in
 * their original order; a key whose replay fails keeps its later entries pending so order is never broken.
 */
export async function runRepair<T extends object>(options: {
  pool: pg.Pool;
  cutover: string;
  legacy: T;
  next: T;
  keyAccess?: CutoverKeyAccess<T>;
  repairOptions?: CutoverRepairOptions;
}): Promise<CutoverRepairResult> {
  const { pool, cutover, keyAccess } = options;
  const limit = options.repairOptions?.limit ?? Number.POSITIVE_INFINITY;
  const result: CutoverRepairResult = {
    cutover,
    examined: 0,
    repaired: 0,
    failed: 0,
    deferred: 0,
    pending: 0,
    mode: keyAccess ? "sync" : "replay",
    errors: [],
  };
  const stores: Record<CutoverSide, T> = {
    legacy: options.legacy,
    next: options.next,
  };
  await withAdvisoryLock(
    pool,
    LockKey.cutoverRepair,
    async () => {
      let afterId = 0;
      const blockedKeys = new Set<string>();
      while (result.examined < limit) {
        const { rows } = await pool.query(
          `select id, side, method, args, key from pgshift.cutover_repairs
            where cutover = $1 and status = 'pending' and id > $2 order by id limit $3`,
          [cutover, afterId, Math.min(500, limit - result.examined)],
        );
        if (rows.length === 0) break;
        for (const row of rows as LedgerRow[]) {
          afterId = Number(row.id);
          result.examined++;
          const blockKey = `${row.side}\u0000${row.key ?? `#${row.id}`}`;
          if (blockedKeys.has(blockKey)) {
            result.deferred++;
            continue;
          }
          const target = stores[row.side];
          const source = stores[row.side === "next" ? "legacy" : "next"];
          try {
            if (keyAccess && row.key !== null) await syncCutoverKey(keyAccess, source, target, row.key);
            else {
              const fn = (target as Record<string, unknown>)[row.method];
              if (typeof fn !== "function")
                throw new Error(`the ${row.side} store has no method ${row.method}`);
              await (fn as (...a: unknown[]) => Promise<unknown>).apply(target, row.args);
            }
            // In sync mode one copy closes every pending entry of that key on that side up to here.
            const closed = await pool.query(
              keyAccess && row.key !== null
                ? `update pgshift.cutover_repairs set status = 'repaired', repaired_at = now(), updated_at = now(), attempts = attempts + 1
                    where cutover = $1 and side = $2 and key = $3 and status = 'pending' and id <= $4`
                : `update pgshift.cutover_repairs set status = 'repaired', repaired_at = now(), updated_at = now(), attempts = attempts + 1
                    where cutover = $1 and side = $2 and id = $4 and status = 'pending' and $3::text is not distinct from key`,
              [cutover, row.side, row.key, row.id],
            );
            result.repaired += closed.rowCount ?? 0;
          } catch (error) {
            const message = error instanceof Error ? error.message : String(error);
            blockedKeys.add(blockKey);
            result.failed++;
            if (result.errors.length < 20)
              result.errors.push({
                id: Number(row.id),
                key: row.key,
                error: message,
              });
            await pool.query(
              `update pgshift.cutover_repairs set attempts = attempts + 1, last_error = $2, updated_at = now() where id = $1`,
              [row.id, message],
            );
          }
          options.repairOptions?.onProgress?.({
            task: `repair ${cutover}`,
            done: result.examined,
            unit: "entries",
          });
        }
      }
    },
    {
      waitMs: options.repairOptions?.lockWaitMs ?? 30_000,
      what: `the repairer of cutover ${cutover}`,
    },
  );
  const { rows } = await pool.query(
    "select count(*)::int as n from pgshift.cutover_repairs where cutover = $1 and status = 'pending'",
    [cutover],
  );
  result.pending = rows[0].n;
  options.repairOptions?.onProgress?.({
    task: `repair ${cutover}`,
    done: result.examined,
    unit: "entries",
    finished: true,
  });
  return result;
}

/** Copies `key` from source to target until the source value did not change during the copy. */
export async function syncCutoverKey<T>(
  access: CutoverKeyAccess<T>,
  source: T,
  target: T,
  key: string,
): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const value = await access.read(source, key);
    await access.write(target, key, value ?? undefined);
    const after = await access.read(source, key);
    if (canonicalEqual(value ?? null, after ?? null)) return;
  }
  throw new Error(`key ${key} kept changing on the source side during repair; retry later`);
}

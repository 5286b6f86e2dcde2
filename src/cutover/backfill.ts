import { setTimeout as sleep } from "node:timers/promises";
import type pg from "pg";
import { PgshiftError } from "../errors.ts";
import type { ProgressCallback } from "../progress.ts";

/** Writes one batch into `next` idempotently (an upsert); returns how many records it wrote. */
export type CutoverBackfillSink<R> = (batch: R[]) => Promise<number | undefined | void>;

export interface CutoverBackfillOptions<R> {
  /** The legacy data: an (async) iterable, or a function returning one (lets a resume start a second pass). */
  from: AsyncIterable<R> | Iterable<R> | (() => AsyncIterable<R> | Iterable<R>);
  /** Where batches go: see documentSink / upsertSink, or any idempotent function. */
  to: CutoverBackfillSink<R>;
  /** The key of a record (checkpoint, resume); default: `record.key`, `record.id`, or `record[0]` for entries. */
  keyOf?: (record: R) => string;
  /** Records per batch (default 500). */
  batchSize?: number;
  /** Records per second at most (default: unlimited). */
  rateLimit?: number;
  onProgress?: ProgressCallback;
  /** Names this backfill's checkpoint, so several backfills of one cutover resume independently (default "default"). */
  resumeKey?: string;
  /** Continue after the last checkpoint of an interrupted run (default true); false starts over. */
  resume?: boolean;
  /** The source yields keys in ascending order (by `compareKeys`): resume skips by comparison, not by search. */
  ordered?: boolean;
  compareKeys?: (a: string, b: string) => number;
  /** Expected record count, for progress with an ETA. */
  total?: number;
}

export interface CutoverBackfillResult {
  cutover: string;
  resumeKey: string;
  /** The checkpoint key this run continued after (null: started from the beginning). */
  resumedAfter: string | null;
  /** Records skipped because an earlier run already wrote them. */
  skipped: number;
  /** Records written by this run. */
  written: number;
  batches: number;
  /** Records written by all runs of this backfill. */
  totalWritten: number;
  durationMs: number;
}

export class BackfillResumeError extends PgshiftError {
  constructor(cutover: string, lastKey: string) {
    super(
      "backfill_resume_lost",
      `backfill of cutover ${cutover}: the checkpoint key ${lastKey} no longer appears in the source, so the resume point is unknown; pass \`from\` as a function (a second pass then starts from the beginning), or rerun with resume: false (the sink upserts, so this is safe)`,
      { details: { cutover, lastKey } },
    );
  }
}

export function defaultBackfillKey(record: unknown): string {
  if (Array.isArray(record)) return String(record[0]);
  if (record && typeof record === "object") {
    const r = record as Record<string, unknown>;
    if (r.key !== undefined) return String(r.key);
    if (r.id !== undefined) return String(r.id);
  }
  throw new PgshiftError(
    "backfill_no_key",
    "backfill: cannot tell the key of a record (no `key`, `id` or [key, value] entry); pass keyOf",
  );
}

/** Numeric order when both keys are integers, text order otherwise. */
export function defaultCompareBackfillKeys(a: string, b: string): number {
  if (/^-?\d+$/.test(a) && /^-?\d+$/.test(b)) {
    const x = BigInt(a);
    const y = BigInt(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Copies legacy records into next in batches through an idempotent sink, checkpointing the last key
 * of every batch in pgshift.cutover_backfills so an interrupted run continues where it stopped.
 * Run it during dual-write: writes made meanwhile reach next on their own.
 */
export async function runBackfill<R>(
  pool: pg.Pool,
  cutover: string,
  options: CutoverBackfillOptions<R>,
): Promise<CutoverBackfillResult> {
  const resumeKey = options.resumeKey ?? "default";
  const batchSize = Math.max(1, options.batchSize ?? 500);
  const keyOf = options.keyOf ?? defaultBackfillKey;
  const compareKeys = options.compareKeys ?? defaultCompareBackfillKeys;
  const started = Date.now();
  const task = `backfill ${cutover}`;
  const { rows } = await pool.query(
    "select last_key, rows_done, status from pgshift.cutover_backfills where cutover = $1 and resume_key = $2",
    [cutover, resumeKey],
  );
  const previous = rows[0] as { last_key: string | null; rows_done: string; status: string } | undefined;
  const resuming = (options.resume ?? true) && previous?.status === "running" && previous.last_key !== null;
  const resumedAfter = resuming ? previous!.last_key : null;
  let totalWritten = resuming ? Number(previous!.rows_done) : 0;
  await pool.query(
    `insert into pgshift.cutover_backfills (cutover, resume_key, last_key, rows_done, batches, status)
     values ($1, $2, $3, $4, 0, 'running')
     on conflict (cutover, resume_key) do update set last_key = excluded.last_key, rows_done = excluded.rows_done,
       status = 'running', updated_at = now(), finished_at = null,
       started_at = case when $5 then pgshift.cutover_backfills.started_at else now() end,
       batches = case when $5 then pgshift.cutover_backfills.batches else 0 end`,
    [cutover, resumeKey, resumedAfter, totalWritten, resuming],
  );
  const result: CutoverBackfillResult = {
    cutover,
    resumeKey,
    resumedAfter,
    skipped: 0,
    written: 0,
    batches: 0,
    totalWritten,
    durationMs: 0,
  };
  const progress = (finished = false) =>
    options.onProgress?.({
      task,
      done: result.skipped + result.written,
      ...(options.total !== undefined ? { total: options.total } : {}),
      unit: "records",
      ...(finished ? { finished: true } : {}),
    });

  const flush = async (batch: R[]) => {
    if (batch.length === 0) return;
    const written = await options.to(batch);
    const lastKey = keyOf(batch[batch.length - 1]!);
    result.written += typeof written === "number" ? written : batch.length;
    totalWritten += typeof written === "number" ? written : batch.length;
    result.batches++;
    await pool.query(
      `update pgshift.cutover_backfills set last_key = $3, rows_done = $4, batches = batches + 1, updated_at = now()
        where cutover = $1 and resume_key = $2`,
      [cutover, resumeKey, lastKey, totalWritten],
    );
    progress();
    if (options.rateLimit && options.rateLimit > 0) {
      const due = ((result.written + result.skipped) / options.rateLimit) * 1000;
      const ahead = due - (Date.now() - started);
      if (ahead > 0) await sleep(ahead);
    }
  };

  const pass = async (skipUntil: string | null): Promise<boolean> => {
    const source = typeof options.from === "function" ? options.from() : options.from;
    let skipping = skipUntil !== null;
    let batch: R[] = [];
    for await (const record of source as AsyncIterable<R>) {
      if (skipping) {
        const key = keyOf(record);
        if (options.ordered) {
          if (compareKeys(key, skipUntil!) <= 0) {
            result.skipped++;
            continue;
          }
          skipping = false;
        } else {
          result.skipped++;
          if (key === skipUntil) skipping = false;
          continue;
        }
      }
      batch.push(record);
      if (batch.length >= batchSize) {
        await flush(batch);
        batch = [];
      }
    }
    await flush(batch);
    return !skipping || Boolean(options.ordered);
  };

  if (!(await pass(resumedAfter))) {
    // The checkpoint key vanished (deleted meanwhile): everything was skipped, so copy it all again.
    if (typeof options.from !== "function") throw new BackfillResumeError(cutover, resumedAfter!);
    result.skipped = 0;
    await pass(null);
  }
  await pool.query(
    `update pgshift.cutover_backfills set status = 'finished', finished_at = now(), updated_at = now()
      where cutover = $1 and resume_key = $2`,
    [cutover, resumeKey],
  );
  result.totalWritten = totalWritten;
  result.durationMs = Date.now() - started;
  progress(true);
  return result;
}

import type pg from "pg";
import { assertAuditInstalled } from "./install-audit.ts";

export interface SealResult {
  /** Audit rows chained by this call. */
  sealed: number;
  headSeq: number;
  headHash: string;
  /** Transaction ids below this are all sealed. */
  horizon: string;
}

/**
 * Chains every audit row whose transaction ended before the oldest transaction still running began
 * (see pgshift.audit_seal_pending). Writers never wait for it; it runs on its own (autocommit)
 * connection so that its snapshot is fresh.
 */
export async function sealAudit(pool: pg.Pool): Promise<SealResult> {
  await assertAuditInstalled(pool);
  const { rows } = await pool.query(
    "select sealed, head_seq, encode(head_hash, 'hex') as head_hash, horizon::text from pgshift.audit_seal_pending()",
  );
  const r = rows[0];
  return { sealed: Number(r.sealed), headSeq: Number(r.head_seq), headHash: r.head_hash, horizon: r.horizon };
}

export interface AuditSealer {
  stop(): Promise<void>;
}

/**
 * Seals periodically, bounding the window in which a fresh audit row is not yet chained.
 * Errors go to `onError` (the next tick retries).
 */
export function startAuditSealer(
  pool: pg.Pool,
  options: {
    intervalMs?: number;
    onSeal?: (result: SealResult) => void;
    onError?: (error: unknown) => void;
  } = {},
): AuditSealer {
  let running: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    running = sealAudit(pool).then(
      (result) => options.onSeal?.(result),
      (error) => options.onError?.(error),
    );
  }, options.intervalMs ?? 1000);
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}

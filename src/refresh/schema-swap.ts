import type pg from "pg";
import { withClient } from "../pg/pool.ts";
import { quoteIdent } from "../pg/quote.ts";
import { withRetry } from "../pg/retry.ts";

export interface SwapOptions {
  /** Schema renames, in order, all in one transaction. */
  renames: { from: string; to: string }[];
  /**
   * Statements run in the same transaction before the renames (e.g. recording the versions): their row
   * locks are nobody's concern but pgshift's, and the schemas' locks are held only from the renames on.
   */
  record?: (client: pg.ClientBase) => Promise<void>;
  /** lock_timeout of the swap transaction (default 2000 ms); 55P03 is retried with jitter. */
  lockTimeoutMs?: number;
  retries?: number;
}

export interface SwapResult {
  attempts: number;
  /** From the first rename to the end of COMMIT: how long the schema locks were held. */
  lockHeldMs: number;
}

/** The pure SQL of a swap: one ALTER SCHEMA ... RENAME per step. */
export function swapStatements(renames: readonly { from: string; to: string }[]): string[] {
  return renames.map((r) => `alter schema ${quoteIdent(r.from)} rename to ${quoteIdent(r.to)}`);
}

/**
 * Renames schemas in one transaction. Renaming a schema takes no relation lock, so readers in flight
 * keep running (they resolved their tables already) and the next statement resolves the new names.
 */
export async function swapSchemas(pool: pg.Pool, options: SwapOptions): Promise<SwapResult> {
  const lockTimeout = Math.max(1, Math.round(options.lockTimeoutMs ?? 2000));
  let attempts = 0;
  return withRetry(
    () =>
      withClient(pool, async (client) => {
        attempts++;
        await client.query("begin");
        try {
          await client.query(`set local lock_timeout = ${lockTimeout}`);
          await options.record?.(client);
          const started = performance.now();
          // one round trip for every rename (identifiers only, no values): on a busy server each round
          // trip is a wait for a CPU slice while the schema locks are held
          await client.query(swapStatements(options.renames).join(";\n"));
          await client.query("commit");
          return { attempts, lockHeldMs: performance.now() - started };
        } catch (error) {
          await client.query("rollback").catch(() => undefined);
          throw error;
        }
      }),
    { retries: options.retries ?? 5, baseDelayMs: 50, maxDelayMs: 1000 },
  );
}

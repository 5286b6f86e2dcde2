import type pg from "pg";
import { withTransaction } from "../pg/pool.ts";

export interface AuditContext {
  /** Who acts (an application user id, an operator name): recorded in every audit row of the transaction. */
  actor: string;
  /** Why: recorded with each change; required for UPDATE/DELETE on tables enabled with requireReason. */
  reason?: string;
}

/**
 * Sets the audit context for the transaction the client is in (`set_config(..., true)`, i.e. SET LOCAL):
 * it ends with the transaction, so it is safe behind transaction-mode PgBouncer.
 */
export async function setAuditContext(client: pg.ClientBase, context: AuditContext): Promise<void> {
  await client.query("select set_config('pgshift.actor', $1, true), set_config('pgshift.reason', $2, true)", [
    context.actor,
    context.reason ?? "",
  ]);
}

/**
 * Runs `fn` in a transaction whose audit rows carry this actor and reason.
 *
 *   await withAuditContext(pool, { actor: "u-42", reason: "ticket 981" }, (client) =>
 *     client.query("update orders set status = 'shipped' where id = $1", [id]));
 */
export async function withAuditContext<T>(
  pool: pg.Pool,
  context: AuditContext,
  fn: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  return withTransaction(pool, async (client) => {
    await setAuditContext(client, context);
    return fn(client);
  });
}

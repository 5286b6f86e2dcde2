import type pg from "pg";
import { stopIfAborted } from "../pg/abort.ts";
import { withTransaction } from "../pg/pool.ts";
import type { ProgressCallback } from "../progress.ts";
import { RotationRefusedError } from "./crypto-errors.ts";
import type { IntegrityProblem } from "./verify-integrity.ts";
import type { Keyring } from "./keyring.ts";
import { protectedTable, rowKey } from "./protected-table.ts";

export interface RotateKeysOptions {
  pool: pg.Pool;
  /** Default "public". */
  schema?: string;
  table: string;
  /** Holds the old key(s) and, as `active`, the key to move every row to. */
  keyring: Keyring;
  /** Rows re-encrypted per transaction (default 1000). */
  batchSize?: number;
  onProgress?: ProgressCallback;
  /** Stops between batches: every committed batch stays rotated, a rerun goes on from there. */
  signal?: AbortSignal;
}

export interface RotateKeysResult {
  schema: string;
  table: string;
  toKeyId: string;
  /** Rows that were under an older key and are now under `toKeyId`. */
  rowsRotated: number;
  /** Rows left alone because their MAC or a ciphertext did not check (re-sealing them would launder a change). */
  refused: IntegrityProblem[];
  batches: number;
  durationMs: number;
}

/**
 * Moves every row of a protected table to the keyring's active key: each encrypted field decrypted with
 * its old key and encrypted again (blind index recomputed), the record MAC checked under the old key and
 * computed under the new one. Keyset pages in key order, one transaction per batch, rows locked while
 * they are rewritten. Rows already under the active key are not selected, so a rerun after an
 * interruption resumes where it stopped. Rows whose old MAC or ciphertext fails are not rewritten; the
 * rotation then ends with RotationRefusedError naming them (after every other row has moved).
 *
 * @example
 *   await rotateKeys({ pool, table: "patients", keyring: loadKeyring("keys.json") }); // active: "k2"
 */
export async function rotateKeys(options: RotateKeysOptions): Promise<RotateKeysResult> {
  const started = performance.now();
  const schema = options.schema ?? "public";
  const target = await protectedTable(options.pool, schema, options.table, options.keyring);
  const { info } = target;
  const toKeyId = options.keyring.activeId;
  const batchSize = options.batchSize ?? 1000;
  const keyCount = info.keyColumns.length;
  // rows with any envelope or MAC under another key id; absent fields and MACs do not count
  const stale = target.stale("$1");
  if (stale.length === 0) stale.push("false");
  const { rows: counted } = await options.pool.query(
    `select count(*)::bigint as n from ${target.qualified} where ${stale.join(" or ")}`,
    [toKeyId],
  );
  const total = Number(counted[0].n);
  const refused: IntegrityProblem[] = [];
  const refusedKeys = new Set<string>();
  let rowsRotated = 0;
  let batches = 0;
  let last: string[] | undefined;
  const task = `rotate ${info.table} to ${toKeyId}`;
  for (;;) {
    stopIfAborted(options.signal);
    const done = await withTransaction(options.pool, async (client) => {
      for (const [name, value] of Object.entries(target.settings))
        await client.query("select set_config($1, $2, true)", [name, value]);
      const { rows } = await client.query(
        `select ${target.selectList} from ${target.qualified}
         where (${stale.join(" or ")}) ${last ? `and ${target.after(2)}` : ""}
         order by ${target.keyList} limit $${last ? keyCount + 2 : 2} for update`,
        last ? [toKeyId, ...last, batchSize] : [toKeyId, batchSize],
      );
      for (const row of rows) {
        const key = rowKey(row, keyCount);
        const rotated = target.rotate(row, key);
        if ("refused" in rotated) {
          refused.push({ key, ...rotated.refused });
          continue;
        }
        if (rotated.sets.length > 0)
          await client.query(
            `update ${target.qualified} set ${rotated.sets.join(", ")} where ${target.keyMatch(rotated.values.length + 1)}`,
            [...rotated.values, ...key],
          );
        rowsRotated++;
      }
      return rows;
    });
    batches++;
    for (const problem of refused) refusedKeys.add(JSON.stringify(problem.key));
    options.onProgress?.({ task, done: rowsRotated + refusedKeys.size, total, unit: "rows" });
    if (done.length < batchSize) break;
    last = rowKey(done[done.length - 1], keyCount);
  }
  options.onProgress?.({ task, done: rowsRotated + refusedKeys.size, total, unit: "rows", finished: true });
  const result: RotateKeysResult = {
    schema,
    table: info.table,
    toKeyId,
    rowsRotated,
    refused,
    batches,
    durationMs: Math.round(performance.now() - started),
  };
  if (refused.length > 0)
    throw new RotationRefusedError(
      `${refused.length} row(s) of ${schema}.${info.table} were left under their old key because their MAC or ciphertext does not check (first: ${refused[0]!.key.join(", ")}: ${refused[0]!.problem}); run "pgshift verify --integrity" and repair them, then rotate again. ${rowsRotated} row(s) were rotated to ${toKeyId}`,
      { ...result },
    );
  return result;
}

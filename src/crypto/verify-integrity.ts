import type pg from "pg";
import { stopIfAborted } from "../pg/abort.ts";
import { withClient } from "../pg/pool.ts";
import type { ProgressCallback } from "../progress.ts";
import type { Keyring } from "./keyring.ts";
import { protectedTable, rowKey } from "./protected-table.ts";
import type { MacCheck } from "./record-mac.ts";

/**
 * One page of rows; with session settings (canonical text output for relational rows) in a read-only
 * transaction of its own, so that a pooled session is left as it was.
 */
export async function readBatch(
  pool: pg.Pool,
  settings: Record<string, string>,
  query: { text: string; values: unknown[] },
): Promise<Record<string, unknown>[]> {
  if (Object.keys(settings).length === 0) return (await pool.query(query)).rows;
  return withClient(pool, async (client) => {
    await client.query("begin read only");
    try {
      for (const [name, value] of Object.entries(settings))
        await client.query("select set_config($1, $2, true)", [name, value]);
      const { rows } = await client.query(query);
      await client.query("commit");
      return rows;
    } catch (error) {
      await client.query("rollback").catch(() => undefined);
      throw error;
    }
  });
}

export interface VerifyIntegrityOptions {
  pool: pg.Pool;
  /** Default "public". */
  schema?: string;
  table: string;
  keyring: Keyring;
  /** Rows read per query (keyset pages in key order; default 5000). */
  batchSize?: number;
  /** Problems listed in the result at most (default 10000; all are counted). */
  maxListed?: number;
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
}

export type IntegrityProblemKind =
  `mac_${Exclude<MacCheck, "ok">}` | "decrypt_failed" | "unknown_key" | "not_encrypted";

export interface IntegrityProblem {
  /** The row's key values, as PostgreSQL prints them. */
  key: string[];
  problem: IntegrityProblemKind;
  /** The encrypted field (JSON pointer) or column concerned (field problems). */
  pointer?: string;
}

export interface VerifyIntegrityResult {
  schema: string;
  table: string;
  /** "intact": every MAC and every ciphertext checks; "tampered": `problems` names the rows that do not. */
  status: "intact" | "tampered";
  rowsChecked: number;
  rowsWithProblems: number;
  problems: IntegrityProblem[];
  /** False when more problems were found than listed (maxListed). */
  listedAll: boolean;
  integrity: boolean;
  encryptedPaths: string[];
  /** Encrypted columns (a relational table). */
  encryptedColumns: string[];
  /** Rows per key id of their MAC (rotation progress at a glance). */
  macKeyIds: Record<string, number>;
  durationMs: number;
}

/**
 * Recomputes every row's record MAC (over its key and stored document) and authenticates every
 * encrypted field, and names each row whose stored content no longer matches: changed by someone
 * without the key, or written without it.
 *
 * @example
 *   const result = await verifyIntegrity({ pool, table: "patients", keyring: loadKeyring("keys.json") });
 *   if (result.status === "tampered") console.log(result.problems);
 */
export async function verifyIntegrity(options: VerifyIntegrityOptions): Promise<VerifyIntegrityResult> {
  const started = performance.now();
  const schema = options.schema ?? "public";
  const target = await protectedTable(options.pool, schema, options.table, options.keyring);
  const { info } = target;
  const batchSize = options.batchSize ?? 5000;
  const maxListed = options.maxListed ?? 10_000;
  const keyCount = info.keyColumns.length;
  const { rows: counted } = await options.pool.query(`select count(*)::bigint as n from ${target.qualified}`);
  const total = Number(counted[0].n);
  const problems: IntegrityProblem[] = [];
  const macKeyIds: Record<string, number> = {};
  let rowsChecked = 0;
  let rowsWithProblems = 0;
  let problemsFound = 0;
  let last: string[] | undefined;
  for (;;) {
    stopIfAborted(options.signal);
    const rows = await readBatch(options.pool, target.settings, {
      text: `select ${target.selectList} from ${target.qualified}
       ${last ? `where ${target.after(1)}` : ""} order by ${target.keyList} limit $${last ? keyCount + 1 : 1}`,
      values: last ? [...last, batchSize] : [batchSize],
    });
    for (const row of rows) {
      const key = rowKey(row, keyCount);
      const checked = target.check(row, key);
      if (checked.macKeyId) macKeyIds[checked.macKeyId] = (macKeyIds[checked.macKeyId] ?? 0) + 1;
      if (checked.problems.length > 0) {
        rowsWithProblems++;
        problemsFound += checked.problems.length;
        for (const problem of checked.problems)
          if (problems.length < maxListed) problems.push({ key, ...problem });
      }
    }
    rowsChecked += rows.length;
    options.onProgress?.({ task: `integrity ${info.table}`, done: rowsChecked, total, unit: "rows" });
    if (rows.length < batchSize) break;
    last = rowKey(rows[rows.length - 1]!, keyCount);
  }
  options.onProgress?.({
    task: `integrity ${info.table}`,
    done: rowsChecked,
    total,
    unit: "rows",
    finished: true,
  });
  return {
    schema,
    table: info.table,
    status: rowsWithProblems === 0 ? "intact" : "tampered",
    rowsChecked,
    rowsWithProblems,
    problems,
    listedAll: problemsFound <= maxListed,
    integrity: info.integrity,
    encryptedPaths: info.encryptedPaths,
    encryptedColumns: info.encryptedColumns.map((c) => c.name),
    macKeyIds,
    durationMs: Math.round(performance.now() - started),
  };
}

import type pg from "pg";
import { quoteIdent } from "../pg/quote.ts";
import type { CanonicalRow, SourceTableReader } from "./source-reader.ts";
import { type RowPlacement, sourceChunkSums } from "./source-sums.ts";
import type { TargetAggregate, TargetSql } from "./target-side.ts";

/**
 * The target side of a table with encrypted columns. PostgreSQL cannot decrypt them (it never holds
 * the keys), so its rows come to the client in canonical text, pass through `decrypt` and are summed
 * by the same code as the source side (source-sums.ts): one md5 per row of the record text, the same
 * chunks. Slower than the in-server sums, and the only way to compare the values themselves rather
 * than only counts and MACs.
 */

/** Rows fetched per round trip of the cursor. */
const FETCH_ROWS = 5000;

let cursorCount = 0;

/** Every target row (canonical fields, decrypted), in key order when `ordered`; in the caller's transaction. */
async function* decryptedRows(
  client: pg.ClientBase,
  sql: TargetSql,
  ordered: boolean,
  decrypt: (stored: CanonicalRow) => CanonicalRow,
  counted: { rows: number },
): AsyncIterable<CanonicalRow[]> {
  const cursor = `pgshift_verify_${++cursorCount}`;
  await client.query(
    `declare ${cursor} no scroll cursor for
       select ${sql.fields.map((f, i) => `${f} as c${i}`).join(", ")} from ${sql.from}
       ${ordered && sql.keyColumn !== undefined ? `order by ${quoteIdent(sql.keyColumn)}` : ""}`,
  );
  try {
    for (;;) {
      const { rows } = await client.query(`fetch ${FETCH_ROWS} from ${cursor}`);
      if (rows.length === 0) return;
      counted.rows += rows.length;
      yield rows.map((r: Record<string, string | null>) =>
        decrypt(sql.fields.map((_, i) => r[`c${i}`] ?? null)),
      );
    }
  } finally {
    await client.query(`close ${cursor}`).catch(() => undefined);
  }
}

/** Counts and per-chunk checksums of the decrypted target rows (the same figures as targetChunkSums). */
export async function decryptedTargetChunkSums(
  client: pg.ClientBase,
  sql: TargetSql,
  placement: RowPlacement,
  decrypt: (stored: CanonicalRow) => CanonicalRow,
  sample?: number,
): Promise<TargetAggregate> {
  const strategy = placement.strategy;
  const ordered = strategy.kind === "key-range" && Boolean(strategy.ordered);
  const counted = { rows: 0 };
  const reader: SourceTableReader = {
    count: () => counted.rows,
    integerKeyRange: () => undefined,
    rows: () => decryptedRows(client, sql, ordered, decrypt, counted),
    close: () => undefined,
  };
  const sums = await sourceChunkSums(reader, placement, () => undefined);
  if (sample === undefined) return { totalRows: counted.rows, chunks: sums.chunks };
  return { totalRows: counted.rows, sampledRows: sums.rows, chunks: sums.chunks };
}

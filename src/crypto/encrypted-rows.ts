import type pg from "pg";
import { UsageError } from "../errors.ts";
import { quoteIdent, quoteQualified } from "../pg/quote.ts";
import { canonicalConverter, isUnconvertible, type SourceValue } from "../verify/canonical.ts";
import { kindOfPlannedType } from "../verify/plan-tables.ts";
import { columnContext, noKeysError, valueOfCanonical } from "./column-sealer.ts";
import { blindIndex } from "./blind-index.ts";
import { DecryptionError } from "./crypto-errors.ts";
import { type EncryptedTableInfo, readEncryptedTable } from "./encryption-registry.ts";
import { decryptText, isEnvelope } from "./field-cipher.ts";
import type { Keyring } from "./keyring.ts";

/**
 * Reading relational tables with encrypted columns (SQLite imports with --encrypt-columns): rows as
 * node-postgres returns them (an encrypted column is a jsonb envelope), decrypted for key holders into
 * the values a plain import would have given, in the column's original type. Without keys: a clear
 * EncryptedTableError, never ciphertext passed off as data.
 *
 * @example
 *   const table = await readEncryptedTable(pool, "public", "patients");
 *   const { rows } = await pool.query("select * from patients where id = $1", [7]);
 *   const patient = decryptRow(loadKeyring("keys.json"), table!, rows[0]); // { id: 7, ssn: "900-00-0007", ... }
 */
export function decryptRow<R extends Record<string, unknown>>(
  keyring: Keyring | undefined,
  table: EncryptedTableInfo,
  row: R,
): R {
  if (!keyring)
    throw noKeysError(
      table.schema,
      table.table,
      table.encryptedColumns.map((c) => c.name),
    );
  const out: Record<string, unknown> = { ...row };
  for (const column of table.encryptedColumns) {
    if (!(column.name in row)) continue;
    const stored = row[column.name];
    if (stored === null || stored === undefined) continue;
    const envelope = typeof stored === "string" ? (JSON.parse(stored) as unknown) : stored;
    if (!isEnvelope(envelope))
      throw new DecryptionError(
        `${table.schema}.${table.table}.${column.name} holds a value that is not a pgshift envelope (written without the keys?)`,
        { column: column.name },
      );
    let canonical: string;
    try {
      canonical = decryptText(keyring, columnContext(table.table, column.name), envelope);
    } catch (error) {
      if (!(error instanceof DecryptionError)) throw error;
      throw new DecryptionError(
        `${table.schema}.${table.table}.${column.name} does not decrypt under key "${envelope.kid}": it was changed, copied from another row's column, or ${keyring.origin} holds another key under that id`,
        { column: column.name, keyId: envelope.kid },
      );
    }
    out[column.name] = valueOfCanonical(column, canonical);
  }
  return out as R;
}

export interface FindByBlindIndexOptions {
  pool: pg.Pool;
  /** Default "public". */
  schema?: string;
  table: string;
  keyring: Keyring | undefined;
  /** An encrypted column with a blind index (--blind-index TABLE.COLUMN at import). */
  column: string;
  /** The plaintext looked for, as the source held it (a string, a number...). */
  value: SourceValue;
  /** Rows returned at most (default 1000). */
  limit?: number;
}

/**
 * The rows whose encrypted `column` equals `value`, decrypted: through the column's blind index (an
 * expression index on the envelope's `bi`), under every key of the keyring (rows not yet rotated still
 * match), each row checked after decrypting (a `bi` copied from another row does not make it match).
 */
export async function findByBlindIndex(options: FindByBlindIndexOptions): Promise<Record<string, unknown>[]> {
  const schema = options.schema ?? "public";
  const info = await readEncryptedTable(options.pool, schema, options.table);
  const column = info?.encryptedColumns.find((c) => c.name === options.column);
  if (!info || !column)
    throw new UsageError(
      `${schema}.${options.table}.${options.column} is not an encrypted column on record`,
      {
        schema,
        table: options.table,
      },
    );
  if (!column.blindIndex)
    throw new UsageError(
      `${schema}.${options.table}.${options.column} is encrypted without a blind index, so it cannot be looked up; import it with --blind-index ${options.table}.${options.column}`,
    );
  if (!options.keyring)
    throw noKeysError(
      schema,
      options.table,
      info.encryptedColumns.map((c) => c.name),
    );
  const canonical = canonicalConverter(kindOfPlannedType(column.originalType))(options.value);
  if (canonical === null) return [];
  if (isUnconvertible(canonical))
    throw new UsageError(
      `${String(options.value)} cannot be a value of ${column.originalType} (${options.column})`,
    );
  const context = columnContext(info.table, column.name);
  const indexes = options.keyring.all().map((key) => blindIndex(key, context, canonical));
  const { rows } = await options.pool.query(
    `select * from ${quoteQualified(schema, info.table)} where (${quoteIdent(column.name)} ->> 'bi') = any($1::text[]) limit $2`,
    [indexes, options.limit ?? 1000],
  );
  const keyring = options.keyring;
  return rows.flatMap((row: Record<string, unknown>) => {
    const envelope = row[column.name];
    if (!isEnvelope(envelope)) return [];
    let text: string;
    try {
      text = decryptText(keyring, context, envelope);
    } catch {
      return [];
    }
    return text === canonical ? [decryptRow(keyring, info, row)] : [];
  });
}

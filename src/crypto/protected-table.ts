import type pg from "pg";
import { UsageError } from "../errors.ts";
import { quoteIdent, quoteQualified } from "../pg/quote.ts";
import { fitIdentifier } from "../schema/naming.ts";
import { DocumentSealer } from "./document-sealer.ts";
import { type EncryptedTableInfo, readEncryptedTable } from "./encryption-registry.ts";
import type { Keyring } from "./keyring.ts";
import { RECORD_MAC_COLUMN } from "./record-mac.ts";

/** A table with encrypted fields or record MACs, as verify --integrity and keys rotate read it. */
export interface ProtectedTable {
  info: EncryptedTableInfo;
  sealer: DocumentSealer;
  qualified: string;
  /** `select` list: k0..kn (key columns as text), doc (text), mac. */
  selectList: string;
  keyList: string;
  /** `(k1, k2) > ($1, $2)` with parameters from `first`. */
  after(first: number): string;
  keyMatch(first: number): string;
}

/** What pgshift.encrypted_tables says of `schema.table`, with a sealer for it; a clear error when nothing. */
export async function protectedTable(
  pool: pg.Pool,
  schema: string,
  tableName: string,
  keyring: Keyring,
): Promise<ProtectedTable> {
  const table = fitIdentifier(tableName);
  const info = await readEncryptedTable(pool, schema, table);
  if (!info)
    throw new UsageError(
      `${schema}.${table} has no encrypted fields or record MACs on record (pgshift.encrypted_tables); import it with --encrypt or --integrity first`,
      { schema, table },
    );
  if (info.keyColumns.length === 0)
    throw new UsageError(
      `${schema}.${table} has no key columns; integrity checks and rotation need --key at import`,
    );
  const sealer = DocumentSealer.from({
    keyring,
    encryptedPaths: info.encryptedPaths,
    blindIndexPaths: info.blindIndexPaths,
    integrity: info.integrity,
  })!;
  const keys = info.keyColumns.map(quoteIdent);
  const mac = info.integrity ? quoteIdent(RECORD_MAC_COLUMN) : "null::text";
  return {
    info,
    sealer,
    qualified: quoteQualified(schema, table),
    selectList: [...keys.map((k, i) => `${k}::text as k${i}`), `"doc"::text as doc`, `${mac} as mac`].join(
      ", ",
    ),
    keyList: keys.join(", "),
    after: (first) => `(${keys.join(", ")}) > (${keys.map((_, i) => `$${first + i}`).join(", ")})`,
    keyMatch: (first) => keys.map((k, i) => `${k} = $${first + i}`).join(" and "),
  };
}

/** The key values of a scanned row, as text. */
export function rowKey(row: Record<string, unknown>, count: number): string[] {
  return Array.from({ length: count }, (_, i) => row[`k${i}`] as string);
}

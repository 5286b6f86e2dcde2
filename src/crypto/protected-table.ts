import type pg from "pg";
import { UsageError } from "../errors.ts";
import { docPathExpression } from "../documents/document-table.ts";
import { contentHash } from "../documents/row-builder.ts";
import { quoteIdent, quoteQualified } from "../pg/quote.ts";
import { fitIdentifier } from "../schema/naming.ts";
import { canonicalSessionSettings, canonicalSql, describeTargetTable } from "../verify/target-side.ts";
import { ColumnSealer } from "./column-sealer.ts";
import { DecryptionError, EncryptionKeyError } from "./crypto-errors.ts";
import { DocumentSealer } from "./document-sealer.ts";
import { type EncryptedTableInfo, readEncryptedTable } from "./encryption-registry.ts";
import type { Keyring } from "./keyring.ts";
import { checkRecordMac, RECORD_MAC_COLUMN } from "./record-mac.ts";

/** A problem found in one row: a MAC that does not check, or an encrypted field/column that does not open. */
export interface RowProblem {
  problem:
    | `mac_${"missing" | "malformed" | "unknown_key" | "mismatch"}`
    | "decrypt_failed"
    | "unknown_key"
    | "not_encrypted";
  /** The encrypted field (JSON pointer) or column concerned. */
  pointer?: string;
}

/**
 * A table with encrypted fields (a document table) or encrypted columns (a relational table) and
 * perhaps record MACs, as verify --integrity and keys rotate read it: one face for both kinds, so that
 * the scan, the batches, the locks and the results are one code path (verify-integrity.ts,
 * rotate-keys.ts) and only what a row is differs.
 */
export interface ProtectedTable {
  info: EncryptedTableInfo;
  kind: "document" | "columns";
  qualified: string;
  /** `select` list: k0..kn (key columns as text), then what `check` and `rotate` read. */
  selectList: string;
  keyList: string;
  /** `(k1, k2) > ($1, $2)` with parameters from `first`. */
  after(first: number): string;
  keyMatch(first: number): string;
  /** Session settings each reading transaction needs (canonical text output for relational rows). */
  settings: Record<string, string>;
  /** SQL conditions: the row holds something under another key id than `$param` (the active one). */
  stale(param: string): string[];
  /** The row's problems; its MAC's key id ("none" without one) when MACs are kept. */
  check(row: Record<string, unknown>, key: readonly string[]): { problems: RowProblem[]; macKeyId?: string };
  /**
   * The row moved to the active key: the SET list and its values (parameters from $1), or the problem
   * that makes rotating it unsafe (re-sealing a changed row would launder the change).
   */
  rotate(
    row: Record<string, unknown>,
    key: readonly string[],
  ): { sets: string[]; values: unknown[] } | { refused: RowProblem };
}

/** What pgshift.encrypted_tables says of `schema.table`, ready to scan; a clear error when nothing. */
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
      `${schema}.${table} has no encrypted fields, encrypted columns or record MACs on record (pgshift.encrypted_tables); import it with --encrypt, --encrypt-columns or --integrity first`,
      { schema, table },
    );
  if (info.keyColumns.length === 0)
    throw new UsageError(
      `${schema}.${table} has no key columns; integrity checks and rotation need --key at import`,
    );
  const keys = info.keyColumns.map(quoteIdent);
  const base = {
    info,
    qualified: quoteQualified(schema, table),
    keyList: keys.join(", "),
    after: (first: number) => `(${keys.join(", ")}) > (${keys.map((_, i) => `$${first + i}`).join(", ")})`,
    keyMatch: (first: number) => keys.map((k, i) => `${k} = $${first + i}`).join(" and "),
  };
  const mac = info.integrity ? quoteIdent(RECORD_MAC_COLUMN) : "null::text";
  const macStale = (param: string) =>
    info.integrity
      ? [`coalesce(split_part(${quoteIdent(RECORD_MAC_COLUMN)}, ':', 1), ${param}) <> ${param}`]
      : [];
  const macCheck = (keyTexts: readonly string[], text: string, stored: unknown) => {
    const check = checkRecordMac(keyring, keyTexts, text, stored as string | null);
    const macKeyId = typeof stored === "string" ? stored.split(":")[0]! : "none";
    return { problem: check === "ok" ? undefined : (`mac_${check}` as const), macKeyId };
  };
  const refusedBy = (error: unknown, pointer?: string): { refused: RowProblem } => {
    if (!(error instanceof DecryptionError) && !(error instanceof EncryptionKeyError)) throw error;
    return {
      refused: {
        problem: error instanceof DecryptionError ? "decrypt_failed" : "unknown_key",
        pointer: String(error.details.pointer ?? pointer ?? ""),
      },
    };
  };

  if (info.encryptedColumns.length === 0) {
    const sealer = DocumentSealer.from({
      keyring,
      encryptedPaths: info.encryptedPaths,
      blindIndexPaths: info.blindIndexPaths,
      integrity: info.integrity,
    })!;
    return {
      ...base,
      kind: "document",
      settings: {},
      selectList: [...keys.map((k, i) => `${k}::text as k${i}`), `"doc"::text as doc`, `${mac} as mac`].join(
        ", ",
      ),
      stale: (param) => [
        ...sealer.paths.map(
          (p) => `coalesce(${docPathExpression("doc", [...p.path, "kid"])}, ${param}) <> ${param}`,
        ),
        ...macStale(param),
      ],
      check(row, key) {
        const problems: RowProblem[] = [];
        let macKeyId: string | undefined;
        if (info.integrity) {
          const checked = macCheck(key, row.doc as string, row.mac);
          if (checked.problem) problems.push({ problem: checked.problem });
          macKeyId = checked.macKeyId;
        }
        for (const field of sealer.fieldProblems(JSON.parse(row.doc as string)))
          problems.push({ problem: field.problem, pointer: field.pointer });
        return { problems, ...(macKeyId ? { macKeyId } : {}) };
      },
      rotate(row, key) {
        if (info.integrity) {
          const checked = macCheck(key, row.doc as string, row.mac);
          if (checked.problem) return { refused: { problem: checked.problem } };
        }
        let text: string;
        try {
          text = sealer.reseal(row.doc as string).text;
        } catch (error) {
          return refusedBy(error);
        }
        const values: unknown[] = [text, contentHash(text)];
        const sets = [`"doc" = $1::jsonb`, `"content_hash" = $2`];
        if (info.integrity) {
          values.push(sealer.mac(key, JSON.parse(text), text));
          sets.push(`${quoteIdent(RECORD_MAC_COLUMN)} = $3`);
        }
        return { sets, values };
      },
    };
  }

  // A relational table: every column's canonical text is read (the MAC covers the whole row).
  const described = await describeTargetTable(pool, schema, table);
  if (!described)
    throw new UsageError(`${schema}.${table} is recorded in pgshift.encrypted_tables but does not exist`, {
      schema,
      table,
    });
  const columns = described.filter((c) => c.name !== RECORD_MAC_COLUMN);
  const names = columns.map((c) => c.name);
  for (const column of info.encryptedColumns)
    if (!names.includes(column.name))
      throw new UsageError(`${schema}.${table} has no column ${column.name}, recorded as encrypted`);
  const sealer = new ColumnSealer(
    keyring,
    table,
    names,
    info.encryptedColumns,
    info.keyColumns,
    info.integrity,
  );
  const fieldsOf = (row: Record<string, unknown>) =>
    names.map((_, i) => (row[`c${i}`] ?? null) as string | null);
  return {
    ...base,
    kind: "columns",
    settings: canonicalSessionSettings,
    selectList: [
      ...info.keyColumns.map((k, i) => {
        const kind = columns.find((c) => c.name === k)?.kind ?? "other";
        return `${canonicalSql(kind, k)} as k${i}`;
      }),
      ...columns.map((c, i) => `${canonicalSql(c.kind, c.name)} as c${i}`),
      `${mac} as mac`,
    ].join(", "),
    stale: (param) => [
      ...info.encryptedColumns.map((c) => `coalesce(${quoteIdent(c.name)} ->> 'kid', ${param}) <> ${param}`),
      ...macStale(param),
    ],
    check(row, key) {
      const stored = fieldsOf(row);
      const problems: RowProblem[] = [];
      let macKeyId: string | undefined;
      if (info.integrity) {
        const checked = macCheck(key, sealer.macText(stored), row.mac);
        if (checked.problem) problems.push({ problem: checked.problem });
        macKeyId = checked.macKeyId;
      }
      for (const field of sealer.fieldProblems(stored))
        problems.push({ problem: field.problem, pointer: field.pointer });
      return { problems, ...(macKeyId ? { macKeyId } : {}) };
    },
    rotate(row, key) {
      const stored = fieldsOf(row);
      if (info.integrity) {
        const checked = macCheck(key, sealer.macText(stored), row.mac);
        if (checked.problem) return { refused: { problem: checked.problem } };
      }
      let resealed: { fields: (string | null)[]; changed: number[] };
      try {
        resealed = sealer.reseal(stored);
      } catch (error) {
        return refusedBy(error);
      }
      const sets: string[] = [];
      const values: unknown[] = [];
      for (const which of resealed.changed) {
        values.push(resealed.fields[sealer.positionOf(which)]);
        sets.push(`${quoteIdent(info.encryptedColumns[which]!.name)} = $${values.length}::jsonb`);
      }
      if (info.integrity) {
        values.push(sealer.mac(resealed.fields));
        sets.push(`${quoteIdent(RECORD_MAC_COLUMN)} = $${values.length}`);
      }
      return { sets, values };
    },
  };
}

/** The key values of a scanned row, as text. */
export function rowKey(row: Record<string, unknown>, count: number): string[] {
  return Array.from({ length: count }, (_, i) => row[`k${i}`] as string);
}

import { UsageError } from "../errors.ts";
import { quoteIdent } from "../pg/quote.ts";
import type { SqliteTable } from "../sources/sqlite/sqlite-catalog.ts";
import { tokenizeSqlite } from "../sources/sqlite/sqlite-tokens.ts";
import { followedByParen } from "./expression.ts";

/**
 * Column-level encryption in the import plan (docs/encryption.md, "Encrypted columns"). An encrypted
 * column is created as `jsonb` and holds, per non-NULL value, the same AES-256-GCM envelope as an
 * encrypted document field; its planned type is kept as `encrypted.originalType` (and in
 * pgshift.encrypted_tables) so that a key holder reads the value back in that type. Both are type
 * decisions the plan reports. Columns whose plaintext the database must compare are refused: keys,
 * foreign keys, UNIQUE, indexed or CHECKed columns (PostgreSQL cannot compare ciphertexts).
 */
export interface ColumnEncryptionOptions {
  /** "table.column" by source names (case-insensitive). */
  columns: readonly string[];
  /** Encrypted "table.column"s that also get a blind index (an expression index on the envelope's `bi`). */
  blindIndex?: readonly string[];
  /** A keyed record MAC (`record_mac`) on every table with an encrypted column. */
  integrity?: boolean;
}

export interface EncryptedColumnPlan {
  /** The PostgreSQL type the column would have had ("varchar(80)", "bigint"): what decrypted values are. */
  originalType: string;
  blindIndex: boolean;
}

/** The column a table with record MACs gets (after the source's columns). */
export const RECORD_MAC_COLUMN_NAME = "record_mac";

/** What buildImportPlan needs to mark; kept structural so that plan.ts stays the owner of its types. */
interface MarkableColumn {
  sourceName: string;
  targetName: string;
  pgType: string;
  default?: string;
  sourceDefault?: string;
  nocase: boolean;
  identity: boolean;
  encrypted?: EncryptedColumnPlan;
}

interface MarkableTable {
  sourceName: string;
  targetName: string;
  columns: MarkableColumn[];
  primaryKey: string[];
  recordMac?: boolean;
  indexes: {
    sourceName: string;
    targetName: string;
    kind: "primary-key" | "unique" | "index";
    sql: string;
  }[];
}

interface Note {
  object: string;
  kind: string;
  message: string;
}

/** "table.column" split at its last dot (table names may hold dots; column names rarely do). */
export function parseColumnSpec(spec: string, flag: string): { table: string; column: string } {
  const at = spec.lastIndexOf(".");
  if (at <= 0 || at === spec.length - 1)
    throw new UsageError(`${flag} "${spec}": name a column as TABLE.COLUMN, like patients.ssn`);
  return { table: spec.slice(0, at), column: spec.slice(at + 1) };
}

/** Source column names an SQLite expression refers to, lower-cased (functions and keywords aside). */
function referencedNames(sql: string): Set<string> {
  const tokens = tokenizeSqlite(sql);
  const names = new Set<string>();
  tokens.forEach((t, i) => {
    if ((t.kind === "ident" || t.kind === "quoted") && !followedByParen(tokens, i))
      names.add(t.value.toLowerCase());
  });
  return names;
}

/** Why `column` of `table` cannot be encrypted, or undefined. */
function refusal(table: SqliteTable, column: string, all: readonly SqliteTable[]): string | undefined {
  const name = column.toLowerCase();
  if (table.primaryKey.some((c) => c.toLowerCase() === name))
    return "it is (part of) the primary key: rows are found, joined and rotated by it";
  for (const index of table.indexes) {
    const uses =
      index.columns.some(
        (c) =>
          c.column?.toLowerCase() === name ||
          (c.column === null && c.expression !== undefined && referencedNames(c.expression).has(name)),
      ) ||
      (index.where !== undefined && referencedNames(index.where).has(name));
    if (!uses) continue;
    if (index.origin === "pk") return "it is (part of) the primary key";
    if (index.unique)
      return `it is in UNIQUE ${index.origin === "u" ? "constraint" : "index"} ${index.name}: PostgreSQL cannot tell equal plaintexts from their ciphertexts (random IVs); a blind index (--blind-index) answers equality lookups, not uniqueness`;
    return `index ${index.name} orders or filters by it: an index over ciphertext orders nothing; drop the index, or use --blind-index for equality lookups`;
  }
  for (const fk of table.foreignKeys)
    if (fk.columns.some((c) => c.toLowerCase() === name))
      return `it is in a FOREIGN KEY to ${fk.referencedTable}: PostgreSQL compares the plaintexts to check it`;
  for (const other of all)
    for (const fk of other.foreignKeys) {
      if (fk.referencedTable.toLowerCase() !== table.name.toLowerCase()) continue;
      const referenced = fk.referencedColumns.length ? fk.referencedColumns : table.primaryKey;
      if (referenced.some((c) => c.toLowerCase() === name))
        return `a FOREIGN KEY of ${other.name} refers to it`;
    }
  for (const check of table.checks)
    if (referencedNames(check.expression).has(name))
      return `CHECK (${check.expression}) reads it: PostgreSQL cannot evaluate it on ciphertext`;
  const source = table.columns.find((c) => c.name.toLowerCase() === name);
  if (source?.generated) return `it is a ${source.generated} generated column (computed from plaintext)`;
  return undefined;
}

/**
 * Marks the encrypted columns of the planned tables (after the foreign keys settled the types, before
 * the DDL is written): type jsonb, no DEFAULT, no collation, reported; a blind index per --blind-index
 * column; `recordMac` with integrity. Throws UsageError naming the column and the reason when a column
 * is unknown or cannot be encrypted.
 */
export function markEncryptedColumns(
  options: ColumnEncryptionOptions,
  sources: readonly SqliteTable[],
  tables: MarkableTable[],
  notes: { push(note: Note & { kind: "type" }): unknown },
  allocate: (wanted: string) => string,
  createBlindIndexSql: (table: MarkableTable, indexName: string, column: string) => string,
): void {
  const blind = new Set<string>();
  for (const spec of options.blindIndex ?? []) {
    const { table, column } = parseColumnSpec(spec, "--blind-index");
    const key = `${table.toLowerCase()}\u0000${column.toLowerCase()}`;
    if (
      !options.columns.some((c) => {
        const s = parseColumnSpec(c, "--encrypt-columns");
        return `${s.table.toLowerCase()}\u0000${s.column.toLowerCase()}` === key;
      })
    )
      throw new UsageError(
        `--blind-index ${spec}: a blind index is for an encrypted column; add it to --encrypt-columns`,
      );
    blind.add(key);
  }
  const marked = new Set<MarkableTable>();
  for (const spec of options.columns) {
    const { table: tableName, column: columnName } = parseColumnSpec(spec, "--encrypt-columns");
    const source = sources.find((t) => t.name.toLowerCase() === tableName.toLowerCase());
    const table = tables.find((t) => t.sourceName === source?.name);
    if (!source || !table)
      throw new UsageError(
        `--encrypt-columns ${spec}: no table ${tableName} is imported; the tables are: ${tables.map((t) => t.sourceName).join(", ")}`,
      );
    const column = table.columns.find((c) => c.sourceName.toLowerCase() === columnName.toLowerCase());
    if (!column)
      throw new UsageError(
        `--encrypt-columns ${spec}: table ${source.name} has no column ${columnName}; its columns are: ${table.columns.map((c) => c.sourceName).join(", ")}`,
      );
    if (column.encrypted) continue;
    const why = refusal(source, column.sourceName, sources);
    if (why)
      throw new UsageError(
        `--encrypt-columns ${spec}: ${source.name}.${column.sourceName} cannot be encrypted: ${why}`,
        { table: source.name, column: column.sourceName },
      );
    if (table.primaryKey.length === 0)
      throw new UsageError(
        `--encrypt-columns ${spec}: table ${source.name} has no primary key; integrity checks and key rotation find rows by it (give the table one in a copy of the database)`,
        { table: source.name },
      );
    if (table.columns.some((c) => c.targetName === RECORD_MAC_COLUMN_NAME) && options.integrity)
      throw new UsageError(
        `--integrity: table ${source.name} already has a column ${RECORD_MAC_COLUMN_NAME}, where the record MACs would go; rename it in a copy of the database`,
      );
    const blindIndex = blind.has(`${tableName.toLowerCase()}\u0000${columnName.toLowerCase()}`);
    const dropped: string[] = [];
    if (column.default !== undefined || column.sourceDefault !== undefined)
      dropped.push(
        `its DEFAULT ${column.sourceDefault ?? column.default} is dropped (a default would store plaintext)`,
      );
    if (column.nocase) dropped.push("COLLATE NOCASE no longer applies (the column holds ciphertext)");
    column.encrypted = { originalType: column.pgType, blindIndex };
    notes.push({
      object: `${source.name}.${column.sourceName}`,
      kind: "type",
      message: `encrypted: ${column.pgType} became jsonb holding an AES-256-GCM envelope per value (NULL stays NULL); pgshift.encrypted_tables records ${column.pgType} so that key holders read the values back in it${blindIndex ? "; equality lookups through its blind index" : ""}${dropped.length ? `; ${dropped.join("; ")}` : ""}`,
    });
    column.pgType = "jsonb";
    delete column.default;
    column.nocase = false;
    if (blindIndex) {
      const name = allocate(`${table.targetName}_${column.targetName}_bi`);
      table.indexes.push({
        sourceName: `blind index of ${column.sourceName}`,
        targetName: name,
        kind: "index",
        sql: createBlindIndexSql(table, name, column.targetName),
      });
    }
    marked.add(table);
  }
  if (options.integrity) for (const table of marked) table.recordMac = true;
}

/** The blind index's expression: the envelope's `bi` member. */
export function blindIndexTerm(column: string): string {
  return `(${quoteIdent(column)} ->> 'bi')`;
}

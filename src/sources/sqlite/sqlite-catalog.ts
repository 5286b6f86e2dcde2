import type Database from "better-sqlite3";
import { quoteSqlite as q } from "./sqlite-rows.ts";
import {
  isKeyword,
  matchingParen,
  type SqliteToken,
  splitTopLevel,
  textOf,
  tokenizeSqlite,
} from "./sqlite-tokens.ts";

/** One column as SQLite declares it. */
export interface SqliteColumn {
  name: string;
  /** The declared type as written (may be empty: SQLite allows columns without a type). */
  declaredType: string;
  notNull: boolean;
  /** The DEFAULT clause's expression text as SQLite keeps it, or null. */
  defaultSql: string | null;
  /** 1-based position in the primary key, 0 when not part of it. */
  primaryKeyPosition: number;
  /** COLLATE clause on the column (e.g. "NOCASE"), upper-cased; undefined for the default BINARY. */
  collation?: string;
  /** Generated column: "virtual" or "stored". */
  generated?: "virtual" | "stored";
}

export interface SqliteIndexColumn {
  /** Column name, or null for an expression. */
  column: string | null;
  /** The expression's SQLite text when `column` is null. */
  expression?: string;
  descending: boolean;
  /** Collation when not BINARY, upper-cased. */
  collation?: string;
}

export interface SqliteIndex {
  name: string;
  unique: boolean;
  /** "c" CREATE INDEX, "u" UNIQUE constraint, "pk" PRIMARY KEY. */
  origin: "c" | "u" | "pk";
  columns: SqliteIndexColumn[];
  /** The partial index's WHERE expression (SQLite text). */
  where?: string;
  sql: string | null;
  /** For a UNIQUE constraint (origin "u"): its CONSTRAINT name, when one was given. */
  constraintName?: string;
}

export type ForeignKeyAction = "NO ACTION" | "RESTRICT" | "SET NULL" | "SET DEFAULT" | "CASCADE";

export interface SqliteForeignKey {
  columns: string[];
  referencedTable: string;
  /** Empty when the FK names no columns (it then refers to the referenced table's primary key). */
  referencedColumns: string[];
  onUpdate: ForeignKeyAction;
  onDelete: ForeignKeyAction;
  /** DEFERRABLE as written (SQLite only defers with INITIALLY DEFERRED; PostgreSQL keeps both). */
  deferrable: boolean;
  /** INITIALLY DEFERRED. */
  deferred: boolean;
  /** CONSTRAINT name, when one was given. */
  name?: string;
}

export interface SqliteCheck {
  /** CONSTRAINT name, when one was given. */
  name?: string;
  /** The expression inside CHECK(...), SQLite text. */
  expression: string;
}

export interface SqliteTable {
  name: string;
  columns: SqliteColumn[];
  /** Primary key column names in key order (empty: no declared key). */
  primaryKey: string[];
  /** The primary key's CONSTRAINT name, when one was given. */
  primaryKeyName?: string;
  withoutRowid: boolean;
  strict: boolean;
  /** The INTEGER PRIMARY KEY column, an alias of the rowid. */
  rowidAlias?: string;
  autoincrement: boolean;
  /** The highest value sqlite_sequence recorded (AUTOINCREMENT tables). */
  sequenceValue?: bigint;
  checks: SqliteCheck[];
  indexes: SqliteIndex[];
  foreignKeys: SqliteForeignKey[];
  sql: string;
}

export interface SqliteView {
  name: string;
  /** The full CREATE VIEW statement. */
  sql: string;
  /** The SELECT part. */
  selectSql: string;
}

export interface SqliteTrigger {
  name: string;
  /** The table (or view) it is on. */
  table: string;
  /** The full CREATE TRIGGER statement. */
  sql: string;
}

export interface SqliteCatalog {
  tables: SqliteTable[];
  views: SqliteView[];
  /** Translated into PL/pgSQL where their form allows (schema/trigger-translation.ts). */
  triggers: SqliteTrigger[];
  /** Objects not imported, with the reason (virtual tables, their shadow tables). */
  skipped: { name: string; type: string; reason: string }[];
}

interface SchemaRow {
  type: string;
  name: string;
  tbl_name: string;
  sql: string | null;
}

/** Reads every table, view and index of an open SQLite database. */
export function readSqliteCatalog(db: Database.Database): SqliteCatalog {
  const objects = db
    .prepare("select type, name, tbl_name, sql from sqlite_schema order by rowid")
    .all() as SchemaRow[];
  const tableList = new Map<string, { wr: number; strict: number; type: string }>();
  for (const row of db.prepare("pragma main.table_list").all() as {
    name: string;
    type: string;
    wr: number;
    strict: number;
  }[]) {
    tableList.set(row.name, row);
  }
  const hasSequence = objects.some((o) => o.type === "table" && o.name === "sqlite_sequence");
  const sequences = new Map<string, bigint>();
  if (hasSequence) {
    const stmt = db.prepare("select name, seq from sqlite_sequence").safeIntegers(true);
    for (const row of stmt.all() as { name: string; seq: bigint }[]) sequences.set(row.name, row.seq);
  }
  const catalog: SqliteCatalog = { tables: [], views: [], triggers: [], skipped: [] };
  const virtualTables = objects.filter(
    (o) => o.type === "table" && /^\s*create\s+virtual/i.test(o.sql ?? ""),
  );
  for (const object of objects) {
    if (object.name.startsWith("sqlite_")) continue;
    if (object.type === "view") {
      catalog.views.push({
        name: object.name,
        sql: object.sql ?? "",
        selectSql: viewSelect(object.sql ?? ""),
      });
      continue;
    }
    if (object.type === "trigger") {
      catalog.triggers.push({ name: object.name, table: object.tbl_name, sql: object.sql ?? "" });
      continue;
    }
    if (object.type !== "table") continue;
    if (virtualTables.includes(object)) {
      catalog.skipped.push({
        name: object.name,
        type: "virtual table",
        reason: "virtual tables (FTS, R*Tree...) are not imported",
      });
      continue;
    }
    const shadowOf = virtualTables.find((v) => object.name.startsWith(`${v.name}_`));
    if (shadowOf) {
      catalog.skipped.push({
        name: object.name,
        type: "shadow table",
        reason: `internal table of virtual table ${shadowOf.name}`,
      });
      continue;
    }
    catalog.tables.push(readTable(db, object, tableList.get(object.name), sequences.get(object.name)));
  }
  return catalog;
}

function readTable(
  db: Database.Database,
  object: SchemaRow,
  listed: { wr: number; strict: number } | undefined,
  sequenceValue: bigint | undefined,
): SqliteTable {
  const sql = object.sql ?? "";
  const parsed = parseCreateTable(sql);
  const info = db.prepare(`pragma main.table_xinfo(${q(object.name)})`).all() as {
    name: string;
    type: string;
    notnull: number;
    dflt_value: string | null;
    pk: number;
    hidden: number;
  }[];
  const columns: SqliteColumn[] = info
    .filter((c) => c.hidden === 0 || c.hidden === 2 || c.hidden === 3)
    .map((c) => {
      const column: SqliteColumn = {
        name: c.name,
        declaredType: c.type,
        notNull: c.notnull === 1,
        defaultSql: c.dflt_value,
        primaryKeyPosition: c.pk,
      };
      const collation = parsed.collations.get(c.name.toLowerCase());
      if (collation && collation !== "BINARY") column.collation = collation;
      if (c.hidden === 2) column.generated = "virtual";
      if (c.hidden === 3) column.generated = "stored";
      return column;
    });
  const primaryKey = columns
    .filter((c) => c.primaryKeyPosition > 0)
    .sort((a, b) => a.primaryKeyPosition - b.primaryKeyPosition)
    .map((c) => c.name);
  const withoutRowid = listed ? listed.wr === 1 : parsed.withoutRowid;
  const table: SqliteTable = {
    name: object.name,
    columns,
    primaryKey,
    withoutRowid,
    strict: listed ? listed.strict === 1 : false,
    autoincrement: parsed.autoincrement,
    checks: parsed.checks,
    indexes: readIndexes(db, object.name, parsed.uniques),
    foreignKeys: withDeclaredDetails(readForeignKeys(db, object.name), parsed.foreignKeys),
    sql,
  };
  if (parsed.primaryKeyName) table.primaryKeyName = parsed.primaryKeyName;
  const alias = withoutRowid ? undefined : rowidAliasColumn(columns, parsed);
  if (alias !== undefined) table.rowidAlias = alias;
  if (sequenceValue !== undefined) table.sequenceValue = sequenceValue;
  return table;
}

/**
 * SQLite's rule for a rowid table: a sole primary key column declared INTEGER (and not DESC) is an alias
 * of the rowid. `columns` are the table's, with their primary key positions (0: not in the key).
 */
export function rowidAliasColumn(
  columns: readonly { name: string; declaredType: string; primaryKeyPosition: number }[],
  parsed: Pick<ParsedCreateTable, "descendingPrimaryKey">,
): string | undefined {
  const key = columns.filter((c) => c.primaryKeyPosition > 0);
  return key.length === 1 && key[0]!.declaredType.toUpperCase() === "INTEGER" && !parsed.descendingPrimaryKey
    ? key[0]!.name
    : undefined;
}

function readIndexes(
  db: Database.Database,
  table: string,
  uniques: readonly DeclaredUnique[] = [],
): SqliteIndex[] {
  const list = db.prepare(`pragma main.index_list(${q(table)})`).all() as {
    name: string;
    unique: number;
    origin: "c" | "u" | "pk";
    partial: number;
  }[];
  const indexes: SqliteIndex[] = [];
  for (const entry of list.reverse()) {
    const xinfo = db.prepare(`pragma main.index_xinfo(${q(entry.name)})`).all() as {
      seqno: number;
      cid: number;
      name: string | null;
      desc: number;
      coll: string;
      key: number;
    }[];
    const sqlRow = db
      .prepare("select sql from sqlite_schema where type = 'index' and name = ?")
      .get(entry.name) as { sql: string | null } | undefined;
    const sql = sqlRow?.sql ?? null;
    const parsed = sql ? parseCreateIndex(sql) : undefined;
    const keys = xinfo.filter((x) => x.key === 1).sort((a, b) => a.seqno - b.seqno);
    const columns: SqliteIndexColumn[] = keys.map((k, i) => {
      const column: SqliteIndexColumn = {
        column: k.cid === -2 ? null : k.name,
        descending: k.desc === 1,
      };
      if (k.cid === -2) column.expression = parsed?.terms[i] ?? "";
      if (k.cid === -1) column.column = "rowid";
      if (k.coll && k.coll.toUpperCase() !== "BINARY") column.collation = k.coll.toUpperCase();
      return column;
    });
    const index: SqliteIndex = {
      name: entry.name,
      unique: entry.unique === 1,
      origin: entry.origin,
      columns,
      sql,
    };
    if (entry.partial === 1 && parsed?.where) index.where = parsed.where;
    if (entry.origin === "u") {
      const named = uniques.find((u) =>
        sameNames(
          u.columns,
          columns.map((c) => c.column ?? ""),
        ),
      );
      if (named) index.constraintName = named.name;
    }
    indexes.push(index);
  }
  return indexes;
}

function readForeignKeys(db: Database.Database, table: string): SqliteForeignKey[] {
  const rows = db.prepare(`pragma main.foreign_key_list(${q(table)})`).all() as {
    id: number;
    seq: number;
    table: string;
    from: string;
    to: string | null;
    on_update: ForeignKeyAction;
    on_delete: ForeignKeyAction;
  }[];
  const byId = new Map<number, SqliteForeignKey>();
  for (const row of rows.sort((a, b) => a.id - b.id || a.seq - b.seq)) {
    let fk = byId.get(row.id);
    if (!fk) {
      fk = {
        columns: [],
        referencedTable: row.table,
        referencedColumns: [],
        onUpdate: row.on_update,
        onDelete: row.on_delete,
        deferrable: false,
        deferred: false,
      };
      byId.set(row.id, fk);
    }
    fk.columns.push(row.from);
    if (row.to !== null) fk.referencedColumns.push(row.to);
  }
  return [...byId.values()];
}

/**
 * PRAGMA foreign_key_list reports neither CONSTRAINT names nor DEFERRABLE clauses: they come from the
 * CREATE TABLE text. The PRAGMA lists foreign keys in reverse order of declaration; each is matched
 * to its declaration by position when the columns agree, else by columns and referenced table.
 */
function withDeclaredDetails(
  foreignKeys: SqliteForeignKey[],
  declared: readonly DeclaredForeignKey[],
): SqliteForeignKey[] {
  const inPragmaOrder = [...declared].reverse();
  const used = new Set<DeclaredForeignKey>();
  const matches = (fk: SqliteForeignKey, d: DeclaredForeignKey) =>
    !used.has(d) &&
    sameNames(fk.columns, d.columns) &&
    fk.referencedTable.toLowerCase() === d.referencedTable.toLowerCase();
  foreignKeys.forEach((fk, i) => {
    const atPosition = inPragmaOrder.length === foreignKeys.length ? inPragmaOrder[i] : undefined;
    const found =
      atPosition && matches(fk, atPosition) ? atPosition : inPragmaOrder.find((d) => matches(fk, d));
    if (!found) return;
    used.add(found);
    fk.deferrable = found.deferrable;
    fk.deferred = found.deferred;
    if (found.name !== undefined) fk.name = found.name;
  });
  return foreignKeys;
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x.toLowerCase() === b[i]!.toLowerCase());
}

interface DeclaredForeignKey {
  name?: string;
  columns: string[];
  referencedTable: string;
  deferrable: boolean;
  deferred: boolean;
}

interface DeclaredUnique {
  name: string;
  columns: string[];
}

interface ParsedCreateTable {
  /** Foreign keys in declaration order, with what PRAGMA foreign_key_list leaves out. */
  foreignKeys: DeclaredForeignKey[];
  /** Named UNIQUE constraints. */
  uniques: DeclaredUnique[];
  primaryKeyName?: string;
  checks: SqliteCheck[];
  collations: Map<string, string>;
  autoincrement: boolean;
  withoutRowid: boolean;
  descendingPrimaryKey: boolean;
}

const TABLE_CONSTRAINT_STARTS = ["CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN"];

/** Words that start the next column constraint: a CONSTRAINT name applies to one constraint only. */
const COLUMN_CONSTRAINT_STARTS = [
  "CONSTRAINT",
  "PRIMARY",
  "UNIQUE",
  "CHECK",
  "REFERENCES",
  "NULL",
  "DEFAULT",
  "COLLATE",
  "GENERATED",
  "AS",
];

/** Names in a parenthesized column list `(a, "b" COLLATE x ASC)`: the first token of each item. */
function columnList(part: readonly SqliteToken[], open: number): { names: string[]; end: number } {
  const end = matchingParen(part, open);
  const names = splitTopLevel(part, open + 1, end)
    .filter((item) => item.length > 0)
    .map((item) => item[0]!.value);
  return { names, end };
}

/**
 * Reads `REFERENCES table [(columns)] [ON ...] [MATCH x] [[NOT] DEFERRABLE [INITIALLY DEFERRED|IMMEDIATE]]`
 * starting at the REFERENCES token; returns the foreign key and the index of its last token.
 */
function referencesClause(
  part: readonly SqliteToken[],
  at: number,
  columns: string[],
  name: string | undefined,
): { fk: DeclaredForeignKey; end: number } {
  const fk: DeclaredForeignKey = {
    columns,
    referencedTable: part[at + 1]?.value ?? "",
    deferrable: false,
    deferred: false,
  };
  if (name !== undefined) fk.name = name;
  let i = at + 2;
  if (part[i]?.kind === "punct" && part[i]!.value === "(") i = matchingParen(part, i) + 1;
  for (; i < part.length; i++) {
    const t = part[i]!;
    if (isKeyword(t, "NOT") && isKeyword(part[i + 1], "DEFERRABLE")) {
      fk.deferrable = false;
      i++;
      continue;
    }
    if (isKeyword(t, "DEFERRABLE")) {
      fk.deferrable = true;
      continue;
    }
    if (isKeyword(t, "INITIALLY")) {
      fk.deferred = isKeyword(part[i + 1], "DEFERRED");
      i++;
      continue;
    }
    // ON DELETE/UPDATE action (one or two words: SET NULL, NO ACTION) and MATCH name: the PRAGMA
    // reports them; skipped whole so that SET NULL's NULL is not read as a NULL constraint.
    if (isKeyword(t, "ON")) {
      i += 2;
      if (isKeyword(part[i], "SET") || isKeyword(part[i], "NO")) i++;
      continue;
    }
    if (isKeyword(t, "MATCH")) {
      i++;
      continue;
    }
    if (isKeyword(t, "NOT") || COLUMN_CONSTRAINT_STARTS.some((w) => isKeyword(t, w))) break;
  }
  // Only DEFERRABLE INITIALLY DEFERRED defers in SQLite; NOT DEFERRABLE INITIALLY DEFERRED does not.
  if (!fk.deferrable) fk.deferred = false;
  return { fk, end: i - 1 };
}

/**
 * Extracts from CREATE TABLE what PRAGMAs do not report: CHECKs, column collations, AUTOINCREMENT,
 * constraint names, and the DEFERRABLE clauses of foreign keys.
 */
export function parseCreateTable(sql: string): ParsedCreateTable {
  const tokens = tokenizeSqlite(sql);
  const result: ParsedCreateTable = {
    foreignKeys: [],
    uniques: [],
    checks: [],
    collations: new Map(),
    autoincrement: false,
    withoutRowid: false,
    descendingPrimaryKey: false,
  };
  const open = tokens.findIndex((t) => t.kind === "punct" && t.value === "(");
  if (open < 0) return result;
  const close = matchingParen(tokens, open);
  const tail = tokens.slice(close + 1);
  result.withoutRowid = tail.some((t, i) => isKeyword(t, "WITHOUT") && isKeyword(tail[i + 1], "ROWID"));
  for (const part of splitTopLevel(tokens, open + 1, close)) {
    if (part.length === 0) continue;
    const first = part[0]!;
    const isTableConstraint =
      first.kind === "ident" && TABLE_CONSTRAINT_STARTS.includes(first.value.toUpperCase());
    const columnName = isTableConstraint ? undefined : first.value;
    let constraintName: string | undefined;
    for (let i = isTableConstraint ? 0 : 1; i < part.length; i++) {
      const t = part[i]!;
      if (isKeyword(t, "CONSTRAINT") && part[i + 1]) {
        constraintName = part[i + 1]!.value;
        i++;
        continue;
      }
      if (isKeyword(t, "CHECK") && part[i + 1]?.value === "(") {
        const end = matchingParen(part, i + 1);
        const check: SqliteCheck = {
          expression: textOf(sql, part, i + 2, end - 1),
        };
        if (constraintName) check.name = constraintName;
        result.checks.push(check);
        constraintName = undefined;
        i = end;
        continue;
      }
      if (isKeyword(t, "PRIMARY") && isKeyword(part[i + 1], "KEY")) {
        if (constraintName) result.primaryKeyName = constraintName;
        constraintName = undefined;
        if (isKeyword(part[i + 2], "DESC") && columnName) result.descendingPrimaryKey = true;
        i++;
        continue;
      }
      if (isKeyword(t, "UNIQUE")) {
        let columns = columnName ? [columnName] : [];
        if (!columnName && part[i + 1]?.value === "(") {
          const list = columnList(part, i + 1);
          columns = list.names;
          i = list.end;
        }
        if (constraintName) result.uniques.push({ name: constraintName, columns });
        constraintName = undefined;
        continue;
      }
      if (isKeyword(t, "FOREIGN") && isKeyword(part[i + 1], "KEY") && part[i + 2]?.value === "(") {
        const list = columnList(part, i + 2);
        if (isKeyword(part[list.end + 1], "REFERENCES")) {
          const clause = referencesClause(part, list.end + 1, list.names, constraintName);
          result.foreignKeys.push(clause.fk);
          i = clause.end;
        } else i = list.end;
        constraintName = undefined;
        continue;
      }
      if (isKeyword(t, "REFERENCES") && columnName) {
        const clause = referencesClause(part, i, [columnName], constraintName);
        result.foreignKeys.push(clause.fk);
        constraintName = undefined;
        i = clause.end;
        continue;
      }
      if (isKeyword(t, "COLLATE") && columnName && part[i + 1]) {
        result.collations.set(columnName.toLowerCase(), part[i + 1]!.value.toUpperCase());
        i++;
        continue;
      }
      if (isKeyword(t, "AUTOINCREMENT")) result.autoincrement = true;
      if (COLUMN_CONSTRAINT_STARTS.some((w) => isKeyword(t, w)) || isKeyword(t, "NOT"))
        constraintName = undefined;
      if (t.kind === "punct" && t.value === "(") i = matchingParen(part, i);
    }
  }
  return result;
}

/** The expression terms and WHERE clause of a CREATE INDEX statement, as SQLite text. */
export function parseCreateIndex(sql: string): {
  terms: string[];
  where?: string;
} {
  const tokens = tokenizeSqlite(sql);
  const open = tokens.findIndex((t) => t.kind === "punct" && t.value === "(");
  if (open < 0) return { terms: [] };
  const close = matchingParen(tokens, open);
  const terms = splitTopLevel(tokens, open + 1, close).map((part) => {
    let end = part.length - 1;
    // Drop trailing ASC/DESC and COLLATE x: PRAGMA index_xinfo reports them separately.
    if (isKeyword(part[end], "ASC") || isKeyword(part[end], "DESC")) end--;
    if (end >= 1 && isKeyword(part[end - 1], "COLLATE")) end -= 2;
    return sql.slice(part[0]!.start, part[end]!.end);
  });
  const whereAt = tokens.findIndex((t, i) => i > close && isKeyword(t, "WHERE"));
  if (whereAt < 0) return { terms };
  return {
    terms,
    where: sql.slice(tokens[whereAt + 1]!.start, tokens[tokens.length - 1]!.end).replace(/;\s*$/, ""),
  };
}

function viewSelect(sql: string): string {
  const tokens: SqliteToken[] = tokenizeSqlite(sql);
  const as = tokens.findIndex((t) => isKeyword(t, "AS"));
  if (as < 0) return sql;
  return sql.slice(tokens[as + 1]?.start ?? sql.length).replace(/;\s*$/, "");
}

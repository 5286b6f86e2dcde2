import { UsageError } from "../errors.ts";
import { quoteIdent, quoteLiteral, quoteQualified } from "../pg/quote.ts";
import { fitIdentifier } from "../schema/naming.ts";
import { columnNameForPointer, parsePointer } from "./json-pointer.ts";
import { type ColumnType, parseColumnType } from "./value-conversion.ts";
import { RECORD_MAC_COLUMN as RECORD_MAC } from "../crypto/record-mac.ts";

/**
 * The shape of an import target and the DDL for it, as pure functions with exact-string tests.
 * A document table is: key column(s), `doc jsonb not null`, extra typed columns, provenance
 * (source_file, content_hash, loaded_at). A typed table is: inferred columns + the same provenance
 * with a leading underscore (so a CSV column named "source_file" keeps its name).
 */

export interface KeySpec {
  /** JSON pointer as written: "/k_number". */
  pointer: string;
  path: string[];
  column: string;
  type: ColumnType;
}

export interface ExtraColumnSpec {
  name: string;
  pointer: string;
  path: string[];
  type: ColumnType;
}

export interface TableColumn {
  name: string;
  type: ColumnType;
  notNull: boolean;
  /** SQL default expression (only loaded_at has one: now()). */
  defaultSql?: string;
}

export type TargetKind = "documents" | "typed";

export interface TablePlan {
  schema: string;
  table: string;
  kind: TargetKind;
  /** Every column, in table order. */
  columns: TableColumn[];
  /** Primary key columns (empty: no key). */
  keyColumns: string[];
  /** Columns the loader writes (all but loaded_at). */
  loadColumns: string[];
  /** Name of the document column (documents) or undefined (typed). */
  docColumn?: string;
  provenance: { sourceFile: string; contentHash: string; loadedAt: string };
  gin: boolean;
  /** Trigram-indexed text paths (documents: paths inside doc; typed: column names as one-element paths). */
  trgmPaths: string[][];
  /** Encrypted paths with a blind index (src/crypto): a btree index on each envelope's `bi`. */
  blindIndexPaths?: string[][];
}

/** "/k_number" or "/id:bigint" -> a key column; several separated by commas make a composite key. */
export function parseKeySpecs(keys: string | readonly string[] | undefined): KeySpec[] {
  if (keys === undefined) return [];
  const list = (typeof keys === "string" ? [keys] : keys).flatMap((k) => k.split(",")).map((k) => k.trim());
  const specs = list.filter(Boolean).map((item) => {
    const { pointer, type } = splitType(item, "text");
    const path = parsePointer(pointer);
    if (path.length === 0) throw new UsageError(`--key "${item}": the key must be a field, like /id`);
    return {
      pointer,
      path,
      column: fitIdentifier(columnNameForPointer(path)),
      type,
    };
  });
  const names = new Set<string>();
  for (const spec of specs) {
    if (names.has(spec.column)) throw new UsageError(`--key names the column "${spec.column}" twice`);
    names.add(spec.column);
  }
  return specs;
}

/** "decision_date=/decision_date:date" -> an extra column filled from a path in each document. */
export function parseColumnSpec(spec: string): ExtraColumnSpec {
  const eq = spec.indexOf("=");
  if (eq <= 0)
    throw new UsageError(`--column "${spec}": write NAME=/path:type, e.g. decision_date=/decision_date:date`);
  const name = spec.slice(0, eq).trim();
  const { pointer, type } = splitType(spec.slice(eq + 1).trim(), "text");
  const path = parsePointer(pointer);
  if (path.length === 0) throw new UsageError(`--column "${spec}": the path must name a field`);
  return { name: fitIdentifier(name), pointer, path, type };
}

function splitType(item: string, fallback: ColumnType): { pointer: string; type: ColumnType } {
  const colon = item.lastIndexOf(":");
  if (colon >= 0) {
    const type = parseColumnType(item.slice(colon + 1));
    if (type) return { pointer: item.slice(0, colon), type };
    if (!item.slice(colon + 1).includes("/"))
      throw new UsageError(`"${item}": unknown type "${item.slice(colon + 1)}"`);
  }
  return { pointer: item, type: fallback };
}

/** The plan of a document table. */
export function documentTablePlan(options: {
  schema: string;
  table: string;
  keys: readonly KeySpec[];
  extraColumns: readonly ExtraColumnSpec[];
  gin: boolean;
  trgmPaths: readonly string[][];
  /** A `record_mac` column (keyed record checksum, src/crypto/record-mac.ts) after content_hash. */
  integrity?: boolean;
  blindIndexPaths?: readonly string[][];
}): TablePlan {
  const provenance = {
    sourceFile: "source_file",
    contentHash: "content_hash",
    loadedAt: "loaded_at",
  };
  const reserved = new Set(["doc", ...Object.values(provenance), ...(options.integrity ? [RECORD_MAC] : [])]);
  const columns: TableColumn[] = options.keys.map((k) => ({
    name: k.column,
    type: k.type,
    notNull: true,
  }));
  for (const key of options.keys) {
    if (reserved.has(key.column))
      throw new UsageError(
        `key column "${key.column}" clashes with a document table column; key on another path`,
      );
  }
  columns.push({ name: "doc", type: "jsonb", notNull: true });
  for (const extra of options.extraColumns) {
    if (reserved.has(extra.name) || columns.some((c) => c.name === extra.name))
      throw new UsageError(`--column "${extra.name}" clashes with another column of the table`);
    columns.push({ name: extra.name, type: extra.type, notNull: false });
  }
  columns.push(...provenanceColumns(provenance));
  // crypto hook: the MAC is loaded after content_hash (the row builder appends it last)
  if (options.integrity)
    columns.splice(columns.length - 1, 0, { name: RECORD_MAC, type: "text", notNull: false });
  return {
    schema: options.schema,
    table: options.table,
    kind: "documents",
    columns,
    keyColumns: options.keys.map((k) => k.column),
    loadColumns: columns.filter((c) => c.name !== provenance.loadedAt).map((c) => c.name),
    docColumn: "doc",
    provenance,
    gin: options.gin,
    trgmPaths: options.trgmPaths.map((p) => [...p]),
    ...(options.blindIndexPaths?.length
      ? { blindIndexPaths: options.blindIndexPaths.map((p) => [...p]) }
      : {}),
  };
}

/** Where each row came from: source file, content hash, load time (filled by the server). */
function provenanceColumns(provenance: {
  sourceFile: string;
  contentHash: string;
  loadedAt: string;
}): TableColumn[] {
  return [
    { name: provenance.sourceFile, type: "text", notNull: true },
    { name: provenance.contentHash, type: "text", notNull: true },
    { name: provenance.loadedAt, type: "timestamptz", notNull: true, defaultSql: "now()" },
  ];
}

/** The plan of a typed table from inferred columns. */
export function typedTablePlan(options: {
  schema: string;
  table: string;
  columns: readonly { name: string; type: ColumnType; nullable: boolean }[];
  keyColumns: readonly string[];
  trgmColumns: readonly string[];
}): TablePlan {
  const provenance = {
    sourceFile: "_source_file",
    contentHash: "_content_hash",
    loadedAt: "_loaded_at",
  };
  const columns: TableColumn[] = options.columns.map((c) => ({
    name: c.name,
    type: c.type,
    notNull: options.keyColumns.includes(c.name),
  }));
  columns.push(...provenanceColumns(provenance));
  return {
    schema: options.schema,
    table: options.table,
    kind: "typed",
    columns,
    keyColumns: [...options.keyColumns],
    loadColumns: columns.filter((c) => c.name !== provenance.loadedAt).map((c) => c.name),
    provenance,
    gin: false,
    trgmPaths: options.trgmColumns.map((c) => [c]),
  };
}

/** `create table` without the primary key (added after the load, which is faster). */
export function createTableSql(plan: TablePlan, tableName = plan.table, withPrimaryKey = false): string {
  const lines = plan.columns.map(
    (c) =>
      `  ${quoteIdent(c.name)} ${c.type}${c.notNull ? " not null" : ""}${c.defaultSql ? ` default ${c.defaultSql}` : ""}`,
  );
  if (withPrimaryKey && plan.keyColumns.length > 0)
    lines.push(
      `  constraint ${quoteIdent(primaryKeyName(plan.table))} primary key (${plan.keyColumns.map(quoteIdent).join(", ")})`,
    );
  return `create table ${quoteQualified(plan.schema, tableName)} (\n${lines.join(",\n")}\n)`;
}

export function primaryKeyName(table: string): string {
  return fitIdentifier(`${table}_pkey`);
}

export function primaryKeySql(plan: TablePlan, tableName: string, constraintName: string): string {
  return `alter table ${quoteQualified(plan.schema, tableName)} add constraint ${quoteIdent(constraintName)} primary key (${plan.keyColumns.map(quoteIdent).join(", ")})`;
}

/** `{"a","b"}`: a text[] literal for #>> paths, every element quoted. */
export function textArrayLiteral(path: readonly string[]): string {
  return `{${path.map((s) => `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`).join(",")}}`;
}

/** The expression a trigram index is built on; DocumentStore.search uses the same text so the index applies. */
export function docPathExpression(docColumn: string, path: readonly string[]): string {
  return `(${quoteIdent(docColumn)} #>> ${quoteLiteral(textArrayLiteral(path))})`;
}

export interface IndexDefinition {
  name: string;
  sql: string;
}

/** Secondary indexes requested for the plan: GIN (jsonb_path_ops) on doc, trigram on text paths. */
export function indexDefinitions(
  plan: TablePlan,
  tableName = plan.table,
  nameSuffix = "",
): IndexDefinition[] {
  const target = quoteQualified(plan.schema, tableName);
  const indexes: IndexDefinition[] = [];
  if (plan.gin && plan.docColumn) {
    const name = fitIdentifier(`${plan.table}_${plan.docColumn}_gin${nameSuffix}`);
    indexes.push({
      name,
      sql: `create index if not exists ${quoteIdent(name)} on ${target} using gin (${quoteIdent(plan.docColumn)} jsonb_path_ops)`,
    });
  }
  for (const path of plan.trgmPaths) {
    const name = fitIdentifier(`${plan.table}_${path.join("_")}_trgm${nameSuffix}`);
    const expression = plan.docColumn ? docPathExpression(plan.docColumn, path) : quoteIdent(path[0]!);
    indexes.push({
      name,
      sql: `create index if not exists ${quoteIdent(name)} on ${target} using gin (${expression} gin_trgm_ops)`,
    });
  }
  // crypto hook: equality lookups on an encrypted path compare the envelope's blind index
  for (const path of plan.blindIndexPaths ?? []) {
    const name = fitIdentifier(`${plan.table}_${path.join("_")}_bi${nameSuffix}`);
    indexes.push({
      name,
      sql: `create index if not exists ${quoteIdent(name)} on ${target} (${docPathExpression(plan.docColumn ?? "doc", [...path, "bi"])})`,
    });
  }
  return indexes;
}

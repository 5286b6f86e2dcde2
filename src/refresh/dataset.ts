import { readFile } from "node:fs/promises";
import { dirname, isAbsolute, resolve } from "node:path";
import { UsageError } from "../errors.ts";
import { INTERNAL_SCHEMA } from "../pg/internal-schema.ts";
import { type DatasetForeignKey, foreignKeyProblems } from "./foreign-keys.ts";

/** One table of a dataset: where its records come from and the import options it takes. */
export interface DatasetTable {
  table: string;
  /** "json:DIR", "json:FILE", "ndjson:FILE(.gz)", "csv:FILE" (a document table). */
  from: string;
  /** JSON pointer(s) of the key; needed for verification by key and for --delta. */
  key?: string | string[];
  records?: string;
  columns?: string[];
  gin?: boolean;
  trgm?: string[];
  duplicates?: "fail" | "last-wins";
}

/** A set of tables in one schema, refreshed together: they go live in the same swap. */
export interface Dataset {
  /** Name the versions are recorded under (default: the schema). */
  name: string;
  schema: string;
  tables: DatasetTable[];
  /** SQL statements returning true, run against the next version before it may go live. */
  checks: string[];
  /** References between the dataset's tables, each checked for orphans before the switch. */
  foreignKeys?: DatasetForeignKey[];
}

/** Longest schema name that leaves room for "__prev_<version>" within PostgreSQL's 63 bytes. */
const MAX_SCHEMA_BYTES = 40;
const TABLE_KEYS = new Set(["table", "from", "key", "records", "columns", "gin", "trgm", "duplicates"]);
const DATASET_KEYS = new Set(["name", "schema", "tables", "checks", "foreignKeys"]);
const FOREIGN_KEY_KEYS = new Set(["from", "pointer", "column", "to", "name"]);

/** Every problem of a dataset description, reported together (empty when valid). */
export function datasetProblems(dataset: Dataset): string[] {
  const problems: string[] = [];
  const schema = dataset.schema;
  if (!schema) problems.push("a dataset needs a schema (--schema S)");
  else if (Buffer.byteLength(schema, "utf8") > MAX_SCHEMA_BYTES)
    problems.push(`schema name "${schema}" is longer than ${MAX_SCHEMA_BYTES} bytes (room for "__prev_N")`);
  else if (schema === INTERNAL_SCHEMA || schema.startsWith("pg_") || schema === "information_schema")
    problems.push(`schema "${schema}" is reserved`);
  else if (schema.includes("__next") || schema.includes("__prev_"))
    problems.push(`schema "${schema}" holds "__next" or "__prev_", which refresh uses for its versions`);
  if (dataset.tables.length === 0) problems.push("a dataset needs at least one table");
  const seen = new Set<string>();
  for (const [i, t] of dataset.tables.entries()) {
    if (!t.table) problems.push(`tables[${i}]: "table" is required`);
    if (!t.from) problems.push(`tables[${i}]: "from" (the source) is required`);
    if (t.table && seen.has(t.table)) problems.push(`table "${t.table}" is listed twice`);
    seen.add(t.table);
  }
  problems.push(
    ...foreignKeyProblems(
      dataset.foreignKeys ?? [],
      dataset.tables.map((t) => t.table),
    ),
  );
  return problems;
}

function assertValid(dataset: Dataset): Dataset {
  const problems = datasetProblems(dataset);
  if (problems.length) throw new UsageError(`invalid dataset:\n  - ${problems.join("\n  - ")}`, { problems });
  return dataset;
}

/** A dataset of one table, as `pgshift refresh run SOURCE --schema S --table T --key /ptr` describes it. */
export function singleTableDataset(
  options: DatasetTable & {
    schema: string;
    name?: string;
    checks?: string[];
    /** References within the one table (e.g. a parent key in the document). */
    foreignKeys?: DatasetForeignKey[];
  },
): Dataset {
  const { schema, name, checks, foreignKeys, ...table } = options;
  return assertValid({
    name: name ?? schema,
    schema,
    tables: [table],
    checks: checks ?? [],
    ...(foreignKeys?.length ? { foreignKeys } : {}),
  });
}

/**
 * Reads a dataset file:
 *   { "schema": "recalls", "tables": [{ "table": "device", "from": "ndjson:device.ndjson", "key": "/id" }],
 *     "checks": ["select count(*) > 0 from device"],
 *     "foreignKeys": [{ "from": "recall", "pointer": "/k_number", "to": "device" }] }
 * Relative source paths are taken from the file's directory.
 */
export async function readDatasetFile(path: string): Promise<Dataset> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, "utf8"));
  } catch (error) {
    throw new UsageError(`cannot read dataset file ${path}: ${(error as Error).message}`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw))
    throw new UsageError(`dataset file ${path} must hold a JSON object`);
  const object = raw as Record<string, unknown>;
  const problems: string[] = [];
  for (const key of Object.keys(object)) if (!DATASET_KEYS.has(key)) problems.push(`unknown key "${key}"`);
  const tables = Array.isArray(object.tables) ? (object.tables as Record<string, unknown>[]) : [];
  if (!Array.isArray(object.tables)) problems.push(`"tables" must be an array`);
  for (const [i, t] of tables.entries())
    for (const key of Object.keys(t ?? {}))
      if (!TABLE_KEYS.has(key)) problems.push(`tables[${i}]: unknown key "${key}"`);
  const foreignKeys = object.foreignKeys;
  if (foreignKeys !== undefined && !Array.isArray(foreignKeys))
    problems.push(`"foreignKeys" must be an array`);
  for (const [i, fk] of (Array.isArray(foreignKeys) ? foreignKeys : []).entries())
    for (const key of Object.keys(fk ?? {}))
      if (!FOREIGN_KEY_KEYS.has(key)) problems.push(`foreignKeys[${i}]: unknown key "${key}"`);
  if (problems.length) throw new UsageError(`invalid dataset file ${path}:\n  - ${problems.join("\n  - ")}`);
  const base = dirname(resolve(path));
  const schema = String(object.schema ?? "");
  return assertValid({
    name: typeof object.name === "string" ? object.name : schema,
    schema,
    checks: Array.isArray(object.checks) ? object.checks.map(String) : [],
    ...(Array.isArray(foreignKeys) ? { foreignKeys: foreignKeys as DatasetForeignKey[] } : {}),
    tables: tables.map((t) => {
      const from = String(t.from ?? "");
      const colon = from.indexOf(":");
      const kind = colon > 0 ? from.slice(0, colon) : "";
      const file = colon > 0 ? from.slice(colon + 1) : from;
      return {
        ...(t as unknown as DatasetTable),
        from: kind && file && !isAbsolute(file) ? `${kind}:${resolve(base, file)}` : from,
      };
    }),
  });
}

import type pg from "pg";
import type { InternalSchemaPart } from "../pg/internal-schema.ts";

/**
 * Rows that cannot be represented in PostgreSQL are never altered silently: under
 * `--on-bad-value quarantine` they are stored here byte-exact, so that
 * rows read = rows loaded + rows quarantined, always.
 */
export const quarantinePart: InternalSchemaPart = {
  name: "quarantine",
  steps: [
    `create table pgshift.quarantine (
       id bigint generated always as identity primary key,
       run_id text not null,
       source text not null,
       target_schema text not null,
       target_table text not null,
       location text not null,
       column_name text,
       reason text not null,
       raw bytea not null,
       raw_format text not null,
       created_at timestamptz not null default now()
     );
     create index quarantine_run_idx on pgshift.quarantine (run_id, target_table)`,
  ],
};

export type BadValuePolicy = "fail" | "quarantine";

export interface QuarantineEntry {
  /** The import run this row belongs to. */
  runId: string;
  /** Source spec as the user gave it, e.g. "sqlite:app.db". */
  source: string;
  targetSchema: string;
  targetTable: string;
  /** Where in the source: "rowid 42", "file.json:/results/3", "data.ndjson:17". */
  location: string;
  /** The offending column, when one column is to blame. */
  column?: string;
  /** What is wrong, e.g. "NUL character in text". */
  reason: string;
  /** The whole source row, byte-exact. */
  raw: Uint8Array;
  /** How `raw` is encoded: "json" (a JSON text), "sqlite-row-json" (JSON with blobs as {"$blob":hex}), "csv-line", "ndjson-line". */
  rawFormat: string;
}

/** Inserts quarantined rows with bind parameters (no COPY: there are few, and each must be exact). */
export async function insertQuarantine(
  client: pg.ClientBase,
  entries: readonly QuarantineEntry[],
): Promise<number> {
  if (entries.length === 0) return 0;
  const columns = 10;
  const values: unknown[] = [];
  const tuples = entries.map((entry, i) => {
    values.push(
      entry.runId,
      entry.source,
      entry.targetSchema,
      entry.targetTable,
      entry.location,
      entry.column ?? null,
      entry.reason,
      Buffer.from(entry.raw),
      entry.rawFormat,
      new Date().toISOString(),
    );
    const base = i * columns;
    return `(${Array.from({ length: columns }, (_, j) => `$${base + j + 1}`).join(", ")})`;
  });
  const result = await client.query(
    `insert into pgshift.quarantine (run_id, source, target_schema, target_table, location, column_name, reason, raw, raw_format, created_at)
     values ${tuples.join(", ")}`,
    values,
  );
  return result.rowCount ?? 0;
}

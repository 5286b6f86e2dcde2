import pg from "pg";

export interface DocumentImportSpec {
  source: string;
  url: string;
  table: string;
  jobs: number;
  /** JSON pointer of the records inside each file's envelope. */
  records?: string;
  /** A JSON pointer to build a trigram index on, when the importer offers one. */
  searchPath?: string;
  /** Build the GIN index during the import (default true). Off where the baseline builds none. */
  gin?: boolean;
  /** JSON pointer of the key (default /k_number). */
  key?: string;
  /** Run the default command, verification included (default false: --no-verify when the build has it). */
  verify?: boolean;
}

/**
 * `pgshift import` arguments for a document source, using only flags this build's `--help` lists
 * (the document importer grows over time; a flag it lacks is left out rather than guessed).
 * `globalHelp` (`pgshift --help`) lists the options every command takes, such as `--jobs`.
 */
export function documentImportArgs(help: string, spec: DocumentImportSpec, globalHelp = ""): string[] {
  const has = (flag: string) => new RegExp(`${flag}(\\b|[ =<])`).test(`${help}\n${globalHelp}`);
  const args = ["import", spec.source, "--to", spec.url, "--json"];
  if (has("--table")) args.push("--table", spec.table);
  if (has("--key")) args.push("--key", spec.key ?? "/k_number");
  if (spec.records && has("--records")) args.push("--records", spec.records);
  // The GIN (jsonb_path_ops) index: ask for it when it is opt-in; `--no-gin` means it is the default.
  if (spec.gin !== false && has("--gin") && !has("--no-gin")) args.push("--gin");
  if (spec.searchPath) {
    if (has("--trgm")) args.push("--trgm", spec.searchPath);
    else if (has("--trigram")) args.push("--trigram", spec.searchPath);
  }
  // Like the baselines (psql \copy, INSERT), time the load itself: verification is measured on its own.
  if (spec.verify !== true && has("--no-verify")) args.push("--no-verify");
  if (has("--jobs")) args.push("--jobs", String(spec.jobs));
  return args;
}

export async function primaryKeyColumns(url: string, schema: string, table: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const result = await client.query<{ column: string }>(
      `select a.attname as column
         from pg_index i
         join pg_class c on c.oid = i.indrelid
         join pg_namespace n on n.oid = c.relnamespace
         join pg_attribute a on a.attrelid = c.oid and a.attnum = any(i.indkey)
        where i.indisprimary and n.nspname = $1 and c.relname = $2
        order by array_position(i.indkey::int2[], a.attnum)`,
      [schema, table],
    );
    return result.rows.map((row) => row.column);
  } finally {
    await client.end();
  }
}

/** The table an import reports it wrote (its JSON result's target), else the one asked for. */
export function importedTable(report: Record<string, unknown> | undefined, asked: string): string {
  const target = report?.target as { table?: unknown } | undefined;
  return typeof target?.table === "string" ? target.table : asked;
}

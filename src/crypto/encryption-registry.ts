import type pg from "pg";
import { UsageError } from "../errors.ts";
import type { InternalSchemaPart } from "../pg/internal-schema.ts";
import type { EncryptedColumn } from "./column-sealer.ts";
import type { DocumentSealer } from "./document-sealer.ts";

/**
 * Which document tables have encrypted fields or record MACs, and where: written by the import, read by
 * DocumentStore (so that a store without keys refuses to hand out ciphertext), `verify --integrity`
 * and `keys rotate`. It holds names only, no key material; every role may read it (the paths are
 * metadata the table's own rows show anyway), so that a reader without keys is told, not misled.
 */
export const encryptionPart: InternalSchemaPart = {
  name: "encryption",
  steps: [
    `create table pgshift.encrypted_tables (
       schema_name text not null,
       table_name text not null,
       key_columns text[] not null,
       encrypted_paths text[] not null,
       blind_index_paths text[] not null,
       integrity boolean not null,
       updated_at timestamptz not null default now(),
       primary key (schema_name, table_name)
     );
     grant usage on schema pgshift to public;
     grant select on pgshift.encrypted_tables to public`,
    // encrypted columns of relational tables (SQLite imports): [{name, originalType, originalOid, blindIndex}]
    `alter table pgshift.encrypted_tables add column encrypted_columns jsonb not null default '[]'::jsonb`,
  ],
};

export interface EncryptedTableInfo {
  schema: string;
  table: string;
  keyColumns: string[];
  encryptedPaths: string[];
  blindIndexPaths: string[];
  integrity: boolean;
  /** Encrypted columns of a relational table (empty for a document table). */
  encryptedColumns: EncryptedColumn[];
}

/** Records (or updates) what an import protects in `schema.table`; in the caller's transaction. */
export async function registerEncryptedTable(
  client: pg.ClientBase,
  target: { schema: string; table: string; keyColumns: readonly string[] },
  sealer: DocumentSealer,
): Promise<void> {
  await client.query(
    `insert into pgshift.encrypted_tables
       (schema_name, table_name, key_columns, encrypted_paths, blind_index_paths, integrity)
     values ($1, $2, $3, $4, $5, $6)
     on conflict (schema_name, table_name) do update set
       key_columns = excluded.key_columns, encrypted_paths = excluded.encrypted_paths,
       blind_index_paths = excluded.blind_index_paths, integrity = excluded.integrity,
       encrypted_columns = '[]'::jsonb, updated_at = now()`,
    [
      target.schema,
      target.table,
      [...target.keyColumns],
      sealer.paths.map((p) => p.pointer),
      sealer.paths.filter((p) => p.blindIndex).map((p) => p.pointer),
      sealer.integrity,
    ],
  );
}

/**
 * Whether the registry exists and this role may read it; asked of the catalog so that it never fails
 * (to_regclass would, for a role without USAGE on an existing pgshift schema).
 */
async function registryReadable(db: pg.Pool | pg.ClientBase): Promise<boolean> {
  const { rows } = await db.query(
    `select has_schema_privilege(n.oid, 'usage') and has_table_privilege(c.oid, 'select') as readable
       from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'pgshift' and c.relname = 'encrypted_tables'`,
  );
  return rows[0]?.readable === true;
}

/** Removes what was recorded for `schema.table` (a plain --mode replace import swapped it out). */
export async function forgetEncryptedTable(
  client: pg.ClientBase,
  schema: string,
  table: string,
): Promise<void> {
  if (!(await registryReadable(client))) return;
  await client.query("delete from pgshift.encrypted_tables where schema_name = $1 and table_name = $2", [
    schema,
    table,
  ]);
}

/**
 * Refuses an import that would mix protection levels in one table: plaintext into a table with encrypted
 * fields, or other encrypted paths than its rows have (a --mode replace import starts afresh).
 */
export async function assertImportCompatible(
  db: pg.Pool,
  target: { schema: string; table: string; replace: boolean },
  sealer: DocumentSealer | undefined,
): Promise<void> {
  if (target.replace) return;
  const info = await readEncryptedTable(db, target.schema, target.table);
  const want = sealer
    ? {
        encryptedPaths: sealer.paths.map((p) => p.pointer),
        blindIndexPaths: sealer.paths.filter((p) => p.blindIndex).map((p) => p.pointer),
        integrity: sealer.integrity,
      }
    : undefined;
  if (!info) return;
  const same =
    want !== undefined &&
    JSON.stringify([...want.encryptedPaths].sort()) === JSON.stringify([...info.encryptedPaths].sort()) &&
    JSON.stringify([...want.blindIndexPaths].sort()) === JSON.stringify([...info.blindIndexPaths].sort()) &&
    want.integrity === info.integrity;
  if (same) return;
  const flags = [
    info.encryptedPaths.length ? `--encrypt ${info.encryptedPaths.join(",")}` : "",
    info.blindIndexPaths.length ? `--blind-index ${info.blindIndexPaths.join(",")}` : "",
    info.integrity ? "--integrity" : "",
    "--keys FILE",
  ].filter(Boolean);
  throw new UsageError(
    `${target.schema}.${target.table} holds ${info.encryptedPaths.length ? `fields encrypted at ${info.encryptedPaths.join(", ")}` : "records with MACs"}${info.integrity && info.encryptedPaths.length ? " and record MACs" : ""}; import into it with the same ${flags.join(" ")} (--mode replace would drop the table and every row in it, and start it afresh)`,
    { schema: target.schema, table: target.table },
  );
}

/** What is protected in `schema.table`; undefined when nothing is (or the registry does not exist yet). */
export async function readEncryptedTable(
  db: pg.Pool | pg.ClientBase,
  schema: string,
  table: string,
): Promise<EncryptedTableInfo | undefined> {
  if (!(await registryReadable(db))) return undefined;
  const { rows } = await db.query(
    `select key_columns, encrypted_paths, blind_index_paths, integrity, encrypted_columns
       from pgshift.encrypted_tables where schema_name = $1 and table_name = $2`,
    [schema, table],
  );
  const row = rows[0];
  if (!row) return undefined;
  return {
    schema,
    table,
    keyColumns: row.key_columns,
    encryptedPaths: row.encrypted_paths,
    blindIndexPaths: row.blind_index_paths,
    integrity: row.integrity,
    encryptedColumns: row.encrypted_columns ?? [],
  };
}

/**
 * Records the encrypted columns of a relational table (names and original types, no key material),
 * resolving each type's oid on this server; in the caller's transaction.
 */
export async function registerEncryptedColumns(
  client: pg.ClientBase,
  target: {
    schema: string;
    table: string;
    keyColumns: readonly string[];
    columns: readonly { name: string; originalType: string; blindIndex: boolean }[];
    integrity: boolean;
  },
): Promise<void> {
  const columns: EncryptedColumn[] = [];
  for (const column of target.columns) {
    const { rows } = await client.query("select $1::regtype::oid::int as oid", [column.originalType]);
    columns.push({ ...column, originalOid: Number(rows[0].oid) });
  }
  await client.query(
    `insert into pgshift.encrypted_tables
       (schema_name, table_name, key_columns, encrypted_paths, blind_index_paths, integrity, encrypted_columns)
     values ($1, $2, $3, '{}', '{}', $4, $5::jsonb)
     on conflict (schema_name, table_name) do update set
       key_columns = excluded.key_columns, encrypted_paths = excluded.encrypted_paths,
       blind_index_paths = excluded.blind_index_paths, integrity = excluded.integrity,
       encrypted_columns = excluded.encrypted_columns, updated_at = now()`,
    [target.schema, target.table, [...target.keyColumns], target.integrity, JSON.stringify(columns)],
  );
}

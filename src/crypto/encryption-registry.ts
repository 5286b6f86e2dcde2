import type pg from "pg";
import type { InternalSchemaPart } from "../pg/internal-schema.ts";
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
  ],
};

export interface EncryptedTableInfo {
  schema: string;
  table: string;
  keyColumns: string[];
  encryptedPaths: string[];
  blindIndexPaths: string[];
  integrity: boolean;
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
       blind_index_paths = excluded.blind_index_paths, integrity = excluded.integrity, updated_at = now()`,
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

/** What is protected in `schema.table`; undefined when nothing is (or the registry does not exist yet). */
export async function readEncryptedTable(
  db: pg.Pool | pg.ClientBase,
  schema: string,
  table: string,
): Promise<EncryptedTableInfo | undefined> {
  const { rows: present } = await db.query(
    `select to_regclass('pgshift.encrypted_tables') is not null
        and has_table_privilege('pgshift.encrypted_tables', 'select') as readable`,
  );
  if (!present[0]?.readable) return undefined;
  const { rows } = await db.query(
    `select key_columns, encrypted_paths, blind_index_paths, integrity
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
  };
}

import type pg from "pg";

/** One column of a table the application's ORM created, as PostgreSQL describes it. */
export interface TargetColumn {
  name: string;
  /** format_type(): "timestamp(3) without time zone", "character varying(80)", "numeric(10,2)", an enum's name. */
  type: string;
  /** pg_type.typname of the base type ("timestamp", "varchar", "int4", an enum's name). */
  typname: string;
  notNull: boolean;
  hasDefault: boolean;
  identity: boolean;
  /** varchar(n) / char(n): n. */
  maxLength?: number;
  /** numeric(p,s). */
  precision?: number;
  scale?: number;
  /** Labels of an enum type. */
  enumLabels?: string[];
  /** The sequence behind a serial or identity column. */
  sequence?: string;
}

export interface TargetForeignKey {
  name: string;
  table: string;
  references: string;
  deferrable: boolean;
}

export interface TargetTable {
  name: string;
  columns: TargetColumn[];
  primaryKey: string[];
}

export interface TargetCatalog {
  schema: string;
  tables: TargetTable[];
  foreignKeys: TargetForeignKey[];
}

/** Reads the tables, columns, keys and foreign keys of `schema` (ordinary and partitioned tables). */
export async function readTargetCatalog(client: pg.ClientBase, schema: string): Promise<TargetCatalog> {
  const { rows: columns } = await client.query(
    `select c.relname as table_name, a.attname as name, format_type(a.atttypid, a.atttypmod) as type,
            t.typname, a.attnotnull as not_null, a.atthasdef as has_default, a.attidentity <> '' as identity,
            case when t.typname in ('varchar', 'bpchar') and a.atttypmod > 0 then a.atttypmod - 4 end as max_length,
            case when t.typname = 'numeric' and a.atttypmod > 0 then ((a.atttypmod - 4) >> 16) & 65535 end as precision,
            case when t.typname = 'numeric' and a.atttypmod > 0 then (a.atttypmod - 4) & 65535 end as scale,
            case when t.typtype = 'e' then (select array_agg(e.enumlabel::text order by e.enumsortorder)
                                              from pg_enum e where e.enumtypid = t.oid) end as enum_labels,
            pg_get_serial_sequence(quote_ident(n.nspname) || '.' || quote_ident(c.relname), a.attname) as sequence
       from pg_class c
       join pg_namespace n on n.oid = c.relnamespace
       join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
       join pg_type t on t.oid = a.atttypid
      where n.nspname = $1 and c.relkind in ('r', 'p') and not c.relispartition
      order by c.relname, a.attnum`,
    [schema],
  );
  const { rows: keys } = await client.query(
    `select c.relname as table_name, array_agg(a.attname::text order by k.ord) as columns
       from pg_constraint p
       join pg_class c on c.oid = p.conrelid
       join pg_namespace n on n.oid = c.relnamespace
       cross join lateral unnest(p.conkey) with ordinality as k(attnum, ord)
       join pg_attribute a on a.attrelid = c.oid and a.attnum = k.attnum
      where n.nspname = $1 and p.contype = 'p'
      group by c.relname`,
    [schema],
  );
  const { rows: fks } = await client.query(
    `select p.conname as name, c.relname as table_name, r.relname as references, p.condeferrable as deferrable
       from pg_constraint p
       join pg_class c on c.oid = p.conrelid
       join pg_class r on r.oid = p.confrelid
       join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = $1 and p.contype = 'f'`,
    [schema],
  );
  const tables = new Map<string, TargetTable>();
  for (const row of columns) {
    let table = tables.get(row.table_name);
    if (!table) {
      table = { name: row.table_name, columns: [], primaryKey: [] };
      tables.set(row.table_name, table);
    }
    table.columns.push({
      name: row.name,
      type: row.type,
      typname: row.typname,
      notNull: row.not_null,
      hasDefault: row.has_default,
      identity: row.identity,
      ...(row.max_length !== null ? { maxLength: Number(row.max_length) } : {}),
      ...(row.precision !== null ? { precision: Number(row.precision), scale: Number(row.scale) } : {}),
      ...(row.enum_labels ? { enumLabels: row.enum_labels } : {}),
      ...(row.sequence ? { sequence: row.sequence } : {}),
    });
  }
  for (const row of keys) {
    const table = tables.get(row.table_name);
    if (table) table.primaryKey = row.columns;
  }
  return {
    schema,
    tables: [...tables.values()],
    foreignKeys: fks.map((r) => ({
      name: r.name,
      table: r.table_name,
      references: r.references,
      deferrable: r.deferrable,
    })),
  };
}

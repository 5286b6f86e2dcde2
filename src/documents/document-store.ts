import { createHash } from "node:crypto";
import type pg from "pg";
import { UsageError } from "../errors.ts";
import { quoteIdent, quoteQualified } from "../pg/quote.ts";
import { fitIdentifier } from "../schema/naming.ts";
import {
  createTableSql,
  docPathExpression,
  documentTablePlan,
  indexDefinitions,
  type KeySpec,
} from "./document-table.ts";
import { parsePointer } from "./json-pointer.ts";
import { contentHash } from "./row-builder.ts";
import type { ColumnType } from "./value-conversion.ts";
import type { FieldEncryptionOptions } from "../crypto/document-sealer.ts";
import { encryptionPart, registerEncryptedTable } from "../crypto/encryption-registry.ts";
import { StoreCrypto } from "../crypto/store-crypto.ts";
import { ensureInternalSchema } from "../pg/internal-schema.ts";

/** A key: one value, or an array of values for a composite key (in keyColumns order). */
export type DocumentKey = string | number | readonly (string | number)[];

/** A JSON object as stored in `doc`. */
export type JsonDocument = Record<string, unknown>;

/**
 * With a `keyring`, the store decrypts encrypted fields on every read and seals (encrypts, MACs) every
 * write; `encryptedPaths`/`blindIndexPaths`/`integrity` default to what the import recorded for the
 * table. Without one, a table with encrypted fields is refused. See docs/encryption.md.
 */
export interface DocumentStoreOptions extends FieldEncryptionOptions {
  /** Default "public". */
  schema?: string;
  table: string;
  /** Key columns in order (default ["id"]). */
  keyColumns?: readonly string[];
  /** Types of the key columns for ensureTable() (default text). */
  keyTypes?: readonly ColumnType[];
  /** Name of the jsonb column (default "doc"). */
  docColumn?: string;
  /**
   * Run the key queries (get, has, put, delete, page, count) as named prepared statements, so that each
   * connection has the server parse and analyse them once instead of on every call (default true; about a
   * quarter less time per key lookup on a local server). Turn it off behind a pooler that does not keep
   * prepared statements across transactions (PgBouncer in transaction mode before 1.21).
   */
  preparedStatements?: boolean;
}

/** The SQL of one query: named when it runs as a prepared statement. */
interface Statement {
  name?: string;
  text: string;
}

/** The SQL of the store's fixed queries; the key queries as prepared statements when asked. */
interface StoreQueries {
  get: Statement;
  has: Statement;
  put: Statement;
  /** put with the record MAC (tables with integrity). */
  putMac: Statement;
  delete: Statement;
  count: Statement;
  pageFirst: Statement;
  pageAfter: Statement;
  getMany: string;
  containing: string;
  wherePath: string;
  /** wherePath with the containment `{path: value}` that lets the GIN index find the candidates. */
  wherePathContaining: string;
}

/** `{"a": {"b": value}}` for the path ["a", "b"]. */
function nestAt(path: readonly string[], value: unknown): unknown {
  return path.reduceRight<unknown>((inner, step) => ({ [step]: inner }), value);
}

function storeQueries(
  qualified: string,
  keyColumns: readonly string[],
  docColumn: string,
  prepared: boolean,
): StoreQueries {
  // Only queries whose best plan does not depend on the values are prepared: the server may switch a
  // prepared statement to one generic plan after five runs, and for @>, path equality and ILIKE with
  // ORDER BY key LIMIT n that plan walks the primary key and filters every row instead of using the GIN
  // index. getMany stays unprepared so that a long key list can still get a hash join.
  const statement = (text: string): Statement => (prepared ? { name: statementName(text), text } : { text });
  const doc = quoteIdent(docColumn);
  const n = keyColumns.length;
  const keyList = keyColumns.map(quoteIdent).join(", ");
  const selectList = `${keyList}, ${doc} as "pgshift_doc"`;
  const keyParams = keyColumns.map((_, i) => `$${i + 1}`).join(", ");
  const keyMatch = keyColumns.map((c, i) => `${quoteIdent(c)} = $${i + 1}`).join(" and ");
  const updates = [
    `${doc} = excluded.${doc}`,
    "source_file = excluded.source_file",
    "content_hash = excluded.content_hash",
    "loaded_at = now()",
  ];
  const t = keyColumns.map((c) => `t.${quoteIdent(c)}`).join(", ");
  const unnest = keyColumns.map((_, i) => `$${i + 1}::text[]`).join(", ");
  const joinOn = keyColumns.map((c, i) => `t.${quoteIdent(c)}::text = k.k${i}`).join(" and ");
  const aliases = keyColumns.map((_, i) => `k${i}`).join(", ");
  return {
    get: statement(`select ${doc} as d from ${qualified} where ${keyMatch}`),
    has: statement(`select 1 from ${qualified} where ${keyMatch}`),
    put: statement(
      `insert into ${qualified} (${keyList}, ${doc}, source_file, content_hash)
       values (${keyParams}, $${n + 1}::jsonb, $${n + 2}, $${n + 3})
       on conflict (${keyList}) do update set ${updates.join(", ")}`,
    ),
    putMac: statement(
      `insert into ${qualified} (${keyList}, ${doc}, source_file, content_hash, record_mac)
       values (${keyParams}, $${n + 1}::jsonb, $${n + 2}, $${n + 3}, $${n + 4})
       on conflict (${keyList}) do update set ${[...updates, "record_mac = excluded.record_mac"].join(", ")}`,
    ),
    delete: statement(`delete from ${qualified} where ${keyMatch}`),
    count: statement(`select count(*)::bigint as n from ${qualified}`),
    pageFirst: statement(`select ${selectList} from ${qualified} order by ${keyList} limit $1`),
    pageAfter: statement(
      `select ${selectList} from ${qualified} where (${keyList}) > (${keyParams}) order by ${keyList} limit $${n + 1}`,
    ),
    // One key column: `= any($1)` lets the server read the array as the column's own type, so the key
    // index is used whatever that type is. Composite keys join an unnest of text arrays.
    getMany:
      n === 1
        ? `select ${selectList} from ${qualified} where ${keyList} = any($1)`
        : `select ${t}, t.${doc} as "pgshift_doc"
         from unnest(${unnest}) as k(${aliases}) join ${qualified} t on ${joinOn}`,
    containing: `select ${selectList} from ${qualified} where ${doc} @> $1::jsonb order by ${keyList} limit $2`,
    wherePath: `select ${selectList} from ${qualified} where ${doc} #> $1::text[] = $2::jsonb order by ${keyList} limit $3`,
    wherePathContaining: `select ${selectList} from ${qualified} where ${doc} @> $4::jsonb and ${doc} #> $1::text[] = $2::jsonb order by ${keyList} limit $3`,
  };
}

export interface DocumentRow<D = JsonDocument> {
  key: DocumentKey;
  doc: D;
}

export interface PageResult<D = JsonDocument> {
  rows: DocumentRow<D>[];
  /** Pass as `after` to get the next page; undefined on the last page. */
  next?: DocumentKey;
}

/**
 * A small, parameterized key -> JSON document store over a pgshift document table (keys, `doc jsonb`,
 * provenance). Values are always bind parameters; identifiers are quoted once, here. The cutover library
 * uses it as the PostgreSQL side of a Map-like store.
 *
 * @example
 *   const store = new DocumentStore(pool, { table: "clearances", keyColumns: ["k_number"] });
 *   await store.ensureTable();
 *   await store.put("K001", { device: "Stent" });
 *   const doc = await store.get("K001");                      // { device: "Stent" }
 *   const stents = await store.containing({ device: "Stent" }); // doc @> '{"device":"Stent"}'
 */
export class DocumentStore<D extends JsonDocument = JsonDocument> {
  readonly schema: string;
  readonly table: string;
  readonly keyColumns: readonly string[];
  private readonly keyTypes: readonly ColumnType[];
  private readonly doc: string;
  private readonly qualified: string;
  private readonly keyList: string;
  private readonly selectList: string;
  /** The fixed queries, built once. */
  private readonly sql: StoreQueries;
  /** Field encryption and record MACs (src/crypto); inert for a plain table. */
  private readonly crypto: StoreCrypto;

  constructor(
    private readonly pool: pg.Pool,
    options: DocumentStoreOptions,
  ) {
    this.schema = options.schema ?? "public";
    // the name importDocuments gave the table (names over 63 bytes get a hash suffix, as PostgreSQL would truncate them)
    this.table = fitIdentifier(options.table);
    this.keyColumns = options.keyColumns?.length ? [...options.keyColumns] : ["id"];
    this.keyTypes = this.keyColumns.map((_, i) => options.keyTypes?.[i] ?? "text");
    this.doc = options.docColumn ?? "doc";
    this.qualified = quoteQualified(this.schema, this.table);
    this.keyList = this.keyColumns.map(quoteIdent).join(", ");
    this.selectList = `${this.keyList}, ${quoteIdent(this.doc)} as "pgshift_doc"`;
    this.sql = storeQueries(this.qualified, this.keyColumns, this.doc, options.preparedStatements ?? true);
    this.crypto = new StoreCrypto(pool, this.schema, this.table, options);
  }

  /** Creates the schema and the document table (with its primary key) if absent. */
  async ensureTable(): Promise<void> {
    const keys: KeySpec[] = this.keyColumns.map((column, i) => ({
      pointer: `/${column}`,
      path: [column],
      column,
      type: this.keyTypes[i]!,
    }));
    const sealer = this.crypto.active;
    const plan = documentTablePlan({
      schema: this.schema,
      table: this.table,
      keys,
      extraColumns: [],
      gin: false,
      trgmPaths: [],
      ...(sealer
        ? {
            integrity: sealer.integrity,
            blindIndexPaths: sealer.paths.filter((p) => p.blindIndex).map((p) => p.path),
          }
        : {}),
    });
    if (this.doc !== "doc")
      throw new UsageError("ensureTable() creates tables with the column doc; drop docColumn");
    await this.pool.query(`create schema if not exists ${quoteIdent(this.schema)}`);
    await this.pool.query(
      createTableSql(plan, this.table, true).replace(/^create table /, "create table if not exists "),
    );
    // crypto hook: blind indexes, and the registry entry that readers without keys are refused by
    if (sealer) {
      for (const index of indexDefinitions(plan)) await this.pool.query(index.sql);
      await ensureInternalSchema(this.pool, [encryptionPart]);
      const client = await this.pool.connect();
      try {
        await registerEncryptedTable(
          client,
          { schema: this.schema, table: this.table, keyColumns: this.keyColumns },
          sealer,
        );
      } finally {
        client.release();
      }
    }
  }

  private keyValues(key: DocumentKey): (string | number)[] {
    const values = Array.isArray(key) ? [...key] : [key as string | number];
    if (values.length !== this.keyColumns.length)
      throw new UsageError(
        `${this.table} has ${this.keyColumns.length} key column(s) (${this.keyColumns.join(", ")}); got ${values.length} value(s)`,
      );
    return values;
  }

  private keyOf(row: Record<string, unknown>): DocumentKey {
    const values = this.keyColumns.map((c) => row[c] as string | number);
    return values.length === 1 ? values[0]! : values;
  }

  private toRow(row: Record<string, unknown>): DocumentRow<D> {
    return { key: this.keyOf(row), doc: this.crypto.open(row.pgshift_doc as D) };
  }

  /** The document at `key`, or undefined. */
  async get(key: DocumentKey): Promise<D | undefined> {
    await this.crypto.ready();
    const { rows } = await this.pool.query({ ...this.sql.get, values: this.keyValues(key) });
    return this.crypto.open(rows[0]?.d);
  }

  /** Documents for many keys at once (one query); missing keys are absent from the map. Map keys are JSON of the key for composite keys. */
  async getMany(keys: readonly DocumentKey[]): Promise<Map<string, D>> {
    const result = new Map<string, D>();
    if (keys.length === 0) return result;
    await this.crypto.ready();
    const columns = this.keyColumns.map((_, i) => keys.map((k) => String(this.keyValues(k)[i])));
    const { rows } = await this.pool.query(this.sql.getMany, columns);
    for (const row of rows) result.set(mapKey(this.keyOf(row)), this.crypto.open(row.pgshift_doc));
    return result;
  }

  /** Inserts or replaces one document (content_hash and loaded_at kept current). */
  async put(key: DocumentKey, doc: D, options: { sourceFile?: string } = {}): Promise<void> {
    // hashed as the import hashes a document without source text: its JSON serialization (sealed
    // first when fields are encrypted, with the record MAC when the table keeps them)
    await this.crypto.ready();
    const keyValues = this.keyValues(key);
    const { text, mac } = this.crypto.seal(keyValues, doc);
    const values = [...keyValues, text, options.sourceFile ?? "DocumentStore.put", contentHash(text)];
    await this.pool.query(
      mac === undefined ? { ...this.sql.put, values } : { ...this.sql.putMac, values: [...values, mac] },
    );
  }

  /** Deletes one document; true when it existed. */
  async delete(key: DocumentKey): Promise<boolean> {
    await this.crypto.ready();
    const result = await this.pool.query({ ...this.sql.delete, values: this.keyValues(key) });
    return (result.rowCount ?? 0) > 0;
  }

  /** Whether a document exists at `key`. */
  async has(key: DocumentKey): Promise<boolean> {
    const { rows } = await this.pool.query({ ...this.sql.has, values: this.keyValues(key) });
    return rows.length > 0;
  }

  /** Documents containing `partial` (`doc @> partial`; uses the jsonb_path_ops GIN index). */
  async containing(partial: JsonDocument, options: { limit?: number } = {}): Promise<DocumentRow<D>[]> {
    await this.crypto.ready();
    this.crypto.assertPlainPattern(partial);
    const { rows } = await this.pool.query(this.sql.containing, [
      JSON.stringify(partial),
      options.limit ?? 1000,
    ]);
    return rows.map((r) => this.toRow(r));
  }

  /** Documents whose value at `pointer` equals `value` (any JSON value; compared as jsonb). */
  async wherePath(
    pointer: string,
    value: unknown,
    options: { limit?: number } = {},
  ): Promise<DocumentRow<D>[]> {
    const path = parsePointer(pointer);
    await this.crypto.ready();
    // crypto hook: an encrypted path is matched through its blind index, then checked once decrypted
    const blind = this.crypto.blindLookup(pointer, value);
    if (blind) {
      const expression = docPathExpression(this.doc, [...blind.sealed.path, "bi"]);
      const { rows } = await this.pool.query(
        `select ${this.selectList} from ${this.qualified} where ${expression} = any($1::text[]) order by ${this.keyList} limit $2`,
        [blind.indexes, options.limit ?? 1000],
      );
      return rows.map((r) => this.toRow(r)).filter((r) => this.crypto.matches(blind.sealed, r.doc, value));
    }
    // `doc #> path = value` alone cannot use the GIN index (a selective value walked the whole table).
    // When every step of the path is an object key, a record whose value there equals `value` contains
    // {path: value}: for a scalar the two are the same test (below the top level an array does not
    // contain a scalar), so the containment alone is asked, planned as `containing` is; for an object or
    // an array (where containment is weaker) it is added for the index and the equality decides. A step
    // that could be an array index (digits) gets neither: #> takes it as an index, @> as an object key.
    const limit = options.limit ?? 1000;
    const hint = path.length > 0 && !path.some((step) => /^-?\d+$/.test(step));
    const nested = JSON.stringify(nestAt(path, value));
    const { rows } = await this.pool.query(
      !hint
        ? { text: this.sql.wherePath, values: [path, JSON.stringify(value), limit] }
        : value === null || typeof value !== "object"
          ? { text: this.sql.containing, values: [nested, limit] }
          : { text: this.sql.wherePathContaining, values: [path, JSON.stringify(value), limit, nested] },
    );
    return rows.map((r) => this.toRow(r));
  }

  /**
   * Documents whose text at `path` contains `text` (case-insensitive). The path is written into the SQL
   * as a quoted literal, exactly as the import's --trgm index expression, so that index is used; the
   * searched text is a parameter.
   */
  async search(text: string, options: { path: string; limit?: number }): Promise<DocumentRow<D>[]> {
    await this.crypto.ready();
    this.crypto.assertPlainPaths([parsePointer(options.path)], `search() on ${options.path}`);
    const expression = docPathExpression(this.doc, parsePointer(options.path));
    const pattern = `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    const { rows } = await this.pool.query(
      `select ${this.selectList} from ${this.qualified} where ${expression} ilike $1 order by ${this.keyList} limit $2`,
      [pattern, options.limit ?? 100],
    );
    return rows.map((r) => this.toRow(r));
  }

  /** Keyset paging in key order: `page({ limit: 100 })`, then `page({ after: result.next, limit: 100 })`. */
  async page(options: { after?: DocumentKey; limit?: number } = {}): Promise<PageResult<D>> {
    const limit = options.limit ?? 100;
    await this.crypto.ready();
    const { rows } = await this.pool.query(
      options.after === undefined
        ? { ...this.sql.pageFirst, values: [limit + 1] }
        : { ...this.sql.pageAfter, values: [...this.keyValues(options.after), limit + 1] },
    );
    const page = rows.slice(0, limit).map((r) => this.toRow(r));
    return rows.length > limit ? { rows: page, next: page[page.length - 1]!.key } : { rows: page };
  }

  /** Number of documents (exact). */
  async count(): Promise<number> {
    await this.crypto.ready();
    const { rows } = await this.pool.query(this.sql.count);
    return Number(rows[0].n);
  }
}

/**
 * A prepared statement's name, from its text: one name per distinct query, so stores over different tables
 * sharing a pool never reuse a name for another statement (pg refuses that), and the same query
 * from two stores over one table shares the connection's statement.
 */
function statementName(text: string): string {
  return `pgshift_ds_${createHash("sha256").update(text).digest("hex").slice(0, 24)}`;
}

/** The key getMany() uses in its result map: the value itself, or JSON of a composite key. */
export function mapKey(key: DocumentKey): string {
  return Array.isArray(key) ? JSON.stringify(key.map(String)) : String(key);
}

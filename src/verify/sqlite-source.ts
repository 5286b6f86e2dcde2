import { createHash } from "node:crypto";
import { createReadStream, statSync } from "node:fs";
import { resolve } from "node:path";
import { Worker } from "node:worker_threads";
import type Database from "better-sqlite3";
import { PgshiftError } from "../errors.ts";
import { NativeModuleError, openSqliteFile } from "../sources/sqlite/open-database.ts";
import { parseCreateTable, rowidAliasColumn } from "../sources/sqlite/sqlite-catalog.ts";
import { quoteSqlite, rowidName } from "../sources/sqlite/sqlite-rows.ts";
import { type CanonicalConverter, canonicalConverter, type SourceValue } from "./canonical.ts";
import type { CanonicalRow, SourceFingerprint, SourceTableReader } from "./source-reader.ts";
import type { VerifyTable } from "./types.ts";

/**
 * Rows handed to the verifier at a time; it yields to the event loop between batches. Rowid tables
 * are read one such page per query (`.all()` on the next rowid range): a native call per page
 * instead of one per row costs 20-35 % less read time, and memory stays bounded by rows. A page is
 * live while it is hashed, and every young-generation collection copies it: with the small young
 * generation of the import's early-sums thread, 512-row pages took 20-25 % less CPU than 2048-row ones
 * (600k rows of the bench's 11-table database: 7.2-7.8 -> 5.8-6.1 CPU-s; one-table shape 3.0-3.1 ->
 * 2.4-2.8), and no more with a large one.
 */
const BATCH_ROWS = 512;

/** How a table's rows can be paged by rowid: the name that reaches the rowid, and the key that is it. */
interface RowidAccess {
  rowid: string;
  /** The INTEGER PRIMARY KEY column (an alias of the rowid), when the table has one. */
  alias?: string;
}

/** Undefined for WITHOUT ROWID tables and for tables whose columns hide all three rowid names. */
function rowidAccess(db: Database.Database, table: string): RowidAccess | undefined {
  const schema = db.prepare("select sql from sqlite_schema where type = 'table' and name = ?").get(table) as
    { sql: string | null } | undefined;
  const parsed = parseCreateTable(schema?.sql ?? "");
  if (parsed.withoutRowid) return undefined;
  // All the table's columns, also those not verified: any of them can hide a rowid name.
  const info = db.prepare(`pragma main.table_xinfo(${quoteSqlite(table)})`).all() as {
    name: string;
    type: string;
    pk: number;
  }[];
  const rowid = rowidName(info.map((c) => c.name));
  if (rowid === undefined) return undefined;
  const alias = rowidAliasColumn(
    info.map((c) => ({ name: c.name, declaredType: c.type, primaryKeyPosition: c.pk })),
    parsed,
  );
  return alias === undefined ? { rowid } : { rowid, alias };
}

/** sha256 and size of a file, streamed. */
export async function fileFingerprint(kind: string, path: string): Promise<SourceFingerprint> {
  const full = resolve(path);
  const size = statSync(full).size;
  let sha256: string;
  try {
    sha256 = await sha256InWorker(full);
  } catch {
    const hash = createHash("sha256");
    for await (const chunk of createReadStream(full)) hash.update(chunk as Buffer);
    sha256 = hash.digest("hex");
  }
  return { kind, path: full, size, sha256 };
}

/** Plain JavaScript (no loader needed): hashes a file off the main thread, which verifies meanwhile. */
const SHA256_WORKER = `
const { createHash } = require("node:crypto");
const { createReadStream } = require("node:fs");
const { parentPort, workerData } = require("node:worker_threads");
const hash = createHash("sha256");
createReadStream(workerData)
  .on("data", (chunk) => hash.update(chunk))
  .on("error", (error) => parentPort.postMessage({ error: error.message }))
  .on("end", () => parentPort.postMessage({ sha256: hash.digest("hex") }));
`;

function sha256InWorker(path: string): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const worker = new Worker(SHA256_WORKER, { eval: true, workerData: path });
    worker.once("message", (message: { sha256?: string; error?: string }) => {
      void worker.terminate();
      if (message.sha256) resolvePromise(message.sha256);
      else reject(new Error(message.error ?? "hashing failed"));
    });
    worker.once("error", reject);
  });
}

/**
 * Reads a SQLite table for verification straight from the original file (read-only), converting each
 * value to the canonical form of the PostgreSQL type the plan chose, with the verifier's own code.
 */
export class SqliteTableReader implements SourceTableReader {
  private readonly db: Database.Database;
  private readonly converters: CanonicalConverter[];
  private readonly selected: string;
  private readonly select: string;
  private readonly keySource?: string;
  private readonly rowids?: RowidAccess;

  private readonly exclusion: string;
  private readonly excluded: string;

  /**
   * `excludeRowids`: rows the import quarantined; they are left out of the comparison (and counted
   * separately), since rows read = rows loaded + rows quarantined.
   */
  constructor(
    path: string,
    private readonly table: VerifyTable,
    excludeRowids: readonly bigint[] = [],
  ) {
    try {
      this.db = openSqliteFile(path);
    } catch (error) {
      if (error instanceof NativeModuleError) throw error;
      throw new PgshiftError(
        "verify_source",
        `cannot open SQLite file ${path}: ${(error as Error).message}`,
        {
          cause: error,
          details: { path },
        },
      );
    }
    this.converters = table.columns.map((c) => canonicalConverter(c.kind, c.reading));
    // Bytea takes text's stored bytes (invalid UTF-8 included), as the import does.
    const selected = table.columns.map((c) => {
      const q = quoteSqlite(c.sourceName);
      return c.kind === "bytea" ? `case when typeof(${q}) = 'text' then cast(${q} as blob) else ${q} end` : q;
    });
    this.rowids = rowidAccess(this.db, table.sourceTable);
    this.excluded = JSON.stringify(excludeRowids.map(String));
    // The rowid under the name none of the table's columns takes, as the paged read uses it.
    this.exclusion = excludeRowids.length
      ? `${this.rowids?.rowid ?? "rowid"} not in (select cast(value as integer) from json_each(?))`
      : "";
    this.selected = selected.join(", ");
    this.select = `select ${this.selected} from ${quoteSqlite(table.sourceTable)}`;
    if (table.key.length === 1) {
      this.keySource = table.columns.find((c) => c.name === table.key[0])?.sourceName;
    }
  }

  count(): number {
    const where = this.exclusion ? ` where ${this.exclusion}` : "";
    const statement = this.db.prepare(
      `select count(*) as n from ${quoteSqlite(this.table.sourceTable)}${where}`,
    );
    const row = (this.exclusion ? statement.get(this.excluded) : statement.get()) as { n: number };
    return Number(row.n);
  }

  integerKeyRange(): { min: bigint; max: bigint } | undefined {
    if (!this.keySource) return undefined;
    const key = quoteSqlite(this.keySource);
    // min/max of the primary key come from its index (no scan). SQLite sorts integers before text,
    // so a non-integer key shows up as a non-integer max: then chunks get a default width.
    const row = this.db
      .prepare(`select min(${key}) as lo, max(${key}) as hi from ${quoteSqlite(this.table.sourceTable)}`)
      .safeIntegers(true)
      .get() as { lo: unknown; hi: unknown };
    if (typeof row.lo !== "bigint" || typeof row.hi !== "bigint") return undefined;
    return { min: row.lo, max: row.hi };
  }

  *rows(range?: [bigint, bigint], ordered = false): Iterable<CanonicalRow[]> {
    const conditions: string[] = [];
    const params: unknown[] = [];
    if (range && this.keySource) {
      conditions.push(`${quoteSqlite(this.keySource)} between ? and ?`);
      params.push(range[0], range[1]);
    }
    if (this.exclusion) {
      conditions.push(this.exclusion);
      params.push(this.excluded);
    }
    // Rowid order is key order only when the key is the rowid.
    const rowids = this.rowids;
    if (rowids && !(ordered && this.keySource && this.keySource !== rowids.alias)) {
      yield* this.pagedRows(rowids.rowid, conditions, params);
      return;
    }
    let sql = conditions.length ? `${this.select} where ${conditions.join(" and ")}` : this.select;
    // The key is the primary key: the rowid itself or an indexed column, so no sort is needed.
    if (ordered && this.keySource) sql += ` order by ${quoteSqlite(this.keySource)}`;
    const statement = this.db.prepare(sql).raw(true).safeIntegers(true);
    const iterator = statement.iterate(...params) as IterableIterator<SourceValue[]>;
    const converters = this.converters;
    const width = converters.length;
    let batch: CanonicalRow[] = [];
    for (const values of iterator) {
      const fields: CanonicalRow = new Array(width);
      for (let i = 0; i < width; i++) fields[i] = converters[i]!(values[i]);
      batch.push(fields);
      if (batch.length === BATCH_ROWS) {
        yield batch;
        batch = [];
      }
    }
    if (batch.length) yield batch;
  }

  /** The rows in rowid order, BATCH_ROWS per query, each query starting after the last rowid read. */
  private *pagedRows(rowid: string, conditions: string[], params: unknown[]): Iterable<CanonicalRow[]> {
    // The rowid comes last: each row's array becomes its canonical fields in place, cut to `width`.
    const from = `select ${this.selected}, ${rowid} from ${quoteSqlite(this.table.sourceTable)}`;
    const where = (extra: string[]) => (extra.length ? ` where ${extra.join(" and ")}` : "");
    const tail = ` order by ${rowid} limit ${BATCH_ROWS}`;
    const first = this.db
      .prepare(`${from}${where(conditions)}${tail}`)
      .raw(true)
      .safeIntegers(true);
    const next = this.db
      .prepare(`${from}${where([`${rowid} > ?`, ...conditions])}${tail}`)
      .raw(true)
      .safeIntegers(true);
    const converters = this.converters;
    const width = converters.length;
    // One read transaction over all pages: they see one snapshot of the file, as one statement does.
    const own = !this.db.inTransaction;
    if (own) this.db.exec("begin");
    try {
      let after: bigint | undefined;
      for (;;) {
        const page = (
          after === undefined ? first.all(...params) : next.all(after, ...params)
        ) as SourceValue[][];
        if (page.length === 0) return;
        after = page[page.length - 1]![width] as bigint;
        // No second array per row (nor per page): fewer allocations, less collection.
        for (const values of page) {
          for (let i = 0; i < width; i++) values[i] = converters[i]!(values[i]);
          values.length = width;
        }
        yield page as CanonicalRow[];
        if (page.length < BATCH_ROWS) return;
      }
    } finally {
      if (own) this.db.exec("commit");
    }
  }

  close(): void {
    this.db.close();
  }
}

import type pg from "pg";
import { type CutoverOptions, type CutoverStore, createCutover } from "../../../src/cutover/index.ts";
import { quoteIdent } from "../../../src/pg/quote.ts";

export type Doc = Record<string, unknown>;

/** The interface both sides implement in these tests: a key -> JSON document store. */
export interface KvStore {
  get(key: string): Promise<Doc | undefined>;
  put(key: string, value: Doc): Promise<void>;
  delete(key: string): Promise<void>;
  keys(): AsyncIterable<string>;
}

/** Failure injection the application store itself performs (the database is never mocked). */
export interface Faults {
  failWrites: boolean;
  failReads: boolean;
}

/** The legacy side: an in-process Map, as the applications pgshift serves have. */
export class MemoryKv implements KvStore {
  readonly map = new Map<string, Doc>();
  readonly faults: Faults = { failWrites: false, failReads: false };

  constructor(private readonly log: string[] = []) {}

  async get(key: string): Promise<Doc | undefined> {
    this.log.push(`legacy:get:${key}`);
    if (this.faults.failReads) throw new Error("legacy store unavailable (injected)");
    const value = this.map.get(key);
    return value === undefined ? undefined : structuredClone(value);
  }

  async put(key: string, value: Doc): Promise<void> {
    this.log.push(`legacy:put:${key}`);
    if (this.faults.failWrites) throw new Error("legacy store unavailable (injected)");
    this.map.set(key, structuredClone(value));
  }

  async delete(key: string): Promise<void> {
    this.log.push(`legacy:delete:${key}`);
    if (this.faults.failWrites) throw new Error("legacy store unavailable (injected)");
    this.map.delete(key);
  }

  async *keys(): AsyncIterable<string> {
    for (const key of [...this.map.keys()]) yield key;
  }
}

/** The next side: a real PostgreSQL table; documents holding a "poison" member violate a CHECK constraint. */
export class PgKv implements KvStore {
  readonly faults: Faults = { failWrites: false, failReads: false };

  constructor(
    private readonly pool: pg.Pool,
    readonly table: string,
    private readonly log: string[] = [],
  ) {}

  async ensure(): Promise<void> {
    await this.pool.query(
      `create table if not exists ${quoteIdent(this.table)} (key text primary key, value jsonb not null check (not value ? 'poison'))`,
    );
  }

  async get(key: string): Promise<Doc | undefined> {
    this.log.push(`next:get:${key}`);
    if (this.faults.failReads) throw new Error("next store unavailable (injected)");
    const { rows } = await this.pool.query(`select value from ${quoteIdent(this.table)} where key = $1`, [
      key,
    ]);
    return rows[0]?.value;
  }

  async put(key: string, value: Doc): Promise<void> {
    this.log.push(`next:put:${key}`);
    if (this.faults.failWrites) throw new Error("next store unavailable (injected)");
    await this.pool.query(
      `insert into ${quoteIdent(this.table)} (key, value) values ($1, $2::jsonb)
       on conflict (key) do update set value = excluded.value`,
      [key, JSON.stringify(value)],
    );
  }

  async delete(key: string): Promise<void> {
    this.log.push(`next:delete:${key}`);
    if (this.faults.failWrites) throw new Error("next store unavailable (injected)");
    await this.pool.query(`delete from ${quoteIdent(this.table)} where key = $1`, [key]);
  }

  async *keys(): AsyncIterable<string> {
    const { rows } = await this.pool.query(`select key from ${quoteIdent(this.table)} order by key`);
    for (const row of rows) yield row.key as string;
  }
}

/** Per-key access for both stores (used by the repairer and the verifier). */
export const kvAccess = {
  read: (store: KvStore, key: string) => store.get(key),
  write: async (store: KvStore, key: string, value: unknown) => {
    if (value === undefined || value === null) await store.delete(key);
    else await store.put(key, value as Doc);
  },
  keys: (store: KvStore) => store.keys(),
};

/** Polls `condition` until it holds or `ms` pass (asserting on the outcome, never on the time taken). */
export async function eventually(condition: () => boolean | Promise<boolean>, ms = 3_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await condition()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * The cutover most of these tests open: `legacy` (a MemoryKv unless given) and `next` (given, already ensured)
 * behind the wrapper, reads `get`, writes `put` and `delete`, per-key repairs, no periodic health reports.
 * `options` overrides any of that.
 */
export function kvCutover(
  pool: pg.Pool,
  name: string,
  sides: { legacy: KvStore; next: KvStore },
  options: Partial<CutoverOptions<KvStore>> = {},
): Promise<CutoverStore<KvStore>> {
  return createCutover<KvStore>({
    name,
    pool,
    legacy: sides.legacy,
    next: sides.next,
    reads: ["get"],
    writes: ["put", "delete"],
    keyAccess: kvAccess,
    reportIntervalMs: 0,
    ...options,
  });
}

import { randomBytes } from "node:crypto";
import { after, before } from "node:test";
import pg from "pg";
import { createPool } from "../../src/pg/pool.ts";
import { quoteIdent } from "../../src/pg/quote.ts";
import { withDatabase } from "../../src/pg/server-databases.ts";

export interface TestDatabase {
  name: string;
  /** Full URL of the fresh database. */
  url: string;
  pool: pg.Pool;
  drop(): Promise<void>;
}

/** The server the test run provides (scripts/run-tests.mjs starts one, or TEST_DATABASE_URL). */
export function serverUrl(): string {
  const url = process.env.TEST_DATABASE_URL;
  if (!url) throw new Error("no test server: run tests through `npm test`, or set TEST_DATABASE_URL");
  return url;
}

export { withDatabase };

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: serverUrl() });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** A new, empty database on the test server; `drop()` removes it (terminating leftover sessions). */
export async function createTestDatabase(prefix = "t"): Promise<TestDatabase> {
  const name = `pgshift_${prefix}_${randomBytes(5).toString("hex")}`;
  await admin((client) => client.query(`create database ${quoteIdent(name)}`));
  const url = withDatabase(serverUrl(), name);
  const pool = createPool({ url, max: 8 });
  return {
    name,
    url,
    pool,
    async drop() {
      await pool.end().catch(() => undefined);
      await admin((client) => client.query(`drop database if exists ${quoteIdent(name)} with (force)`));
    },
  };
}

/**
 * Registers before/after hooks that give the calling test file its own fresh database:
 *   const db = useTestDatabase(); ... db().pool
 */
export function useTestDatabase(prefix = "t"): () => TestDatabase {
  let database: TestDatabase | undefined;
  before(async () => {
    database = await createTestDatabase(prefix);
  });
  after(async () => {
    await database?.drop();
  });
  return () => {
    if (!database) throw new Error("test database not ready: call useTestDatabase() at the top of the file");
    return database;
  };
}

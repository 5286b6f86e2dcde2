import pg from "pg";
import { quoteIdent } from "../pg/quote.ts";
import { connectableDatabases, withDatabase } from "../pg/server-databases.ts";

/** Per-table row count and an order-independent checksum (md5 over the sorted md5s of each row's text). */
export interface TableSum {
  database: string;
  table: string;
  rows: number;
  checksum: string;
}

export async function tableSums(serverUrl: string): Promise<TableSum[]> {
  const databases = await connectableDatabases(serverUrl);
  const out: TableSum[] = [];
  for (const database of databases) {
    const client = new pg.Client({ connectionString: withDatabase(serverUrl, database) });
    await client.connect();
    try {
      const tables = await client.query<{ schema: string; name: string }>(
        `select n.nspname as schema, c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
          where c.relkind in ('r', 'p') and n.nspname not in ('pg_catalog', 'information_schema')
            and n.nspname not like 'pg_toast%' order by 1, 2`,
      );
      for (const t of tables.rows) {
        const q = `${quoteIdent(t.schema)}.${quoteIdent(t.name)}`;
        const r = await client.query<{ n: string; sum: string | null }>(
          `select count(*) as n, md5(coalesce(string_agg(h, '' order by h), '')) as sum
             from (select md5(x::text) as h from ${q} x) s`,
        );
        out.push({
          database,
          table: `${t.schema}.${t.name}`,
          rows: Number(r.rows[0]!.n),
          checksum: r.rows[0]!.sum!,
        });
      }
    } finally {
      await client.end();
    }
  }
  return out;
}

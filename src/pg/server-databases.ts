import pg from "pg";

/** The same server URL, pointing at another database. */
export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${encodeURIComponent(database)}`;
  return parsed.toString();
}

/** The server's databases one can connect to (no templates, none refusing connections), by name. */
export async function connectableDatabases(serverUrl: string): Promise<string[]> {
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    const { rows } = await admin.query<{ datname: string }>(
      "select datname from pg_catalog.pg_database where datallowconn and not datistemplate order by datname",
    );
    return rows.map((row) => row.datname);
  } finally {
    await admin.end();
  }
}

import { findPgBinaries, type PgBinaries } from "../../src/local/binaries.ts";

/** The server binaries this test run uses (the run script exports PGSHIFT_TEST_PG_BIN), so both majors get covered. */
export function testBinaries(): PgBinaries {
  const dir = process.env.PGSHIFT_TEST_PG_BIN;
  return dir ? findPgBinaries({ PGSHIFT_PG_BIN: dir }) : findPgBinaries();
}

/** Environment for CLI runs that must use the same binaries. */
export function testBinariesEnv(): NodeJS.ProcessEnv {
  return { PGSHIFT_PG_BIN: testBinaries().binDir };
}

/**
 * The backup tools (pg_dump, pg_basebackup, pgBackRest) are the Debian packages, PostgreSQL 15's here; they
 * cannot back up a newer server (pg_dump refuses a server newer than itself). A reason to skip when the
 * test run's server is newer than the installed pg_dump, else false.
 */
export async function newerServerThanDumpTools(url: string): Promise<string | false> {
  const { execFileSync } = await import("node:child_process");
  const pg = (await import("pg")).default;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ v: string }>("select current_setting('server_version_num') as v");
    const server = Math.floor(Number(rows[0]!.v) / 10000);
    const dump = Number(/(\d+)\./.exec(execFileSync("pg_dump", ["--version"], { encoding: "utf8" }))?.[1]);
    return server > dump
      ? `server is PostgreSQL ${server}, the installed pg_dump is ${dump}: it cannot back up a newer server`
      : false;
  } finally {
    await client.end();
  }
}

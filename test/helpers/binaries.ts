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

import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findPgBinaries } from "../../src/local/binaries.ts";

/** Whether the pgbackrest binary runs here (the tests that need it skip with a reason otherwise). */
export const pgbackrestAvailable = (() => {
  try {
    execFileSync("pgbackrest", ["version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

/**
 * The server binaries of the installed backup tools (Debian's), whatever major the rest of the test run
 * covers: pg_basebackup and pgBackRest 2.45 cannot back up a newer server.
 */
export const BACKUP_BINARIES = findPgBinaries();

/** A fresh directory for a backup test's instances and repositories, readable by the server's user. */
export function backupTestDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o755);
  return dir;
}

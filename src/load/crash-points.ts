import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * Named places where a test may kill the import process (SIGKILL, no cleanup) to prove that
 * `--resume` finishes the job exactly once. Set PGSHIFT_TEST_KILL_AT=name, or name#n for the n-th time
 * the point is reached. Inert otherwise.
 *
 * Or pause there, so that a test can break the database connection (pg_terminate_backend, a server
 * restart) at exactly that point: PGSHIFT_TEST_PAUSE_AT=name[#n] with PGSHIFT_TEST_PAUSE_DIR=dir. The
 * process writes dir/paused and blocks its thread until dir/go exists (at most a minute).
 */
export const CRASH_POINTS = [
  "import:after-run-created",
  "schema:before-create",
  "schema:before-commit",
  "schema:after-commit",
  "data:chunk-start",
  "data:mid-copy",
  "data:before-quarantine",
  "data:before-checkpoint",
  "data:before-commit",
  "data:after-commit",
  "data:before-count-check",
  "keys:before",
  "keys:before-commit",
  "keys:after-commit",
  "index:before",
  "index:before-commit",
  "index:after-commit",
  "constraint:before-add",
  "constraint:after-add",
  "constraint:before-validate",
  "constraint:after-validate",
  "identity:before",
  "identity:after",
  "view:before",
  "view:after",
  "analyze:before",
  "analyze:after",
  "verify:before",
  "verify:table-snapshot",
  "run:before-complete",
  "run:after-complete",
] as const;

export type CrashPoint = (typeof CRASH_POINTS)[number];

const hits = new Map<string, number>();

/** Whether `wanted` (name or name#n) names this hit of the point; counts the hits of each setting. */
function reached(setting: string, wanted: string, name: CrashPoint): boolean {
  const [point, nth] = wanted.split("#");
  if (point !== name) return false;
  const count = (hits.get(`${setting}:${name}`) ?? 0) + 1;
  hits.set(`${setting}:${name}`, count);
  return nth === undefined || Number(nth) === count;
}

/** Kills this process with SIGKILL when PGSHIFT_TEST_KILL_AT names this point (and hit count). */
export function crashPoint(name: CrashPoint): void {
  const kill = process.env.PGSHIFT_TEST_KILL_AT;
  if (kill && reached("kill", kill, name)) process.kill(process.pid, "SIGKILL");
  const pause = process.env.PGSHIFT_TEST_PAUSE_AT;
  const dir = process.env.PGSHIFT_TEST_PAUSE_DIR;
  if (pause && dir && reached("pause", pause, name)) pauseUntilGo(dir, name);
}

function pauseUntilGo(dir: string, name: string): void {
  writeFileSync(join(dir, "paused"), `${name} ${process.pid}\n`);
  const cell = new Int32Array(new SharedArrayBuffer(4));
  const deadline = Date.now() + 60_000;
  // Blocking on purpose: nothing of this process may run (or notice a broken socket) until told.
  while (!existsSync(join(dir, "go")) && Date.now() < deadline) Atomics.wait(cell, 0, 0, 20);
}

/**
 * Named places where a test may kill the import process (SIGKILL, no cleanup) to prove that
 * `--resume` finishes the job exactly once. Set PGSHIFT_TEST_KILL_AT=name, or name#n for the n-th time
 * the point is reached. Inert otherwise.
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
  "run:before-complete",
  "run:after-complete",
] as const;

export type CrashPoint = (typeof CRASH_POINTS)[number];

const hits = new Map<string, number>();

/** Kills this process with SIGKILL when PGSHIFT_TEST_KILL_AT names this point (and hit count). */
export function crashPoint(name: CrashPoint): void {
  const wanted = process.env.PGSHIFT_TEST_KILL_AT;
  if (!wanted) return;
  const [point, nth] = wanted.split("#");
  if (point !== name) return;
  const count = (hits.get(name) ?? 0) + 1;
  hits.set(name, count);
  if (nth === undefined || Number(nth) === count) process.kill(process.pid, "SIGKILL");
}

import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { PGSHIFT_BIN } from "../../helpers/cli.ts";
import { type Run, tail } from "../verify/resume-helpers.ts";

export { spawnCli, tail } from "../verify/resume-helpers.ts";

/** A CLI run in the background: the test breaks the connection while it runs, then awaits its end. */
export interface Running {
  child: ChildProcess;
  done: Promise<Run>;
  stderr(): string;
}

const CLEARED = [
  "DATABASE_URL",
  "PGHOST",
  "PGDATABASE",
  "PGUSER",
  "PGPASSWORD",
  "PGPORT",
  "PGSHIFT_TEST_KILL_AT",
  "PGSHIFT_TEST_PAUSE_AT",
  "PGSHIFT_TEST_PAUSE_DIR",
];

export function startCli(args: readonly string[], env: NodeJS.ProcessEnv = {}, cwd?: string): Running {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  for (const key of CLEARED) if (!(key in env)) delete childEnv[key];
  const child = spawn(process.execPath, [PGSHIFT_BIN, ...args], {
    env: childEnv,
    stdio: ["ignore", "pipe", "pipe"],
    ...(cwd ? { cwd } : {}),
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d) => (stdout += d));
  child.stderr!.on("data", (d) => (stderr += d));
  const timer = setTimeout(() => child.kill("SIGKILL"), 180_000);
  const done = new Promise<Run>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return { child, done, stderr: () => stderr };
}

/**
 * A pause point (src/load/crash-points.ts): env for the child, a wait until it is paused there, and the
 * word that lets it go on.
 */
export function pausePoint(point: string) {
  const dir = mkdtempSync(join(tmpdir(), "pgshift-pause-"));
  return {
    env: { PGSHIFT_TEST_PAUSE_AT: point, PGSHIFT_TEST_PAUSE_DIR: dir },
    async reached(running: Running): Promise<void> {
      const deadline = Date.now() + 120_000;
      while (!existsSync(join(dir, "paused"))) {
        if (running.child.exitCode !== null || Date.now() > deadline)
          assert.fail(`never paused at ${point}:\n${running.stderr().slice(-2000)}`);
        await sleep(20);
      }
    },
    go(): void {
      writeFileSync(join(dir, "go"), "");
    },
    cleanup(): void {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function admin<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  client.on("error", () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** pg_terminate_backend on every other session of `database`, from a second connection; how many. */
export async function terminateSessions(adminUrl: string, database: string): Promise<number> {
  return admin(adminUrl, async (client) => {
    const { rows } = await client.query(
      `select count(pg_terminate_backend(pid))::int as n from pg_stat_activity
        where datname = $1 and pid <> pg_backend_pid()`,
      [database],
    );
    return rows[0].n as number;
  });
}

/** Waits until a session of `database` runs a statement matching `pattern` (ILIKE); false if the run ended first. */
export async function waitForActive(
  adminUrl: string,
  database: string,
  pattern: string,
  running: Running,
): Promise<boolean> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline && running.child.exitCode === null) {
    const n = await admin(adminUrl, async (client) => {
      const { rows } = await client.query(
        `select count(*)::int as n from pg_stat_activity
          where datname = $1 and state = 'active' and query ilike $2 and pid <> pg_backend_pid()`,
        [database, pattern],
      );
      return rows[0].n as number;
    }).catch(() => 0);
    if (n > 0) return true;
    await sleep(20);
  }
  return false;
}

/** What every failure must look like to a user: exit 1, a one-line reason, no stack trace. */
export function assertCleanFailure(run: Run, what: string): void {
  assert.equal(run.signal, null, `${what}: killed by ${run.signal}`);
  assert.equal(
    run.code,
    1,
    `${what}: exit ${run.code}\n${run.stderr.slice(-2000)}\n${run.stdout.slice(-2000)}`,
  );
  const output = `${run.stderr}\n${run.stdout}`;
  assert.doesNotMatch(output, /Unhandled 'error' event|^\s+at .+:\d+:\d+\)?$/m, `${what}: a stack trace`);
  assert.doesNotMatch(output, /"error": ?"internal"/, `${what}: reported as internal`);
}

/** The JSON result a `--json` run printed on stdout. */
export function jsonResult<T = Record<string, unknown>>(run: Run): T {
  try {
    return JSON.parse(run.stdout) as T;
  } catch {
    assert.fail(`not JSON on stdout:\n${run.stdout.slice(-2000)}\n${run.stderr.slice(-2000)}`);
  }
}

/** The database part of a URL. */
export function databaseOf(url: string): string {
  return decodeURIComponent(new URL(url).pathname.slice(1));
}

/** Host and port of a URL, as pgshift names them in connection errors. */
export function hostPortOf(url: string): string {
  const parsed = new URL(url);
  return `${parsed.hostname}:${parsed.port || 5432}`;
}

/** `records` keyed NDJSON events of ~100 bytes (`id` 0..records-1), big enough to break mid-COPY. */
export function writeEventsNdjson(path: string, records: number, filler = "x"): void {
  const lines: string[] = [];
  for (let i = 0; i < records; i++)
    lines.push(JSON.stringify({ id: i, kind: `k${i % 7}`, payload: { n: i * 3, text: filler.repeat(60) } }));
  writeFileSync(path, `${lines.join("\n")}\n`);
}

/** The document import these tests break: keyed by /id, two streams, JSON result. */
export function documentImportArgs(ndjson: string, url: string): string[] {
  return ["import", `ndjson:${ndjson}`, "--key", "/id", "--to", url, "--jobs", "2", "--json"];
}

/** Runs the document import again: it must load every record and verify identical. */
export async function assertRerunIdentical(args: readonly string[], records: number): Promise<void> {
  const again = await startCli(args).done;
  assert.equal(again.code, 0, `re-run failed:\n${tail(again.stderr)}\n${tail(again.stdout)}`);
  const result = jsonResult<{ recordsLoaded: number; verification?: { status: string } }>(again);
  assert.equal(result.recordsLoaded, records);
  assert.equal(result.verification?.status, "identical");
}

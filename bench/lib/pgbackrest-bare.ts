import { mkdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { chooseRunAs, giveTo } from "../../src/local/run-as.ts";
import { type MeasuredRun, runMeasured } from "./measure.ts";

/**
 * pgBackRest as a DBA runs it by hand, on the stanza pgshift set up: the same pgbackrest.conf, the
 * server's user, no pgshift process in between. The baseline of the backup scenario.
 */
export interface BarePgBackRest {
  /** pgbackrest.conf written by setupPgBackRest. */
  config: string;
  stanza: string;
  /** The pgpass file pgshift wrote beside it (pgbackrest connects to the server to back it up). */
  pgpass: string;
  /** The server binaries' directory (pg_ctl). */
  binDir: string;
}

const PGBACKREST = process.env.PGSHIFT_PGBACKREST ?? "pgbackrest";

function asServerUser(env: NodeJS.ProcessEnv = {}) {
  const runAs = chooseRunAs();
  return {
    runAs,
    options: {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", LC_ALL: "C", ...env },
      timeoutMs: 3 * 60 * 60_000,
      ...(runAs.uid !== undefined ? { uid: runAs.uid, gid: runAs.gid } : {}),
    },
  };
}

function pgbackrest(bare: BarePgBackRest, args: string[], env: NodeJS.ProcessEnv = {}): Promise<MeasuredRun> {
  const { options } = asServerUser(env);
  return runMeasured(
    PGBACKREST,
    [`--config=${bare.config}`, `--stanza=${bare.stanza}`, "--log-level-console=warn", ...args],
    options,
  );
}

/** `pgbackrest backup --type=full`, measured as one process tree. */
export function bareFullBackup(bare: BarePgBackRest): Promise<MeasuredRun> {
  return pgbackrest(bare, ["backup", "--type=full"], { PGPASSFILE: bare.pgpass });
}

/** `pgbackrest expire --set=LABEL` (clean-up between rounds, not measured). */
export function bareExpire(bare: BarePgBackRest, label: string): Promise<MeasuredRun> {
  return pgbackrest(bare, ["expire", `--set=${label}`]);
}

export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

export interface BareRestoreResult {
  ok: boolean;
  /** pgbackrest restore, pg_ctl start, and the wait for the end of recovery (promotion), ms. */
  restoreMs: number;
  startMs: number;
  recoveryMs: number;
  /** Restore start to the server accepting writes. */
  totalMs: number;
  /** URL of the restored server (password included: never print it). */
  url?: string;
  error?: string;
  /** Stops the server and removes the directory. */
  destroy(): Promise<void>;
}

/**
 * The bare RTO: `pgbackrest restore --pg1-path=NEW --archive-mode=off` (the latest backup, WAL to the
 * end of the archive), `pg_ctl start -w` on a free port, then wait until pg_is_in_recovery() is false:
 * the server accepts writes. `password` is the source superuser's (the restored cluster keeps its roles).
 */
export async function bareRestore(
  bare: BarePgBackRest,
  options: { dir: string; user: string; password: string; database: string },
): Promise<BareRestoreResult> {
  const { runAs, options: runOptions } = asServerUser();
  const dataDir = join(options.dir, "data");
  const socketDir = join(options.dir, "socket");
  rmSync(options.dir, { recursive: true, force: true });
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  mkdirSync(socketDir, { recursive: true });
  giveTo(runAs, options.dir);
  const pgCtl = join(bare.binDir, "pg_ctl");
  let started = false;
  const destroy = async () => {
    if (started)
      await runMeasured(pgCtl, ["stop", "-w", "-m", "immediate", "-D", dataDir], runOptions).catch(
        () => undefined,
      );
    rmSync(options.dir, { recursive: true, force: true });
  };
  const failed = (error: string, timings: Partial<BareRestoreResult>): BareRestoreResult => ({
    ok: false,
    restoreMs: 0,
    startMs: 0,
    recoveryMs: 0,
    totalMs: 0,
    ...timings,
    error,
    destroy,
  });
  const t0 = performance.now();
  const restore = await pgbackrest(bare, ["restore", `--pg1-path=${dataDir}`, "--archive-mode=off"]);
  const t1 = performance.now();
  if (restore.exitCode !== 0)
    return failed(`pgbackrest restore: exit ${restore.exitCode}: ${restore.stderr.trim().slice(-500)}`, {
      restoreMs: t1 - t0,
    });
  const port = await freePort();
  started = true;
  const start = await runMeasured(
    pgCtl,
    [
      "start",
      "-w",
      "-t",
      "3600",
      "-D",
      dataDir,
      "-l",
      join(options.dir, "postgres.log"),
      "-o",
      `-p ${port} -k ${socketDir}`,
    ],
    runOptions,
  );
  const t2 = performance.now();
  if (start.exitCode !== 0)
    return failed(`pg_ctl start: exit ${start.exitCode}: ${start.stderr.trim().slice(-500)}`, {
      restoreMs: t1 - t0,
      startMs: t2 - t1,
    });
  const url = `postgres://${encodeURIComponent(options.user)}:${encodeURIComponent(options.password)}@127.0.0.1:${port}/${encodeURIComponent(options.database)}`;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (;;) {
      const r = await client.query<{ rec: boolean }>("select pg_is_in_recovery() as rec");
      if (!r.rows[0]!.rec) break;
      if (performance.now() - t2 > 60 * 60_000)
        return failed("still in recovery after 60 min", { restoreMs: t1 - t0, startMs: t2 - t1 });
      await sleep(50);
    }
  } finally {
    await client.end();
  }
  const t3 = performance.now();
  return {
    ok: true,
    restoreMs: t1 - t0,
    startMs: t2 - t1,
    recoveryMs: t3 - t2,
    totalMs: t3 - t0,
    url,
    destroy,
  };
}

import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { PgshiftError } from "../errors.ts";
import { pgbouncerIni, pgbouncerUserlist } from "../provision/pgbouncer-config.ts";
import { giveTo, type RunAs, runAsUser } from "./run-as.ts";

const run = promisify(execFile);

/** The PgBouncer binary of the Debian package (or another distribution's /usr/bin). */
export function pgbouncerBinary(): string {
  const found = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"].find((file) => existsSync(file));
  if (!found)
    throw new PgshiftError(
      "pgbouncer_missing",
      "pgbouncer is not installed: apt-get install pgbouncer, or start without --pgbouncer",
    );
  return found;
}

export function pgbouncerDir(instanceDir: string): string {
  return join(instanceDir, "pgbouncer");
}

/** Whether the instance's PgBouncer process is alive (its pidfile names a live process). */
export function pgbouncerRunning(instanceDir: string): boolean {
  return pidOf(instanceDir) !== undefined;
}

function pidOf(instanceDir: string): number | undefined {
  const file = join(pgbouncerDir(instanceDir), "pgbouncer.pid");
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, "utf8").trim());
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM" ? pid : undefined;
  }
}

export interface PgbouncerStart {
  port: number;
  alreadyRunning: boolean;
}

/**
 * Runs PgBouncer in transaction mode in front of a running managed instance, as the server's user.
 * Users are looked up with auth_query as the superuser, the only line of the auth file; other users'
 * SCRAM secrets come from pg_shadow and their logins pass through to the server.
 */
export async function startPgbouncer(options: {
  instanceDir: string;
  adminUrl: string;
  superuser: string;
  serverPort: number;
  port: number;
  runAs: RunAs;
  serverCaFile?: string;
}): Promise<PgbouncerStart> {
  if (pidOf(options.instanceDir) !== undefined) return { port: options.port, alreadyRunning: true };
  const binary = pgbouncerBinary();
  const dir = pgbouncerDir(options.instanceDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // auth_query logs in as the superuser itself, which needs its password (a verifier cannot log in);
  // the file sits next to the instance's own password file, mode 0600 as that one
  const secret = decodeURIComponent(new URL(options.adminUrl).password);
  const { stdout } = await run(binary, ["--version"]).catch(() => ({ stdout: "" }));
  const version = /PgBouncer (\d+\.\d+(?:\.\d+)?)/.exec(stdout)?.[1];
  const ini = join(dir, "pgbouncer.ini");
  writeFileSync(join(dir, "userlist.txt"), pgbouncerUserlist([{ name: options.superuser, secret }]), {
    mode: 0o600,
  });
  writeFileSync(
    ini,
    pgbouncerIni({
      serverHost: "127.0.0.1",
      serverPort: options.serverPort,
      listenPort: options.port,
      authFile: join(dir, "userlist.txt"),
      authUser: options.superuser,
      logFile: join(dir, "pgbouncer.log"),
      pidFile: join(dir, "pgbouncer.pid"),
      ...(version ? { pgbouncerVersion: version } : {}),
      ...(options.serverCaFile ? { serverCaFile: options.serverCaFile } : {}),
    }),
  );
  giveTo(options.runAs, dir);
  const result = await runAsUser(options.runAs, binary, ["-d", "-q", ini], dir);
  if (result.code !== 0)
    throw new PgshiftError("pgbouncer_start_failed", `pgbouncer did not start: ${result.stderr.trim()}`);
  for (let i = 0; i < 50 && pidOf(options.instanceDir) === undefined; i++) await sleep(100);
  if (pidOf(options.instanceDir) === undefined)
    throw new PgshiftError(
      "pgbouncer_start_failed",
      `pgbouncer did not start; see ${join(dir, "pgbouncer.log")}`,
    );
  return { port: options.port, alreadyRunning: false };
}

/** Stops the instance's PgBouncer (SIGINT: safe shutdown), if it runs. */
export async function stopPgbouncer(instanceDir: string): Promise<void> {
  const pid = pidOf(instanceDir);
  if (pid === undefined) return;
  process.kill(pid, "SIGINT");
  for (let i = 0; i < 50 && pidOf(instanceDir) !== undefined; i++) await sleep(100);
}

import { type ChildProcess, spawn } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { pgbouncerBinary } from "../../src/local/pgbouncer.ts";
import { chooseRunAs, giveTo } from "../../src/local/run-as.ts";

/**
 * A PgBouncer 1.18 in transaction mode in front of the bench's instance, whose `[databases]` has one
 * alias pointing at one of two databases: what `refreshViaPgbouncer` switches. Listens on 127.0.0.1 only.
 */
export interface AliasBouncer {
  /** URL of the alias through PgBouncer (what applications use; no password: the bouncer trusts local clients). */
  aliasUrl: string;
  /** URL of the admin console (database `pgbouncer`). */
  adminUrl: string;
  /** The pgbouncer.ini (mode 0600: the alias line holds the server password). */
  configFile: string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

/** The alias line's libpq connection string for `database` on the server of `serverUrl`. */
function aliasTarget(serverUrl: string, database: string): string {
  const server = new URL(serverUrl);
  const user = decodeURIComponent(server.username || "postgres");
  const password = decodeURIComponent(server.password);
  const quote = (value: string) => `'${value.replace(/'/g, "''")}'`;
  return `host=${server.hostname} port=${server.port || 5432} dbname=${database} user=${user}${password ? ` password=${quote(password)}` : ""}`;
}

/**
 * Starts PgBouncer with `alias = <database>` (as the unprivileged user when we are root), with
 * PgBouncer's own default pool size (20 server connections per alias).
 */
export async function startAliasBouncer(
  serverUrl: string,
  alias: string,
  database: string,
): Promise<AliasBouncer> {
  const binary = pgbouncerBinary();
  const user = decodeURIComponent(new URL(serverUrl).username || "postgres");
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "pgshift-bench-pgbouncer-"));
  chmodSync(dir, 0o700);
  const configFile = join(dir, "pgbouncer.ini");
  const logFile = join(dir, "pgbouncer.log");
  writeFileSync(
    configFile,
    [
      "; pgshift bench: one alias, switched between two databases",
      "[databases]",
      `${alias} = ${aliasTarget(serverUrl, database)}`,
      "",
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${port}`,
      "unix_socket_dir =",
      "auth_type = trust",
      `auth_file = ${join(dir, "users.txt")}`,
      `admin_users = ${user}`,
      "pool_mode = transaction",
      "default_pool_size = 20",
      "max_client_conn = 100",
      "server_reset_query =",
      "ignore_startup_parameters = extra_float_digits,options",
      `pidfile = ${join(dir, "pgbouncer.pid")}`,
      `logfile = ${logFile}`,
      "",
    ].join("\n"),
    { mode: 0o600 },
  );
  writeFileSync(join(dir, "users.txt"), `"${user}" ""\n`, { mode: 0o600 });
  const runAs = chooseRunAs();
  giveTo(runAs, dir);
  const child: ChildProcess = spawn(binary, [configFile], {
    stdio: ["ignore", "ignore", "pipe"],
    ...(runAs.uid !== undefined ? { uid: runAs.uid, gid: runAs.gid } : {}),
  });
  let stderr = "";
  child.stderr?.on("data", (d) => {
    stderr += d;
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = (db: string) =>
    `postgres://${encodeURIComponent(user)}@127.0.0.1:${port}/${encodeURIComponent(db)}`;
  const stop = async () => {
    if (child.exitCode === null) {
      child.kill("SIGTERM");
      await Promise.race([exited, sleep(5_000)]);
      if (child.exitCode === null) child.kill("SIGKILL");
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 15_000;
  for (;;) {
    const client = new pg.Client({ connectionString: url(alias) });
    try {
      await client.connect();
      await client.query("select 1");
      await client.end();
      break;
    } catch (error) {
      await client.end().catch(() => undefined);
      if (child.exitCode !== null || Date.now() > deadline) {
        const log = existsSync(logFile) ? readFileSync(logFile, "utf8").slice(-2000) : "";
        await stop();
        throw new Error(`PgBouncer did not start: ${(error as Error).message}\n${stderr}\n${log}`);
      }
      await sleep(100);
    }
  }
  return { aliasUrl: url(alias), adminUrl: url("pgbouncer"), configFile, stop };
}

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
 * A real PgBouncer (transaction pooling) on a free loopback port, for tests and the bench. It trusts
 * loopback clients (`auth_type = trust`) and logs in to the server with the URL's own user and
 * password, written into its `[databases]` lines (the ini is mode 0600).
 */
export interface TestBouncer {
  /** URL of `database` through PgBouncer (no password: PgBouncer trusts loopback clients here). */
  url(database: string): string;
  /** URL of the admin console (database `pgbouncer`); usable with `admin: true`. */
  adminUrl: string;
  configFile: string;
  /** PgBouncer's log so far. */
  log(): string;
  stop(): Promise<void>;
}

export interface TestBouncerOptions {
  /** The server PgBouncer connects to (user and password are used for the server logins). */
  serverUrl: string;
  /** `[databases]` entries: alias -> database on the server; absent = `*` (every database by its name). */
  databases?: Record<string, string>;
  /** default_pool_size (default 4). */
  poolSize?: number;
  /** More `[pgbouncer]` settings, as ini lines. */
  extra?: string[];
  /** Make the server URL's user an admin of the console (`admin_users`); default false. */
  admin?: boolean;
  /** Comment at the top of the ini. */
  purpose?: string;
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

/** A `[databases]` line's libpq connection string for `database` (absent: any) on the server of `serverUrl`. */
export function bouncerTarget(serverUrl: string, database?: string): string {
  const server = new URL(serverUrl);
  const user = decodeURIComponent(server.username || "postgres");
  const password = decodeURIComponent(server.password);
  const quote = (value: string) => `'${value.replace(/'/g, "''")}'`;
  return [
    `host=${server.hostname} port=${server.port || 5432}`,
    ...(database ? [`dbname=${database}`] : []),
    `user=${user}`,
    ...(password ? [`password=${quote(password)}`] : []),
  ].join(" ");
}

/** Starts PgBouncer (as the unprivileged user when we are root: it refuses to run as root) and waits until it serves. */
export async function startTestBouncer(options: TestBouncerOptions): Promise<TestBouncer> {
  const binary = pgbouncerBinary();
  const server = new URL(options.serverUrl);
  const user = decodeURIComponent(server.username || "postgres");
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "pgshift-pgbouncer-"));
  chmodSync(dir, 0o700);
  const configFile = join(dir, "pgbouncer.ini");
  const logFile = join(dir, "pgbouncer.log");
  const databases = options.databases
    ? Object.entries(options.databases).map(
        ([alias, db]) => `${alias} = ${bouncerTarget(options.serverUrl, db)}`,
      )
    : [`* = ${bouncerTarget(options.serverUrl)}`];
  writeFileSync(
    configFile,
    [
      `; ${options.purpose ?? "pgshift test PgBouncer"}`,
      "[databases]",
      ...databases,
      "",
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${port}`,
      "unix_socket_dir =",
      "auth_type = trust",
      `auth_file = ${join(dir, "users.txt")}`,
      ...(options.admin ? [`admin_users = ${user}`] : []),
      "pool_mode = transaction",
      `default_pool_size = ${options.poolSize ?? 4}`,
      "max_client_conn = 100",
      "server_reset_query =",
      "ignore_startup_parameters = extra_float_digits,options",
      `pidfile = ${join(dir, "pgbouncer.pid")}`,
      `logfile = ${logFile}`,
      ...(options.extra ?? []),
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
  const url = (database: string) =>
    `postgres://${encodeURIComponent(user)}@127.0.0.1:${port}/${encodeURIComponent(database)}`;
  const log = () => (existsSync(logFile) ? readFileSync(logFile, "utf8") : "");
  const stop = async () => {
    if (child.exitCode === null) {
      child.kill("SIGTERM");
      await Promise.race([exited, sleep(5_000)]);
      if (child.exitCode === null) child.kill("SIGKILL");
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const probe = options.databases
    ? Object.keys(options.databases)[0]!
    : decodeURIComponent(server.pathname.slice(1)) || "postgres";
  const deadline = Date.now() + 15_000;
  for (;;) {
    const client = new pg.Client({ connectionString: url(probe) });
    try {
      await client.connect();
      await client.query("select 1");
      await client.end();
      break;
    } catch (error) {
      await client.end().catch(() => undefined);
      if (child.exitCode !== null || Date.now() > deadline) {
        const text = log();
        await stop();
        throw new Error(
          `PgBouncer did not start: ${(error as Error).message}\n${stderr}\n${text.slice(-2000)}`,
        );
      }
      await sleep(100);
    }
  }
  return { url, adminUrl: url("pgbouncer"), configFile, log, stop };
}

/** A {@link TestBouncer} whose `[databases]` has one alias pointing at one of two databases: what `refreshViaPgbouncer` switches. */
export interface AliasBouncer extends TestBouncer {
  /** URL of the alias through PgBouncer (what applications use). */
  aliasUrl: string;
}

/** Starts PgBouncer with `alias = <database>` on the server of `serverUrl`. */
export async function startAliasBouncer(
  serverUrl: string,
  alias: string,
  database: string,
  options: Pick<TestBouncerOptions, "poolSize" | "extra"> = {},
): Promise<AliasBouncer> {
  const bouncer = await startTestBouncer({
    serverUrl,
    databases: { [alias]: database },
    admin: true,
    purpose: "pgshift: one alias, switched between two databases",
    ...options,
  });
  return { ...bouncer, aliasUrl: bouncer.url(alias) };
}

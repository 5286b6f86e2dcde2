import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { chooseRunAs, giveTo } from "../../../src/local/run-as.ts";

/** A PgBouncer in transaction pooling mode in front of the test server, on a free loopback port. */
export interface Bouncer {
  /** URL of `database` through PgBouncer (no password: PgBouncer trusts loopback clients here). */
  url(database: string): string;
  stop(): Promise<void>;
}

export function findPgBouncer(): string {
  for (const candidate of ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer", "/usr/local/bin/pgbouncer"])
    if (existsSync(candidate)) return candidate;
  try {
    return execFileSync("which", ["pgbouncer"], { encoding: "utf8" }).trim();
  } catch {
    throw new Error(
      "pgbouncer is not installed; install it (Debian: apt-get install -y pgbouncer) to run this test",
    );
  }
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

/** Starts PgBouncer (as an unprivileged user when we are root: it refuses to run as root). */
export async function startPgBouncer(serverUrl: string): Promise<Bouncer> {
  const binary = findPgBouncer();
  const server = new URL(serverUrl);
  const user = decodeURIComponent(server.username || "postgres");
  const password = decodeURIComponent(server.password);
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "pgshift-pgbouncer-"));
  chmodSync(dir, 0o700);
  const quote = (value: string) => `'${value.replace(/'/g, "''")}'`;
  writeFileSync(
    join(dir, "pgbouncer.ini"),
    [
      "[databases]",
      `* = host=${server.hostname} port=${server.port || 5432} user=${user}${password ? ` password=${quote(password)}` : ""}`,
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${port}`,
      "unix_socket_dir =",
      "auth_type = trust",
      `auth_file = ${join(dir, "users.txt")}`,
      "pool_mode = transaction",
      "default_pool_size = 4",
      "max_client_conn = 100",
      "server_reset_query =",
      // FIFO reuse of server connections: consecutive transactions of one client land on different
      // server sessions, which is what makes session-level state unsafe behind a pooler.
      "server_round_robin = 1",
      "ignore_startup_parameters = extra_float_digits,options",
      `pidfile = ${join(dir, "pgbouncer.pid")}`,
      `logfile = ${join(dir, "pgbouncer.log")}`,
      "",
    ].join("\n"),
    { mode: 0o600 },
  );
  writeFileSync(join(dir, "users.txt"), `"${user}" ""\n`, { mode: 0o600 });
  const runAs = chooseRunAs();
  giveTo(runAs, dir);
  const child: ChildProcess = spawn(binary, [join(dir, "pgbouncer.ini")], {
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
    const client = new pg.Client({
      connectionString: url(decodeURIComponent(server.pathname.slice(1)) || "postgres"),
    });
    try {
      await client.connect();
      await client.query("select 1");
      await client.end();
      break;
    } catch (error) {
      await client.end().catch(() => undefined);
      if (child.exitCode !== null || Date.now() > deadline) {
        const log = existsSync(join(dir, "pgbouncer.log"))
          ? readFileSync(join(dir, "pgbouncer.log"), "utf8")
          : "";
        await stop();
        throw new Error(
          `PgBouncer did not start: ${(error as Error).message}\n${stderr}\n${log.slice(-2000)}`,
        );
      }
      await sleep(100);
    }
  }
  return { url, stop };
}

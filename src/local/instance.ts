import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { PgshiftError } from "../errors.ts";
import { findPgBinaries, type PgBinaries } from "./binaries.ts";
import { assertReachable, chooseRunAs, giveTo, type RunAs, runAsUser } from "./run-as.ts";
import { pgbouncerRunning, startPgbouncer, stopPgbouncer } from "./pgbouncer.ts";
import { caFile, ensureTlsFiles, hostsslOnly, TLS_SETTINGS } from "./tls.ts";

/**
 * The managed instance's superuser. Not "pgshift": with the default search_path ("$user", public) a role
 * named like pgshift's internal schema would put every unqualified table into that schema.
 */
export const LOCAL_SUPERUSER = "postgres";
/** What instances created before the rename use (instance.json without `superuser`). */
const LEGACY_SUPERUSER = "pgshift";
export const LOCAL_DATABASE = "postgres";

export interface LocalInstanceOptions {
  /** Instance name; data lives in `<baseDir>/<name>/`. */
  name?: string;
  /** Make a CA and server certificate on first start and accept TLS connections only (kept once on). */
  tls?: boolean;
  /** Run PgBouncer (transaction mode) in front of the instance on its own port (kept once on). */
  pgbouncer?: boolean;
  /** Default `.pgshift/local` under the working directory. */
  baseDir?: string;
  /** Non-durable, faster settings (fsync off): for test runs, never for user data. */
  ephemeral?: boolean;
  env?: NodeJS.ProcessEnv;
  /** Binaries to use when creating the instance; default: findPgBinaries(). */
  binaries?: PgBinaries;
}

export type LocalState = "running" | "stopped" | "absent";

export interface LocalInstanceStatus {
  name: string;
  state: LocalState;
  dir: string;
  dataDir: string;
  logFile: string;
  port?: number;
  pid?: number;
  version?: string;
  binDir?: string;
  binarySource?: string;
  runAs?: string;
  /** Connection URL with the password redacted. */
  url?: string;
  /** TLS only (hostssl), verified against the instance's CA. */
  tls?: boolean;
  /** PgBouncer's port (transaction pooling), when it runs. */
  pgbouncerPort?: number;
}

export interface StartResult {
  status: LocalInstanceStatus;
  created: boolean;
  alreadyRunning: boolean;
  recoveredStaleLock: boolean;
}

interface InstanceFile {
  name: string;
  superuser?: string;
  port: number;
  binDir: string;
  binarySource: string;
  version: string;
  runAs: string;
  ephemeral: boolean;
  createdAt: string;
  /** TCP connections must use TLS; the URL carries sslmode=verify-full and the CA. */
  tls?: boolean;
  /** PgBouncer's port, when it runs in front of the instance. */
  pgbouncerPort?: number;
}

interface Paths {
  name: string;
  dir: string;
  dataDir: string;
  logDir: string;
  logFile: string;
  instanceFile: string;
  passwordFile: string;
  lockFile: string;
}

function pathsFor(options: LocalInstanceOptions): Paths {
  const name = options.name ?? "default";
  if (!/^[A-Za-z0-9_-]{1,40}$/.test(name)) {
    throw new PgshiftError("usage", `instance name "${name}" may contain only letters, digits, '-' and '_'`, {
      exitCode: 2,
    });
  }
  const dir = resolve(options.baseDir ?? ".pgshift/local", name);
  return {
    name,
    dir,
    dataDir: join(dir, "data"),
    logDir: join(dir, "log"),
    logFile: join(dir, "log", "postgres.log"),
    instanceFile: join(dir, "instance.json"),
    passwordFile: join(dir, "password"),
    lockFile: `${dir}.lock`,
  };
}

function readInstance(paths: Paths): InstanceFile | undefined {
  if (!existsSync(paths.instanceFile)) return undefined;
  return JSON.parse(readFileSync(paths.instanceFile, "utf8")) as InstanceFile;
}

function writeInstance(paths: Paths, data: InstanceFile): void {
  writeFileSync(paths.instanceFile, `${JSON.stringify(data, null, 2)}\n`);
}

function buildUrl(instance: InstanceFile, password: string | undefined, paths: Paths): string {
  const user = instance.superuser ?? LEGACY_SUPERUSER;
  const auth = password === undefined ? user : `${user}:${encodeURIComponent(password)}`;
  const tls = instance.tls ? `?sslmode=verify-full&sslrootcert=${encodeURIComponent(caFile(paths.dir))}` : "";
  return `postgres://${auth}@127.0.0.1:${instance.port}/${LOCAL_DATABASE}${tls}`;
}

async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolvePort) => {
    const server = createServer();
    server.once("error", () => resolvePort(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolvePort(true)));
  });
}

async function freePort(): Promise<number> {
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

/** pg_stat_statements' library, where the server's build keeps its modules (system or embedded layout). */
function hasStatementsLibrary(binDir: string): boolean {
  return ["lib", join("lib", "postgresql")].some((dir) =>
    existsSync(join(binDir, "..", dir, "pg_stat_statements.so")),
  );
}

function serverSettings(port: number, ephemeral: boolean, binDir: string): string {
  const lines = [
    "# written by pgshift at every start; edit postgresql.conf for your own settings",
    "listen_addresses = '127.0.0.1'",
    `port = ${port}`,
    "unix_socket_directories = ''",
    "max_connections = 200",
    "shared_buffers = '256MB'",
    "max_wal_size = '4GB'",
    "maintenance_work_mem = '256MB'",
    "password_encryption = 'scram-sha-256'",
  ];
  // slow-query monitoring (pgshift check lists the slowest statements); only when the build has it,
  // else the server would not start
  if (hasStatementsLibrary(binDir)) lines.push("shared_preload_libraries = 'pg_stat_statements'");
  if (ephemeral) lines.push("fsync = off", "synchronous_commit = off", "full_page_writes = off");
  return `${lines.join("\n")}\n`;
}

function pidFromFile(dataDir: string): number | undefined {
  try {
    const first = readFileSync(join(dataDir, "postmaster.pid"), "utf8").split("\n")[0];
    const pid = Number(first);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function isPostgresProcess(pid: number): boolean {
  if (isZombie(pid)) return false;
  try {
    return /postgres/.test(readFileSync(`/proc/${pid}/cmdline`, "utf8"));
  } catch {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  }
}

function logTail(paths: Paths, lines = 15): string {
  try {
    return readFileSync(paths.logFile, "utf8").trim().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

/** Serializes start/stop/destroy of one instance across processes with an exclusive lock file. */
async function withInstanceLock<T>(paths: Paths, fn: () => Promise<T>): Promise<T> {
  mkdirSync(resolve(paths.dir, ".."), { recursive: true });
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      writeFileSync(paths.lockFile, String(process.pid), { flag: "wx" });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const holder = Number(readFileSync(paths.lockFile, "utf8") || 0);
      let alive = false;
      try {
        if (holder > 0) {
          process.kill(holder, 0);
          alive = true;
        }
      } catch {
        alive = false;
      }
      if (!alive) {
        rmSync(paths.lockFile, { force: true });
        continue;
      }
      if (Date.now() > deadline) {
        throw new PgshiftError(
          "local_busy",
          `instance ${paths.name} is being changed by process ${holder}; try again when it finishes`,
        );
      }
      await sleep(100);
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(paths.lockFile, { force: true });
  }
}

/** A killed process that nobody reaped (containers whose PID 1 does not reap) still answers kill(pid, 0). */
function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return false;
  }
}

async function isRunning(runAs: RunAs, binDir: string, paths: Paths): Promise<boolean> {
  if (!existsSync(join(paths.dataDir, "PG_VERSION"))) return false;
  const result = await runAsUser(runAs, join(binDir, "pg_ctl"), ["status", "-D", paths.dataDir], paths.dir);
  if (result.code !== 0) return false;
  const pid = pidFromFile(paths.dataDir);
  return pid === undefined || !isZombie(pid);
}

async function initialize(
  paths: Paths,
  runAs: RunAs,
  binaries: PgBinaries,
  ephemeral: boolean,
): Promise<void> {
  mkdirSync(paths.logDir, { recursive: true });
  mkdirSync(paths.dataDir, { recursive: true, mode: 0o700 });
  const password = randomBytes(18).toString("hex");
  writeFileSync(paths.passwordFile, `${password}\n`, { mode: 0o600 });
  const pwfile = join(paths.logDir, `.initdb-pw-${process.pid}`);
  writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  giveTo(runAs, paths.dataDir);
  giveTo(runAs, paths.logDir);
  assertReachable(runAs, paths.dataDir);
  try {
    const args = [
      "-D",
      paths.dataDir,
      "-U",
      LOCAL_SUPERUSER,
      "--pwfile",
      pwfile,
      "--auth-host=scram-sha-256",
      "--auth-local=scram-sha-256",
      "-E",
      "UTF8",
      "--locale=C",
    ];
    if (ephemeral) args.push("--no-sync");
    const result = await runAsUser(runAs, join(binaries.binDir, "initdb"), args, paths.dir);
    if (result.code !== 0) {
      throw new PgshiftError(
        "local_initdb_failed",
        `initdb failed for instance ${paths.name}:\n${result.stderr.trim() || result.stdout.trim()}`,
      );
    }
  } finally {
    rmSync(pwfile, { force: true });
  }
  const conf = join(paths.dataDir, "postgresql.conf");
  writeFileSync(conf, `${readFileSync(conf, "utf8")}\ninclude_if_exists = 'pgshift.conf'\n`);
  giveTo(runAs, conf);
}

function readPassword(paths: Paths): string {
  return readFileSync(paths.passwordFile, "utf8").trim();
}

async function createExtensions(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  // the awaited calls reject with any error; without a listener, one arriving between them (the
  // server going away) would be an unhandled 'error' event that ends the process
  client.on("error", () => undefined);
  await client.connect();
  try {
    await client.query("create extension if not exists pgcrypto; create extension if not exists pg_trgm");
    const statements = await client.query(
      "select 1 from pg_available_extensions where name = 'pg_stat_statements' and current_setting('shared_preload_libraries') ~ 'pg_stat_statements'",
    );
    if (statements.rowCount) await client.query("create extension if not exists pg_stat_statements");
  } finally {
    await client.end();
  }
}

/**
 * Starts (creating it on first use) a managed PostgreSQL instance on a free loopback port.
 * Reuses a running one; recovers from a crash (stale postmaster.pid) by starting again.
 */
export async function startLocalInstance(options: LocalInstanceOptions = {}): Promise<StartResult> {
  const paths = pathsFor(options);
  return withInstanceLock(paths, async () => {
    const runAs = chooseRunAs(options.env);
    let instance = readInstance(paths);
    let created = false;
    if (!instance || !existsSync(join(paths.dataDir, "PG_VERSION"))) {
      const binaries = options.binaries ?? findPgBinaries(options.env);
      rmSync(paths.dir, { recursive: true, force: true });
      mkdirSync(paths.dir, { recursive: true });
      await initialize(paths, runAs, binaries, options.ephemeral ?? false);
      instance = {
        name: paths.name,
        superuser: LOCAL_SUPERUSER,
        port: await freePort(),
        binDir: binaries.binDir,
        binarySource: binaries.source,
        version: binaries.version,
        runAs: runAs.user,
        ephemeral: options.ephemeral ?? false,
        createdAt: new Date().toISOString(),
      };
      writeInstance(paths, instance);
      created = true;
    }
    if (!existsSync(join(instance.binDir, "pg_ctl"))) {
      throw new PgshiftError(
        "pg_binaries",
        `instance ${paths.name} was created with binaries in ${instance.binDir}, which are gone; reinstall PostgreSQL ${instance.version} or destroy the instance`,
      );
    }
    if (await isRunning(runAs, instance.binDir, paths)) {
      if (options.tls && !instance.tls)
        throw new PgshiftError(
          "usage",
          `instance ${paths.name} is running without TLS; stop it (pgshift local stop) and start it with --tls`,
          { exitCode: 2 },
        );
      await withPgbouncer(paths, instance, runAs, options);
      return { status: await statusOf(paths), created, alreadyRunning: true, recoveredStaleLock: false };
    }
    if (options.tls && !instance.tls) {
      instance.tls = true;
      writeInstance(paths, instance);
    }
    if (instance.tls) {
      await ensureTlsFiles(paths.dir, paths.dataDir, runAs);
      const hba = join(paths.dataDir, "pg_hba.conf");
      writeFileSync(hba, hostsslOnly(readFileSync(hba, "utf8")));
    }
    if (!(await portIsFree(instance.port))) {
      instance.port = await freePort();
      writeInstance(paths, instance);
    }
    const settingsFile = join(paths.dataDir, "pgshift.conf");
    writeFileSync(
      settingsFile,
      serverSettings(instance.port, instance.ephemeral, instance.binDir) +
        (instance.tls ? `${TLS_SETTINGS.join("\n")}\n` : ""),
    );
    giveTo(runAs, settingsFile);
    let recoveredStaleLock = false;
    const pgCtlStart = () =>
      runAsUser(
        runAs,
        join(instance.binDir, "pg_ctl"),
        ["start", "-w", "-t", "90", "-D", paths.dataDir, "-l", paths.logFile],
        paths.dir,
      );
    let result = await pgCtlStart();
    if (result.code !== 0) {
      // A crash can leave postmaster.pid naming a PID that now belongs to another process.
      const stalePid = pidFromFile(paths.dataDir);
      if (stalePid !== undefined && !isPostgresProcess(stalePid)) {
        unlinkSync(join(paths.dataDir, "postmaster.pid"));
        recoveredStaleLock = true;
        result = await pgCtlStart();
      }
    }
    if (result.code !== 0) {
      throw new PgshiftError(
        "local_start_failed",
        `could not start instance ${paths.name} (log: ${paths.logFile}):\n${logTail(paths) || result.stderr.trim()}`,
      );
    }
    if (created) await createExtensions(buildUrl(instance, readPassword(paths), paths));
    await withPgbouncer(paths, instance, runAs, options);
    return { status: await statusOf(paths), created, alreadyRunning: false, recoveredStaleLock };
  });
}

/** Starts PgBouncer in front of the running instance when asked now or before (the port is kept). */
async function withPgbouncer(
  paths: Paths,
  instance: InstanceFile,
  runAs: RunAs,
  options: LocalInstanceOptions,
): Promise<void> {
  if (!options.pgbouncer && !instance.pgbouncerPort) return;
  if (
    !instance.pgbouncerPort ||
    (!pgbouncerRunning(paths.dir) && !(await portIsFree(instance.pgbouncerPort)))
  ) {
    instance.pgbouncerPort = await freePort();
    writeInstance(paths, instance);
  }
  await startPgbouncer({
    instanceDir: paths.dir,
    adminUrl: buildUrl(instance, readPassword(paths), paths),
    superuser: instance.superuser ?? LEGACY_SUPERUSER,
    serverPort: instance.port,
    port: instance.pgbouncerPort,
    runAs,
    ...(instance.tls ? { serverCaFile: caFile(paths.dir) } : {}),
  });
}

/** The URL through the instance's PgBouncer (transaction pooling), password included: never for logs. */
export function localPgbouncerUrl(options: LocalInstanceOptions = {}): string {
  const paths = pathsFor(options);
  const instance = readInstance(paths);
  if (!instance?.pgbouncerPort)
    throw new PgshiftError(
      "local_no_pgbouncer",
      `instance ${paths.name} has no PgBouncer; start it with \`pgshift local start --pgbouncer\``,
    );
  const user = instance.superuser ?? LEGACY_SUPERUSER;
  return `postgres://${user}:${encodeURIComponent(readPassword(paths))}@127.0.0.1:${instance.pgbouncerPort}/${LOCAL_DATABASE}`;
}

/** Stops the instance (fast shutdown: open transactions are rolled back, data is kept). */
export async function stopLocalInstance(options: LocalInstanceOptions = {}): Promise<LocalInstanceStatus> {
  const paths = pathsFor(options);
  return withInstanceLock(paths, async () => {
    const instance = readInstance(paths);
    if (!instance) return statusOf(paths);
    const runAs = chooseRunAs(options.env);
    await stopPgbouncer(paths.dir);
    if (await isRunning(runAs, instance.binDir, paths)) {
      const result = await runAsUser(
        runAs,
        join(instance.binDir, "pg_ctl"),
        ["stop", "-w", "-m", "fast", "-D", paths.dataDir],
        paths.dir,
      );
      if (result.code !== 0) {
        throw new PgshiftError(
          "local_stop_failed",
          `could not stop instance ${paths.name}: ${result.stderr.trim()}`,
        );
      }
    }
    return statusOf(paths);
  });
}

async function statusOf(paths: Paths): Promise<LocalInstanceStatus> {
  const base = { name: paths.name, dir: paths.dir, dataDir: paths.dataDir, logFile: paths.logFile };
  const instance = readInstance(paths);
  if (!instance) return { ...base, state: "absent" };
  const runAs = chooseRunAs();
  const running = await isRunning(runAs, instance.binDir, paths);
  const pid = running ? pidFromFile(paths.dataDir) : undefined;
  return {
    ...base,
    state: running ? "running" : "stopped",
    port: instance.port,
    ...(pid !== undefined ? { pid } : {}),
    version: instance.version,
    binDir: instance.binDir,
    binarySource: instance.binarySource,
    runAs: instance.runAs,
    url: buildUrl(instance, "********", paths),
    ...(instance.tls ? { tls: true } : {}),
    ...(instance.pgbouncerPort ? { pgbouncerPort: instance.pgbouncerPort } : {}),
  };
}

export async function localInstanceStatus(options: LocalInstanceOptions = {}): Promise<LocalInstanceStatus> {
  return statusOf(pathsFor(options));
}

/** The full connection URL, password included: for `pgshift local url` and for connecting, never for logs. */
export function localInstanceUrl(options: LocalInstanceOptions = {}): string {
  const paths = pathsFor(options);
  const instance = readInstance(paths);
  if (!instance) {
    throw new PgshiftError(
      "local_absent",
      `no managed instance named ${paths.name}; start it with \`pgshift local start --name ${paths.name}\``,
    );
  }
  return buildUrl(instance, readPassword(paths), paths);
}

/**
 * Sets the superuser password pgshift connects with, without touching the server: for an instance
 * whose data directory was replaced by a restored backup, where the superuser has the source's password.
 */
export function setLocalInstancePassword(options: LocalInstanceOptions, password: string): void {
  const paths = pathsFor(options);
  if (!readInstance(paths)) {
    throw new PgshiftError("local_absent", `no managed instance named ${paths.name}`);
  }
  writeFileSync(paths.passwordFile, `${password}\n`, { mode: 0o600 });
}

/** Stops the instance and deletes its data directory. */
export async function destroyLocalInstance(options: LocalInstanceOptions = {}): Promise<LocalInstanceStatus> {
  const paths = pathsFor(options);
  await stopLocalInstance(options);
  return withInstanceLock(paths, async () => {
    rmSync(paths.dir, { recursive: true, force: true });
    return statusOf(paths);
  });
}

/** Starts the named instance if needed and returns its URL: the embedded default target. */
export async function ensureLocalInstance(
  options: LocalInstanceOptions = {},
): Promise<{ url: string; start: StartResult }> {
  const start = await startLocalInstance(options);
  return { url: localInstanceUrl(options), start };
}

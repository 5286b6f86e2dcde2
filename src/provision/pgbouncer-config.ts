/** What pgbouncer.ini says, for one PostgreSQL server behind one PgBouncer in transaction mode. */
export interface PgbouncerConfigOptions {
  /** The PostgreSQL server PgBouncer connects to. */
  serverHost: string;
  serverPort: number;
  listenAddr?: string;
  listenPort: number;
  /** auth_file, relative to the ini file or absolute. */
  authFile: string;
  /**
   * A superuser (or a role allowed to read pg_shadow) whose password is in authFile: other users are then
   * looked up with auth_query. Absent: only the users listed in authFile may log in.
   */
  authUser?: string;
  logFile: string;
  pidFile: string;
  /** Server connections per database/user pair (default 20). */
  defaultPoolSize?: number;
  maxClientConn?: number;
  /** PgBouncer's version: `max_prepared_statements` (named prepared statements in transaction mode) needs 1.21. */
  pgbouncerVersion?: string;
  /** TLS to the server, verified against this CA (the server accepts hostssl only). */
  serverCaFile?: string;
}

function atLeast(version: string | undefined, major: number, minor: number): boolean {
  const match = /^(\d+)\.(\d+)/.exec(version ?? "");
  if (!match) return false;
  const [maj, min] = [Number(match[1]), Number(match[2])];
  return maj > major || (maj === major && min >= minor);
}

/** pgbouncer.ini text: transaction pooling, SCRAM, every database forwarded, users looked up by auth_query. */
export function pgbouncerIni(options: PgbouncerConfigOptions): string {
  const lines = [
    "; written by pgshift",
    "[databases]",
    `* = host=${options.serverHost} port=${options.serverPort}`,
    "",
    "[pgbouncer]",
    `listen_addr = ${options.listenAddr ?? "127.0.0.1"}`,
    `listen_port = ${options.listenPort}`,
    "unix_socket_dir =",
    "pool_mode = transaction",
    "auth_type = scram-sha-256",
    `auth_file = ${options.authFile}`,
    ...(options.authUser
      ? [
          `auth_user = ${options.authUser}`,
          "auth_query = SELECT usename, passwd FROM pg_shadow WHERE usename = $1",
        ]
      : []),
    `default_pool_size = ${options.defaultPoolSize ?? 20}`,
    `max_client_conn = ${options.maxClientConn ?? 200}`,
    // node-postgres and most drivers send these; PgBouncer refuses unknown startup parameters otherwise
    "ignore_startup_parameters = extra_float_digits,options,statement_timeout,lock_timeout,idle_in_transaction_session_timeout",
    `logfile = ${options.logFile}`,
    `pidfile = ${options.pidFile}`,
  ];
  if (atLeast(options.pgbouncerVersion, 1, 21)) lines.push("max_prepared_statements = 200");
  if (options.serverCaFile)
    lines.push("server_tls_sslmode = verify-full", `server_tls_ca_file = ${options.serverCaFile}`);
  return `${lines.join("\n")}\n`;
}

/** An auth_file line per user: `"name" "SCRAM-SHA-256$..."` (double quotes doubled). */
export function pgbouncerUserlist(users: readonly { name: string; secret: string }[]): string {
  const quote = (text: string) => `"${text.replace(/"/g, '""')}"`;
  return users.map((u) => `${quote(u.name)} ${quote(u.secret)}\n`).join("");
}

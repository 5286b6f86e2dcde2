import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type pg from "pg";
import { UsageError } from "../errors.ts";
import { targetOf, withClient } from "../pg/pool.ts";
import { pgbouncerIni, pgbouncerUserlist } from "./pgbouncer-config.ts";

export interface PgbouncerFilesOptions {
  /** A superuser pool on the target: the users' SCRAM verifiers are read from pg_authid. */
  pool: pg.Pool;
  /** Directory for pgbouncer.ini and userlist.txt (created). */
  dir: string;
  /** Roles that may log in through PgBouncer. */
  users: readonly string[];
  listenPort?: number;
  listenAddr?: string;
  defaultPoolSize?: number;
  pgbouncerVersion?: string;
}

export interface PgbouncerFilesResult {
  ini: string;
  authFile: string;
  users: string[];
  server: { host: string; port: number };
}

/**
 * pgbouncer.ini (transaction mode) and its auth file for a target: each listed user's SCRAM verifier, as
 * the server stores it, so PgBouncer checks clients and passes their SCRAM login through. No password is
 * read or written; the auth file is mode 0600.
 */
export async function writePgbouncerFiles(options: PgbouncerFilesOptions): Promise<PgbouncerFilesResult> {
  if (options.users.length === 0)
    throw new UsageError("name the roles that log in through PgBouncer: --users a,b");
  const rows = await withClient(options.pool, async (client) => {
    const result = await client.query<{ rolname: string; rolpassword: string | null }>(
      "select rolname, rolpassword from pg_authid where rolname = any($1::text[])",
      [options.users],
    );
    return result.rows;
  });
  const secrets = new Map(rows.map((r) => [r.rolname, r.rolpassword]));
  const missing = options.users.filter((u) => !secrets.has(u));
  if (missing.length) throw new UsageError(`no such role on the target: ${missing.join(", ")}`);
  const notScram = options.users.filter((u) => !secrets.get(u)?.startsWith("SCRAM-SHA-256$"));
  if (notScram.length)
    throw new UsageError(
      `these roles have no SCRAM-SHA-256 password, which PgBouncer needs to pass logins through: ${notScram.join(", ")} (set password_encryption = 'scram-sha-256' and reset their passwords)`,
    );
  const dir = resolve(options.dir);
  mkdirSync(dir, { recursive: true });
  const target = targetOf(options.pool);
  const authFile = join(dir, "userlist.txt");
  writeFileSync(
    authFile,
    pgbouncerUserlist(options.users.map((name) => ({ name, secret: secrets.get(name)! }))),
    {
      mode: 0o600,
    },
  );
  chmodSync(authFile, 0o600);
  const ini = join(dir, "pgbouncer.ini");
  writeFileSync(
    ini,
    pgbouncerIni({
      serverHost: target.host,
      serverPort: target.port,
      listenPort: options.listenPort ?? 6432,
      ...(options.listenAddr ? { listenAddr: options.listenAddr } : {}),
      authFile,
      logFile: join(dir, "pgbouncer.log"),
      pidFile: join(dir, "pgbouncer.pid"),
      ...(options.defaultPoolSize ? { defaultPoolSize: options.defaultPoolSize } : {}),
      ...(options.pgbouncerVersion ? { pgbouncerVersion: options.pgbouncerVersion } : {}),
    }),
  );
  return { ini, authFile, users: [...options.users], server: { host: target.host, port: target.port } };
}

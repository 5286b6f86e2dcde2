import pg from "pg";
import { redactUrl } from "../config/redact.ts";
import { ConnectionError, toPgError } from "./errors.ts";

export interface PoolOptions {
  /** A libpq-style connection URL. */
  url: string;
  max?: number;
  /** Per-session `lock_timeout` in milliseconds (0 = none). */
  lockTimeoutMs?: number;
  /** Per-session `statement_timeout` in milliseconds (0 = none). */
  statementTimeoutMs?: number;
  connectTimeoutMs?: number;
  applicationName?: string;
}

/** What a pool points at, without the password: safe to log, print and put in reports. */
export interface TargetIdentity {
  url: string;
  host: string;
  port: number;
  database: string;
  user: string;
}

const identities = new WeakMap<pg.Pool, TargetIdentity & { secret: string }>();

export function describeTarget(url: string): TargetIdentity {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { url: redactUrl(url), host: "", port: 5432, database: "", user: "" };
  }
  return {
    url: redactUrl(url),
    host: decodeURIComponent(parsed.hostname || parsed.searchParams.get("host") || "localhost"),
    port: Number(parsed.port || 5432),
    database: decodeURIComponent(parsed.pathname.replace(/^\//, "")),
    user: decodeURIComponent(parsed.username),
  };
}

function passwordOf(url: string): string {
  try {
    return decodeURIComponent(new URL(url).password);
  } catch {
    return "";
  }
}

/** A pg.Pool with pgshift's session settings; errors from idle clients are absorbed (the next use reconnects). */
export function createPool(options: PoolOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.max ?? 10,
    application_name: options.applicationName ?? "pgshift",
    connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
    idleTimeoutMillis: 10_000,
    ...(options.lockTimeoutMs ? { lock_timeout: options.lockTimeoutMs } : {}),
    ...(options.statementTimeoutMs ? { statement_timeout: options.statementTimeoutMs } : {}),
  });
  pool.on("error", () => {
    // An idle client lost its connection (server restart, network). pg removes it from the pool;
    // the next checkout opens a new one. Nothing to report here: callers see errors on their own queries.
  });
  identities.set(pool, { ...describeTarget(options.url), secret: passwordOf(options.url) });
  return pool;
}

/** The redacted identity of a pool made by createPool (a user's own Pool reports what pg knows). */
export function targetOf(pool: pg.Pool): TargetIdentity {
  const known = identities.get(pool);
  if (known) {
    const { secret: _secret, ...identity } = known;
    return identity;
  }
  const o = pool.options as { host?: string; port?: number; database?: string; user?: string };
  const host = o.host ?? "localhost";
  const port = o.port ?? 5432;
  const database = o.database ?? "";
  const user = o.user ?? "";
  return { url: `postgres://${user}@${host}:${port}/${database}`, host, port, database, user };
}

/** Secrets to scrub from any message derived from this pool's errors. */
export function secretsOf(pool: pg.Pool): string[] {
  const secret = identities.get(pool)?.secret;
  return secret ? [secret] : [];
}

async function connect(pool: pg.Pool): Promise<pg.PoolClient> {
  try {
    return await pool.connect();
  } catch (error) {
    const target = targetOf(pool);
    const reason = toPgError(error, secretsOf(pool));
    const text = reason instanceof Error ? reason.message : String(reason);
    throw new ConnectionError(
      `could not connect to ${target.host}:${target.port}/${target.database} as ${target.user || "(default user)"}: ${text}; check --to, DATABASE_URL or PG* settings`,
      reason,
      { target: target.url },
    );
  }
}

/** Checks out a client, runs `fn`, always releases it (destroying it if `fn` broke the connection). */
export async function withClient<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await connect(pool);
  let broken: Error | undefined;
  try {
    return await fn(client);
  } catch (error) {
    if (error instanceof Error && /Connection terminated|not queryable/i.test(error.message)) broken = error;
    throw toPgError(error, secretsOf(pool));
  } finally {
    client.release(broken);
  }
}

export interface TransactionOptions {
  isolation?: "read committed" | "repeatable read" | "serializable";
  readOnly?: boolean;
}

/** BEGIN, run `fn`, COMMIT; ROLLBACK on any error, which is rethrown. */
export async function withTransaction<T>(
  pool: pg.Pool,
  fn: (client: pg.PoolClient) => Promise<T>,
  options: TransactionOptions = {},
): Promise<T> {
  return withClient(pool, (client) => inTransaction(client, fn, options));
}

/** The same on a client the caller already holds. */
export async function inTransaction<T>(
  client: pg.ClientBase,
  fn: (client: pg.ClientBase & pg.PoolClient) => Promise<T>,
  options: TransactionOptions = {},
): Promise<T> {
  const mode = [
    options.isolation ? `isolation level ${options.isolation}` : "",
    options.readOnly ? "read only" : "",
  ]
    .filter(Boolean)
    .join(" ");
  await client.query(`begin${mode ? ` ${mode}` : ""}`);
  try {
    const result = await fn(client as pg.ClientBase & pg.PoolClient);
    await client.query("commit");
    return result;
  } catch (error) {
    await client.query("rollback").catch(() => undefined);
    throw error;
  }
}

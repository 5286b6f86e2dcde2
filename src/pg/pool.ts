import pg from "pg";
import { redactUrl } from "../config/redact.ts";
import { PgshiftError } from "../errors.ts";
import { type BreakerMetrics, CircuitBreaker, CircuitOpenError } from "./circuit-breaker.ts";
import {
  ConnectionError,
  ConnectionLostError,
  isConnectionLost,
  PgError,
  sqlstateOf,
  toPgError,
} from "./errors.ts";
import { withRetry } from "./retry.ts";

export interface PoolOptions {
  /** A libpq-style connection URL. */
  url: string;
  max?: number;
  /** Per-session `lock_timeout` in milliseconds (0 = none). */
  lockTimeoutMs?: number;
  /** Per-session `statement_timeout` in milliseconds (0 = none). */
  statementTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** Per-session `idle_in_transaction_session_timeout` in milliseconds (0 = none). */
  idleInTransactionTimeoutMs?: number;
  applicationName?: string;
  /**
   * Retries of a checkout that failed with a connection error (refused, reset, server starting
   * or shutting down), with capped, jittered backoff; never of a bad password or a missing database.
   * Default `{ retries: 2, baseDelayMs: 100, maxDelayMs: 1000 }`; `false` disables.
   */
  retry?: false | { retries?: number; baseDelayMs?: number; maxDelayMs?: number };
  /**
   * After `failureThreshold` consecutive connection failures (default 5) checkouts fail at once with a
   * CircuitOpenError for `coolDownMs` (default 2000); then one probe connects, and its success closes the
   * breaker. `false` disables.
   */
  breaker?: false | { failureThreshold?: number; coolDownMs?: number; now?: () => number };
}

/** What a pool made by createPool did: connection attempts, failures, breaker state. */
export interface PoolMetrics extends BreakerMetrics {
  /** Connections the pool tried to open (retries and probes included; reuses of idle ones are not). */
  connectAttempts: number;
  /** Checkouts that gave up: no free connection within connectTimeoutMs, or a connect that timed out. */
  checkoutTimeouts: number;
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
const poolMetrics = new WeakMap<pg.Pool, () => PoolMetrics>();

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

/**
 * Every client pgshift checks out gets an 'error' listener: pg emits 'error' on a client whose connection
 * drops (terminated backend, server restart, EPIPE/ECONNRESET) even while a query is running, and an
 * unhandled 'error' event kills the process with a stack trace. The running query fails with the same
 * error, which is where callers see and handle it; the listener only records that the client is broken,
 * so that its release destroys it instead of handing a dead connection to the next user.
 */
const guarded = new WeakSet<pg.ClientBase>();
const broken = new WeakSet<pg.ClientBase>();

export function guardClient(client: pg.ClientBase): void {
  if (guarded.has(client)) return;
  guarded.add(client);
  client.on("error", () => {
    broken.add(client);
  });
}

/** True when this client lost its connection (its 'error' event fired). */
export function isBroken(client: pg.ClientBase): boolean {
  return broken.has(client);
}

/**
 * A pg.Pool with pgshift's session settings; errors from idle clients are absorbed (the next use reconnects).
 * Its connect() (which pool.query uses too) retries connection errors and goes through a circuit breaker,
 * so an outage costs a probe per cool-down instead of a reconnect storm; `poolMetricsOf(pool)` reads it.
 */
export function createPool(options: PoolOptions): pg.Pool {
  const target = describeTarget(options.url);
  const attempts = { count: 0 };
  // Counts every connection pg's pool opens, which is what a reconnect storm is made of.
  class CountingClient extends pg.Client {
    override connect(...args: unknown[]): never {
      attempts.count += 1;
      return (super.connect as (...a: unknown[]) => never)(...args);
    }
  }
  const pool = new pg.Pool({
    connectionString: options.url,
    Client: CountingClient,
    max: options.max ?? 10,
    application_name: options.applicationName ?? "pgshift",
    connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
    idleTimeoutMillis: 10_000,
    ...(options.lockTimeoutMs ? { lock_timeout: options.lockTimeoutMs } : {}),
    ...(options.statementTimeoutMs ? { statement_timeout: options.statementTimeoutMs } : {}),
    ...(options.idleInTransactionTimeoutMs
      ? { idle_in_transaction_session_timeout: options.idleInTransactionTimeoutMs }
      : {}),
  });
  pool.on("connect", (client) => guardClient(client));
  pool.on("error", () => {
    // An idle client lost its connection (server restart, network). pg removes it from the pool;
    // the next checkout opens a new one. Nothing to report here: callers see errors on their own queries.
  });
  identities.set(pool, { ...target, secret: passwordOf(options.url) });
  const breaker =
    options.breaker === false
      ? undefined
      : new CircuitBreaker({ ...options.breaker, host: target.host, port: target.port });
  const timeouts = { count: 0 };
  hardenConnect(pool, breaker, options.retry, () => (timeouts.count += 1));
  const idle = { state: "closed" as const, admitted: 0, connectFailures: 0, rejected: 0, opened: 0 };
  poolMetrics.set(pool, () => ({
    ...(breaker?.metrics() ?? { ...idle, consecutiveFailures: 0 }),
    connectAttempts: attempts.count,
    checkoutTimeouts: timeouts.count,
  }));
  return pool;
}

/** Connection attempts, failures and breaker state of a pool made by createPool (undefined for others). */
export function poolMetricsOf(pool: pg.Pool): PoolMetrics | undefined {
  return poolMetrics.get(pool)?.();
}

/** A failure to reach the server (as opposed to one it answered, such as a bad password). */
export function isConnectionFailure(error: unknown): boolean {
  if (error instanceof CircuitOpenError) return false;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === "string" && CONNECT_ERRNOS.has(code)) return true;
  return isConnectionLost(error);
}

/** A connect that already waited its whole deadline: retrying it would multiply the caller's wait. */
const isConnectTimeout = (error: unknown): boolean =>
  error instanceof Error && /due to connection timeout|timeout expired/i.test(error.message);

/** pg-pool's own wait for a free client of a full pool: says nothing about the server. */
const isQueueTimeout = (error: unknown): boolean =>
  error instanceof Error && error.message === "timeout exceeded when trying to connect";

type ConnectCallback = (error: Error | undefined, client?: pg.PoolClient, done?: () => void) => void;

function hardenConnect(
  pool: pg.Pool,
  breaker: CircuitBreaker | undefined,
  retry: PoolOptions["retry"],
  onTimeout: () => void,
): void {
  const original = pool.connect.bind(pool) as () => Promise<pg.PoolClient>;
  const once = async (): Promise<pg.PoolClient> => {
    breaker?.admit();
    try {
      const client = await original();
      breaker?.succeeded();
      return client;
    } catch (error) {
      if (isQueueTimeout(error) || isConnectTimeout(error)) onTimeout();
      if (isConnectionFailure(error)) breaker?.failed(error);
      else if (isQueueTimeout(error)) breaker?.released();
      else breaker?.succeeded();
      throw error;
    }
  };
  const hardened =
    retry === false
      ? once
      : () =>
          withRetry(once, {
            retries: retry?.retries ?? 2,
            baseDelayMs: retry?.baseDelayMs ?? 100,
            maxDelayMs: retry?.maxDelayMs ?? 1_000,
            retryOn: (error) => isConnectionFailure(error) && !isConnectTimeout(error),
          });
  // pg.Pool#connect has a promise form and a callback form (pool.query uses the latter).
  pool.connect = ((callback?: ConnectCallback) => {
    if (!callback) return hardened();
    hardened().then(
      (client) => callback(undefined, client, () => client.release()),
      (error: Error) => callback(error, undefined, () => undefined),
    );
    return undefined;
  }) as typeof pool.connect;
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

/** The reason behind a connection error, in words, with its SQLSTATE or errno when there is one. */
function reasonOf(error: unknown, secrets: readonly string[]): string {
  const wrapped = toPgError(error, secrets);
  const text = wrapped instanceof Error ? wrapped.message : String(wrapped);
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && code && !text.includes(code) ? `${text} (${code})` : text;
}

/**
 * A lost connection as a ConnectionLostError naming the target (host, port, database) and the reason,
 * a connect that failed (refused, unknown host, bad password, no such database) as a ConnectionError
 * worded as `pgshift check` words it; undefined for any other error. Described ones pass unchanged.
 */
export function connectionErrorOf(error: unknown, pool: pg.Pool): ConnectionError | undefined {
  // an open breaker is described by the failure that opened it (describeConnectionError)
  if (error instanceof ConnectionError && !(error instanceof CircuitOpenError)) return error;
  return describeConnectionError(error, targetOf(pool), secretsOf(pool));
}

const CONNECT_ERRNOS = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH"]);

/** Whether `error` is a failure to open a connection (as opposed to losing an open one). */
function isConnectFailure(error: unknown): boolean {
  const e = (typeof error === "object" && error !== null ? error : {}) as {
    code?: unknown;
    syscall?: unknown;
    message?: unknown;
  };
  if (e.syscall === "connect" || e.syscall === "getaddrinfo") return true;
  if (typeof e.code === "string" && CONNECT_ERRNOS.has(e.code)) return true;
  const state = sqlstateOf(error);
  // 28xxx: authentication; 3D000: no such database
  if (state !== undefined && (state.startsWith("28") || state === "3D000")) return true;
  return typeof e.message === "string" && /timeout expired|connection timeout/i.test(e.message);
}

/** connectionErrorOf from a target identity (the CLI knows its target even when the pool is gone). */
export function describeConnectionError(
  error: unknown,
  target: TargetIdentity,
  secrets: readonly string[] = [],
): ConnectionError | undefined {
  // A command reports why the server is unreachable, not that the pool stopped trying (its cause says why).
  if (error instanceof CircuitOpenError && error.cause !== undefined)
    return describeConnectionError(error.cause, target, secrets) ?? error;
  if (error instanceof ConnectionError) return error;
  const root = rootCause(error);
  if (isConnectFailure(root)) return connectFailure(root, target, secrets);
  if (!isConnectionLost(error)) return undefined;
  return describeConnectionLoss(error, target, secrets);
}

/** The driver's or server's own words, not a wrapper's ("verification could not run: ..."). */
function rootCause(error: unknown): unknown {
  let root = error;
  while (root instanceof PgshiftError && !(root instanceof PgError) && root.cause !== undefined)
    root = root.cause;
  return root;
}

/** A connect that failed, worded as `pgshift check` words it. */
function connectFailure(error: unknown, target: TargetIdentity, secrets: readonly string[]): ConnectionError {
  return new ConnectionError(
    `could not connect to ${target.host}:${target.port}/${target.database} as ${target.user || "(default user)"}: ${reasonOf(error, secrets)}; check --to, DATABASE_URL or PG* settings`,
    toPgError(error, secrets),
    { target: target.url, host: target.host, port: target.port, database: target.database },
  );
}

function describeConnectionLoss(
  error: unknown,
  target: TargetIdentity,
  secrets: readonly string[] = [],
): ConnectionLostError {
  return new ConnectionLostError(
    `lost the connection to ${target.host}:${target.port}/${target.database}: ${reasonOf(rootCause(error), secrets)}`,
    error,
    { target: target.url, host: target.host, port: target.port, database: target.database },
  );
}

const guardedPools = new WeakSet<pg.Pool>();

/**
 * From the first checkout pgshift makes of a pool (an application's own, in library use), every client the
 * pool hands out is guarded the moment it is acquired, whoever checks it out: pool.query's own checkouts
 * and clients waiting for their siblings included, so no terminated backend is an unhandled 'error' event.
 */
export function guardPool(pool: pg.Pool): void {
  if (guardedPools.has(pool)) return;
  guardedPools.add(pool);
  pool.on("acquire", (client) => guardClient(client));
}

async function connect(pool: pg.Pool): Promise<pg.PoolClient> {
  guardPool(pool);
  try {
    const client = await pool.connect();
    // The client that was acquired before the pool was guarded (its first use here).
    guardClient(client);
    return client;
  } catch (error) {
    if (error instanceof ConnectionError) throw error;
    throw connectFailure(error, targetOf(pool), secretsOf(pool));
  }
}

/** Checks out a client, runs `fn`, always releases it (destroying it if `fn` broke the connection). */
export async function withClient<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await connect(pool);
  let lost: Error | undefined;
  try {
    return await fn(client);
  } catch (error) {
    if (isBroken(client) || isConnectionLost(error) || /not queryable/i.test(String(error)))
      lost = error instanceof Error ? error : new Error(String(error));
    throw connectionErrorOf(error, pool) ?? toPgError(error, secretsOf(pool));
  } finally {
    client.release(lost ?? (isBroken(client) ? new Error("connection lost") : undefined));
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

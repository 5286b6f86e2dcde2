import type { IncomingMessage, ServerResponse } from "node:http";
import type pg from "pg";
import type { CutoverControl } from "../cutover/create-cutover.ts";
import { cutoverMetricFamilies, type PrometheusFamily, renderPrometheus } from "../cutover/prometheus.ts";
import { poolMetricsOf, targetOf } from "../pg/pool.ts";
import { type HttpListener, listen, send } from "./http-listener.ts";
import { databaseFamilies } from "./database-metrics.ts";
import { databaseCheck, type HealthCheck, runCheck, type TimedCheckResult } from "./health-checks.ts";
import { Histogram } from "./histogram.ts";
import { poolFamilies } from "./pool-metrics.ts";
import { statusReport } from "./status-server.ts";
import { walFamilies } from "./wal-metrics.ts";

/** A source of metric families, called on every scrape. */
export type MetricsSource = () => PrometheusFamily[] | Promise<PrometheusFamily[]>;

export interface HealthServerOptions {
  /** The database /readyz checks and /metrics describes. */
  pool: pg.Pool;
  /** More checks (migrations applied, lag thresholds, ...); `addCheck` adds them later. */
  checks?: readonly HealthCheck[];
  /** More metrics; `addMetrics` adds them later. */
  metrics?: readonly MetricsSource[];
  /** Cutovers to report in /status and /metrics. */
  cutovers?: readonly CutoverControl<object>[];
  /** Default 0: any free port. */
  port?: number;
  /** Default 127.0.0.1: health is for probes and scrapers on the host, not the internet. */
  host?: string;
  /** Deadline of each check and of the database statistics (default 1000 ms). */
  readyTimeoutMs?: number;
}

export interface HealthReport {
  status: "pass" | "warn" | "fail";
  /** Checks keyed by name, each a one-element list as in the health+json draft. */
  checks: Record<string, Omit<TimedCheckResult, "name">[]>;
  database: { target: string; pool: { total: number; idle: number; waiting: number } };
  cutovers?: ReturnType<typeof statusReport>["cutovers"];
}

export interface HealthServer extends HttpListener {
  /** Registers a check (readiness and /status). */
  addCheck(check: HealthCheck): void;
  /** Registers metric families for /metrics. */
  addMetrics(source: MetricsSource): void;
  /** Records one database operation's duration in `db_client_operation_duration_seconds`. */
  observeOperation(operation: string, seconds: number, ok?: boolean): void;
  /** Runs every check now (what /status serves). */
  report(): Promise<HealthReport>;
}

export const HEALTH_METRICS = {
  up: "pg_up",
  connections: "db_client_connection_count",
  pending: "db_client_connection_pending_requests",
  timeouts: "db_client_connection_timeouts_total",
  duration: "db_client_operation_duration_seconds",
} as const;

function overall(results: readonly TimedCheckResult[]): HealthReport["status"] {
  if (results.some((r) => r.status === "fail")) return "fail";
  return results.some((r) => r.status === "warn") ? "warn" : "pass";
}

/**
 * One health server for everything pgshift runs: /livez (the process answers; never touches the
 * database), /readyz (every readiness check under its deadline, the database's first: 503 naming the
 * failing ones), /status (health+json: each check with status, observed value and time), /metrics
 * (Prometheus text: pg_up, pool gauges, operation durations, pg_stat_database, connections by state,
 * oldest transaction, and what was registered).
 */
export async function startHealthServer(options: HealthServerOptions): Promise<HealthServer> {
  const { pool } = options;
  const timeoutMs = options.readyTimeoutMs ?? 1_000;
  const durations = new Histogram(HEALTH_METRICS.duration, "Duration of database operations, in seconds");
  let checkoutTimeouts = 0;
  const database = databaseCheck(pool, (seconds, ok) =>
    durations.observe(seconds, { operation: "ping", outcome: ok ? "ok" : "error" }),
  );
  const checks: HealthCheck[] = [database, ...(options.checks ?? [])];
  const sources: MetricsSource[] = [() => poolFamilies(pool), ...(options.metrics ?? [])];
  const cutovers = options.cutovers ?? [];
  if (cutovers.length) sources.push(() => cutoverMetricFamilies(cutovers.map((c) => c.metrics())));

  const runAll = async (readyOnly: boolean): Promise<TimedCheckResult[]> => {
    const results = await Promise.all(
      checks.filter((c) => !readyOnly || (c.ready ?? true)).map((c) => runCheck(c, timeoutMs)),
    );
    for (const r of results)
      if (r.name === database.name && r.output?.startsWith("no answer within")) checkoutTimeouts += 1;
    return results;
  };

  const report = async (): Promise<HealthReport> => {
    const results = await runAll(false);
    return {
      status: overall(results.filter((r) => r.ready)),
      checks: Object.fromEntries(results.map(({ name, ...rest }) => [name, [rest]])),
      database: {
        target: targetOf(pool).url,
        pool: { total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount },
      },
      ...(cutovers.length ? { cutovers: statusReport({ pool, cutovers }).cutovers } : {}),
    };
  };

  const metrics = async (): Promise<string> => {
    const ping = await runCheck(database, timeoutMs);
    if (ping.output?.startsWith("no answer within")) checkoutTimeouts += 1;
    const up = ping.status === "pass";
    const families: PrometheusFamily[] = [
      {
        name: HEALTH_METRICS.up,
        help: "Whether the database answered select 1 in time",
        type: "gauge",
        samples: [{ value: up ? 1 : 0 }],
      },
      {
        name: HEALTH_METRICS.connections,
        help: "Connections of the pool by state (OpenTelemetry db.client.connection.count)",
        type: "gauge",
        samples: [
          { labels: { state: "idle" }, value: pool.idleCount },
          { labels: { state: "used" }, value: pool.totalCount - pool.idleCount },
        ],
      },
      {
        name: HEALTH_METRICS.pending,
        help: "Requests waiting for a connection of the pool",
        type: "gauge",
        samples: [{ value: pool.waitingCount }],
      },
      {
        name: HEALTH_METRICS.timeouts,
        help: "Checkouts that timed out waiting for a connection (the pool's, and health checks past their deadline)",
        type: "counter",
        samples: [{ value: checkoutTimeouts + (poolMetricsOf(pool)?.checkoutTimeouts ?? 0) }],
      },
      durations.family(),
    ];
    if (up) {
      const stats = await Promise.all([
        runCheckValue(() => databaseFamilies(pool), timeoutMs),
        runCheckValue(() => walFamilies(pool), timeoutMs),
      ]);
      for (const part of stats) if (part) families.push(...part);
    }
    for (const source of sources) {
      const extra = await runCheckValue(async () => source(), timeoutMs);
      if (extra) families.push(...extra);
    }
    return renderPrometheus(families);
  };

  const handle = async (request: IncomingMessage, response: ServerResponse) => {
    const path = new URL(request.url ?? "/", "http://localhost").pathname;
    if (request.method !== "GET" && request.method !== "HEAD") {
      send(response, 405, { error: "method not allowed; use GET" });
      return;
    }
    switch (path) {
      case "/livez":
      case "/healthz":
        send(response, 200, { status: "pass" });
        return;
      case "/readyz": {
        const results = await runAll(true);
        const failing = results.filter((r) => r.status === "fail");
        send(response, failing.length ? 503 : 200, {
          status: overall(results),
          ...(failing.length ? { failing: failing.map((f) => ({ name: f.name, output: f.output })) } : {}),
          checks: Object.fromEntries(results.map(({ name, ...rest }) => [name, [rest]])),
        });
        return;
      }
      case "/status": {
        const body = await report();
        send(response, 200, body, "application/health+json");
        return;
      }
      case "/metrics":
        send(response, 200, await metrics(), "text/plain; version=0.0.4");
        return;
      default:
        send(response, 404, { error: `no route ${path}; try /livez, /readyz, /status or /metrics` });
    }
  };

  const listener = await listen(handle, options);
  return {
    ...listener,
    addCheck: (check) => void checks.push(check),
    addMetrics: (source) => void sources.push(source),
    observeOperation: (operation, seconds, ok = true) =>
      durations.observe(seconds, { operation, outcome: ok ? "ok" : "error" }),
    report,
  };
}

/** A value under a deadline, or undefined when it fails or is late (a scrape never hangs). */
async function runCheckValue<T>(fn: () => Promise<T>, timeoutMs: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      fn(),
      new Promise<undefined>((resolve) => {
        timer = setTimeout(() => resolve(undefined), timeoutMs);
      }),
    ]);
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}

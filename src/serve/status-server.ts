import type { IncomingMessage, ServerResponse } from "node:http";
import type pg from "pg";
import type { CutoverControl, CutoverStatus } from "../cutover/create-cutover.ts";
import { cutoverMetricFamilies, type PrometheusFamily, renderPrometheus } from "../cutover/prometheus.ts";
import { targetOf } from "../pg/pool.ts";
import { type HttpListener, listen, send } from "./http-listener.ts";

export interface PoolState {
  totalCount: number;
  idleCount: number;
  waitingCount: number;
}

export interface StatusServerOptions {
  /** The database /readyz pings, whose pool state /status and /metrics report. */
  pool: pg.Pool;
  /** Cutovers to report (`store.cutover` of each). */
  cutovers?: readonly CutoverControl<object>[];
  /** Default 0: any free port. */
  port?: number;
  /** Default 127.0.0.1: status is for operators and scrapers on the host, not the internet. */
  host?: string;
  /** /readyz fails when the ping takes longer (default 2000 ms). */
  readyTimeoutMs?: number;
  /** Extra metric families (e.g. from other parts of the application). */
  extraMetrics?: () => PrometheusFamily[];
}

export interface StatusReport {
  status: "ok";
  database: { target: string; pool: PoolState };
  cutovers: {
    name: string;
    phase: string;
    phaseSource: string;
    writeTargets: CutoverStatus["writeTargets"];
    readTargets: CutoverStatus["readTargets"];
    pool: PoolState;
    shadow: CutoverStatus["shadow"];
    repairs: CutoverStatus["repairs"];
    listening: boolean;
  }[];
}

/** Where the status server listens, and how to stop it. */
export type StatusServer = HttpListener;

function poolState(pool: pg.Pool): PoolState {
  return { totalCount: pool.totalCount, idleCount: pool.idleCount, waitingCount: pool.waitingCount };
}

/** The JSON /status serves: per cutover its phase, write and read targets and pool state. */
export function statusReport(options: Pick<StatusServerOptions, "pool" | "cutovers">): StatusReport {
  return {
    status: "ok",
    database: { target: targetOf(options.pool).url, pool: poolState(options.pool) },
    cutovers: (options.cutovers ?? []).map((cutover) => {
      const s = cutover.status();
      return {
        name: s.name,
        phase: s.phase,
        phaseSource: s.phaseSource,
        writeTargets: s.writeTargets,
        readTargets: s.readTargets,
        pool: s.pool,
        shadow: s.shadow,
        repairs: s.repairs,
        listening: s.watcher.listening,
      };
    }),
  };
}

/** Prometheus text for the pool and every cutover. */
export function metricsText(
  options: Pick<StatusServerOptions, "pool" | "cutovers" | "extraMetrics">,
): string {
  const pool = poolState(options.pool);
  const families: PrometheusFamily[] = [
    {
      name: "pgshift_pool_connections",
      help: "Connections of the database pool by state",
      type: "gauge",
      samples: [
        { labels: { state: "total" }, value: pool.totalCount },
        { labels: { state: "idle" }, value: pool.idleCount },
        { labels: { state: "waiting" }, value: pool.waitingCount },
      ],
    },
    ...cutoverMetricFamilies((options.cutovers ?? []).map((c) => c.metrics())),
    ...(options.extraMetrics?.() ?? []),
  ];
  return renderPrometheus(families);
}

async function ping(pool: pg.Pool, timeoutMs: number): Promise<{ ok: boolean; ms: number; error?: string }> {
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      pool.query("select 1"),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return { ok: true, ms: Date.now() - started };
  } catch (error) {
    return {
      ok: false,
      ms: Date.now() - started,
      error: error instanceof Error ? error.message : String(error),
    };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A small HTTP server on node:http: /healthz (liveness: the process answers), /readyz (readiness:
 * the database answers a ping in time), /metrics (Prometheus text), /status (JSON per cutover).
 */
export async function startStatusServer(options: StatusServerOptions): Promise<StatusServer> {
  const readyTimeoutMs = options.readyTimeoutMs ?? 2_000;
  const handle = async (request: IncomingMessage, response: ServerResponse) => {
    const path = new URL(request.url ?? "/", "http://localhost").pathname;
    if (request.method !== "GET" && request.method !== "HEAD") {
      send(response, 405, { error: "method not allowed; use GET" });
      return;
    }
    switch (path) {
      case "/healthz":
        send(response, 200, { status: "ok" });
        return;
      case "/readyz": {
        const result = await ping(options.pool, readyTimeoutMs);
        send(response, result.ok ? 200 : 503, {
          status: result.ok ? "ready" : "not ready",
          database: { ok: result.ok, ms: result.ms, ...(result.error ? { error: result.error } : {}) },
        });
        return;
      }
      case "/metrics":
        send(response, 200, metricsText(options), "text/plain; version=0.0.4");
        return;
      case "/status":
        send(response, 200, statusReport(options));
        return;
      default:
        send(response, 404, { error: `no route ${path}; try /healthz, /readyz, /metrics or /status` });
    }
  };
  return listen(handle, options);
}

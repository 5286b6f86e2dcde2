import type pg from "pg";
import type { PrometheusFamily } from "../cutover/prometheus.ts";
import type { BreakerState } from "../pg/circuit-breaker.ts";
import { poolMetricsOf } from "../pg/pool.ts";

export const POOL_METRICS = {
  attempts: "pgshift_pool_connect_attempts_total",
  failures: "pgshift_pool_connect_failures_total",
  rejected: "pgshift_pool_checkouts_rejected_total",
  opened: "pgshift_pool_breaker_opened_total",
  state: "pgshift_pool_breaker_state",
} as const;

const STATES: readonly BreakerState[] = ["closed", "open", "half-open"];

/** The connection attempts, failures and breaker state of a pool made by createPool; [] for other pools. */
export function poolFamilies(pool: pg.Pool): PrometheusFamily[] {
  const m = poolMetricsOf(pool);
  if (!m) return [];
  const counter = (name: string, help: string, value: number): PrometheusFamily => ({
    name,
    help,
    type: "counter",
    samples: [{ value }],
  });
  return [
    counter(POOL_METRICS.attempts, "Connections the pool tried to open", m.connectAttempts),
    counter(POOL_METRICS.failures, "Checkouts that failed with a connection error", m.connectFailures),
    counter(POOL_METRICS.rejected, "Checkouts refused at once by the open circuit breaker", m.rejected),
    counter(POOL_METRICS.opened, "Times the circuit breaker opened", m.opened),
    {
      name: POOL_METRICS.state,
      help: "The pool's circuit breaker state (1 for the current one)",
      type: "gauge",
      samples: STATES.map((state) => ({ labels: { state }, value: m.state === state ? 1 : 0 })),
    },
  ];
}

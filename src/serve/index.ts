export * from "./database-metrics.ts";
export * from "./health-checks.ts";
export * from "./health-server.ts";
export * from "./histogram.ts";
export * from "./pool-metrics.ts";
export * from "./status-server.ts";

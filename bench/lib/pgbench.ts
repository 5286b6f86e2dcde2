import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { findPgBinaries } from "../../src/local/index.ts";
import type { LatencyRun } from "./key-lookup-clients.ts";
import { runMeasured } from "./measure.ts";
import { failureText } from "./pgshift.ts";

/** pgbench next to the server binaries the bench instance runs (PostgreSQL's own load generator). */
export function pgbenchBinary(): string | undefined {
  try {
    const path = join(findPgBinaries().binDir, "pgbench");
    return existsSync(path) ? path : undefined;
  } catch {
    return undefined;
  }
}

export interface PgbenchOptions {
  url: string;
  /** A pgbench custom script (`\set` lines and one SQL statement per transaction). */
  script: string;
  clients: number;
  /** pgbench worker threads (-j). */
  threads: number;
  durationS: number;
  /** Open loop: transactions per second, all clients together (-R, Poisson arrivals); undefined: closed loop. */
  rate?: number;
  /** Scratch directory for the script and the per-transaction logs. */
  workDir: string;
}

export interface PgbenchRun extends LatencyRun {
  /** The command line, without the connection settings (passed in the environment). */
  command: string;
  /** Transactions pgbench counted as failed. */
  failed: number;
}

/** libpq environment for a URL, so that the password never appears on a command line. */
function libpqEnv(url: string): NodeJS.ProcessEnv {
  const parsed = new URL(url);
  return {
    ...process.env,
    PGHOST: decodeURIComponent(parsed.hostname),
    PGPORT: parsed.port || "5432",
    PGUSER: decodeURIComponent(parsed.username),
    PGPASSWORD: decodeURIComponent(parsed.password),
    PGDATABASE: decodeURIComponent(parsed.pathname.replace(/^\//, "")),
  };
}

/**
 * Runs pgbench with `-M prepared` (each statement parsed once per connection, like DocumentStore's key
 * queries) and a per-transaction log (`-l`); p50 and p99 come from that log. With `rate`, pgbench's
 * latency counts from each transaction's scheduled start, so a transaction that waited for the previous
 * one on its connection is charged for the wait.
 */
export async function runPgbench(binary: string, options: PgbenchOptions): Promise<PgbenchRun> {
  mkdirSync(options.workDir, { recursive: true });
  const scriptPath = join(options.workDir, "script.sql");
  writeFileSync(scriptPath, options.script);
  const prefix = `txlog${Date.now()}`;
  const args = [
    "--no-vacuum",
    "--protocol=prepared",
    `--file=${scriptPath}`,
    `--client=${options.clients}`,
    `--jobs=${options.threads}`,
    `--time=${options.durationS}`,
    "--log",
    `--log-prefix=${join(options.workDir, prefix)}`,
    ...(options.rate === undefined ? [] : [`--rate=${options.rate}`]),
  ];
  const run = await runMeasured(binary, args, { env: libpqEnv(options.url), cwd: options.workDir });
  if (run.exitCode !== 0) throw new Error(`pgbench failed: ${failureText(run)}`);
  const tps = /^tps = ([\d.]+) \(without initial connection time\)/m.exec(run.stdout);
  const failed = /^number of failed transactions: (\d+)/m.exec(run.stdout);
  const latencies: number[] = [];
  const lags: number[] = [];
  for (const file of readdirSync(options.workDir).filter((f) => f.startsWith(`${prefix}.`))) {
    const path = join(options.workDir, file);
    for (const line of readFileSync(path, "utf8").split("\n")) {
      // client_id transaction_no time_us script_no epoch_s epoch_us [schedule_lag_us]
      const fields = line.split(" ");
      if (!/^\d+$/.test(fields[2] ?? "")) continue;
      latencies.push(Number(fields[2]) / 1000);
      if (fields[6] !== undefined) lags.push(Number(fields[6]) / 1000);
    }
    rmSync(path);
  }
  if (latencies.length === 0) throw new Error("pgbench wrote no per-transaction log lines");
  return {
    command: ["pgbench", ...args.map((a) => a.replace(options.workDir, "WORKDIR"))].join(" "),
    latencies,
    // pgbench's own rate, without the initial connection time
    qps: tps ? Number(tps[1]) : latencies.length / options.durationS,
    failed: failed ? Number(failed[1]) : 0,
    ...(options.rate === undefined ? {} : { startLags: lags }),
  };
}

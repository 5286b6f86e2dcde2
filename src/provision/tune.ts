import { UsageError } from "../errors.ts";
import { quoteIdent, quoteLiteral } from "../pg/quote.ts";

/**
 * pgtune's formulas (le0pard/pgtune, src/features/configuration/configurationSlice.js, as published in
 * 2025), reimplemented for Linux servers: given RAM, cores, connections, workload and storage, the
 * settings a new server should start from. Memory is computed in kB and floored exactly as pgtune does,
 * so the output for a machine can be compared with pgtune's line for line.
 */
export type Workload = "web" | "oltp" | "dw" | "mixed" | "desktop";
export type Storage = "ssd" | "hdd" | "san" | "nvme";

export const WORKLOADS: readonly Workload[] = ["web", "oltp", "dw", "mixed", "desktop"];
export const STORAGES: readonly Storage[] = ["ssd", "hdd", "san", "nvme"];

export interface TuneInput {
  /** Total RAM of the machine, in bytes. */
  memoryBytes: number;
  /** CPU cores; parallel settings are only given for 4 or more. */
  cpus?: number;
  /** max_connections; default per workload (web 200, oltp 300, dw 40, desktop 20, mixed 100). */
  connections?: number;
  workload?: Workload;
  storage?: Storage;
  /** PostgreSQL major version the settings are for (default 16). */
  pgVersion?: number;
}

export interface TunedSetting {
  name: string;
  /** As PostgreSQL accepts it in postgresql.conf or ALTER SYSTEM: `4GB`, `20971kB`, `0.9`, `try`. */
  value: string;
  /** The change only takes effect after a server restart (otherwise a reload is enough). */
  restart: boolean;
}

export interface TuneResult {
  input: Required<TuneInput>;
  settings: TunedSetting[];
  warnings: string[];
}

const KB = 1;
const MB = 1024 * KB;
const GB = 1024 * MB;

/** Settings with context `postmaster`: a restart is needed (PostgreSQL 13–17). */
const NEEDS_RESTART = new Set([
  "max_connections",
  "shared_buffers",
  "wal_buffers",
  "huge_pages",
  "max_worker_processes",
  "wal_level",
  "max_wal_senders",
  "autovacuum_max_workers",
]);

const DEFAULT_CONNECTIONS: Record<Workload, number> = {
  web: 200,
  oltp: 300,
  dw: 40,
  desktop: 20,
  mixed: 100,
};

/** A memory amount in kB written the way pgtune writes it: whole GB, else whole MB, else kB. */
export function formatMemory(kb: number): string {
  if (kb % GB === 0) return `${kb / GB}GB`;
  if (kb % MB === 0) return `${kb / MB}MB`;
  return `${kb}kB`;
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1)
    throw new UsageError(`${name} must be a whole number >= 1, got ${value}`);
  return value;
}

/** The recommended settings for one machine. Pure: same input, same output. */
export function tune(input: TuneInput): TuneResult {
  const workload = input.workload ?? "web";
  const storage = input.storage ?? "ssd";
  if (!WORKLOADS.includes(workload))
    throw new UsageError(`workload must be one of ${WORKLOADS.join(", ")}, got "${workload}"`);
  if (!STORAGES.includes(storage))
    throw new UsageError(`storage must be one of ${STORAGES.join(", ")}, got "${storage}"`);
  if (!(input.memoryBytes >= 1024))
    throw new UsageError(`memory must be at least 1kB, got ${input.memoryBytes}`);
  const cpus = input.cpus === undefined ? 0 : positiveInteger("cpus", input.cpus);
  const pgVersion = input.pgVersion ?? 16;
  const connections =
    input.connections === undefined
      ? DEFAULT_CONNECTIONS[workload]
      : positiveInteger("connections", input.connections);
  const totalKb = input.memoryBytes / 1024;
  const desktop = workload === "desktop";

  const sharedBuffers = Math.floor(totalKb / (desktop ? 16 : 4));
  const effectiveCacheSize = Math.floor(desktop ? totalKb / 4 : (totalKb * 3) / 4);
  const maintenanceWorkMem = Math.min(Math.floor(totalKb / (workload === "dw" ? 8 : 16)), 8 * GB);

  let walBuffers = Math.min(Math.floor((3 * sharedBuffers) / 100), 16 * MB);
  // pgtune rounds a value just under 16MB up to 16MB, and never goes below 32kB
  if (walBuffers > 14 * MB && walBuffers < 16 * MB) walBuffers = 16 * MB;
  if (walBuffers < 32) walBuffers = 32;

  const parallel: [string, number][] = [];
  if (cpus >= 4) {
    const half = Math.ceil(cpus / 2);
    parallel.push(["max_worker_processes", cpus]);
    parallel.push(["max_parallel_workers_per_gather", workload === "dw" ? half : Math.min(half, 4)]);
    if (pgVersion >= 10) parallel.push(["max_parallel_workers", cpus]);
    if (pgVersion >= 11) parallel.push(["max_parallel_maintenance_workers", Math.min(half, 4)]);
  }
  // the server's default max_worker_processes (8) counts when no parallel settings are given
  const workers = cpus >= 4 ? cpus : 8;
  const workMemBase = (totalKb - sharedBuffers) / ((connections + workers) * 3);
  const workMemDivisor: Record<Workload, number> = { web: 1, oltp: 1, dw: 2, desktop: 6, mixed: 2 };
  const workMem = Math.max(Math.floor(workMemBase / workMemDivisor[workload]), 4 * MB);

  const walSizes: Record<Workload, [number, number]> = {
    web: [1 * GB, 4 * GB],
    oltp: [2 * GB, 8 * GB],
    dw: [4 * GB, 16 * GB],
    desktop: [100 * MB, 2 * GB],
    mixed: [1 * GB, 4 * GB],
  };

  const values: [string, string][] = [
    ["max_connections", String(connections)],
    ["shared_buffers", formatMemory(sharedBuffers)],
    ["effective_cache_size", formatMemory(effectiveCacheSize)],
    ["maintenance_work_mem", formatMemory(maintenanceWorkMem)],
    ["checkpoint_completion_target", "0.9"],
    ["wal_buffers", formatMemory(walBuffers)],
    ["default_statistics_target", workload === "dw" ? "500" : "100"],
    ["random_page_cost", storage === "hdd" ? "4" : "1.1"],
    ["effective_io_concurrency", String({ hdd: 2, ssd: 200, san: 300, nvme: 1000 }[storage])],
    ["work_mem", formatMemory(workMem)],
    ["huge_pages", sharedBuffers >= 2 * GB ? "try" : "off"],
    ["min_wal_size", formatMemory(walSizes[workload][0])],
    ["max_wal_size", formatMemory(walSizes[workload][1])],
  ];
  if (desktop) values.push(["wal_level", "minimal"], ["max_wal_senders", "0"]);
  if (pgVersion >= 12 && (workload === "web" || workload === "oltp" || workload === "mixed"))
    values.push(["jit", "off"]);
  if (pgVersion >= 15) values.push(["wal_compression", "lz4"]);
  else if (pgVersion >= 10) values.push(["wal_compression", "on"]);
  if (cpus >= 16) values.push(["autovacuum_max_workers", cpus >= 32 ? "5" : "4"]);
  if (maintenanceWorkMem >= 2 * GB) values.push(["autovacuum_work_mem", formatMemory(2 * GB)]);
  for (const [name, value] of parallel) values.push([name, String(value)]);

  const warnings: string[] = [];
  if (input.memoryBytes < 256 * 1024 * 1024)
    warnings.push("pgtune's formulas are not meant for machines under 256MB of RAM");
  if (input.memoryBytes > 100 * 1024 * 1024 * 1024)
    warnings.push("pgtune's formulas are not meant for machines over 100GB of RAM");

  return {
    input: { memoryBytes: input.memoryBytes, cpus, connections, workload, storage, pgVersion },
    settings: values.map(([name, value]) => ({ name, value, restart: NEEDS_RESTART.has(name) })),
    warnings,
  };
}

/** `ALTER SYSTEM SET name = 'value';`, one line per setting. */
export function alterSystemSql(settings: readonly TunedSetting[]): string {
  return settings.map((s) => `ALTER SYSTEM SET ${quoteIdent(s.name)} = ${quoteLiteral(s.value)};`).join("\n");
}

/** A postgresql.conf snippet (for conf.d/ or the end of postgresql.conf). */
export function confSnippet(settings: readonly TunedSetting[], header?: string): string {
  const lines = header ? header.split("\n").map((line) => `# ${line}`) : [];
  for (const s of settings) lines.push(`${s.name} = ${/^[0-9.]+$/.test(s.value) ? s.value : `'${s.value}'`}`);
  return lines.join("\n");
}

/** Parses `16GB`, `512MB`, `2048` (MB) into bytes, for flags. */
export function parseMemory(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(kb|mb|gb|tb)?\s*$/i.exec(text);
  if (!match) throw new UsageError(`memory must look like 16GB, 512MB or 1TB, got "${text}"`);
  const unit = (match[2] ?? "mb").toLowerCase();
  const scale = { kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3, tb: 1024 ** 4 }[unit as "kb"];
  return Math.round(Number(match[1]) * scale);
}

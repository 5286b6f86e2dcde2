import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import os from "node:os";
import type pg from "pg";
import type { MachineInfo } from "./result.ts";

function commandVersion(file: string, args: string[]): string {
  try {
    const out = execFileSync(file, args, {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      timeout: 20_000,
    });
    return out.trim().split("\n")[0]!.trim();
  } catch (error) {
    const stdout = (error as { stdout?: string }).stdout;
    return stdout?.trim().split("\n")[0] ?? "not installed";
  }
}

function osName(): string {
  try {
    const release = readFileSync("/etc/os-release", "utf8");
    return /^PRETTY_NAME="?([^"\n]+)"?/m.exec(release)?.[1] ?? os.type();
  } catch {
    return os.type();
  }
}

const SETTINGS = [
  "shared_buffers",
  "max_wal_size",
  "maintenance_work_mem",
  "work_mem",
  "fsync",
  "synchronous_commit",
  "full_page_writes",
  "max_parallel_workers",
];

/** Describes the machine, the server and the tools, so every figure can be read in context. */
export async function describeMachine(pool: pg.Pool, repoRoot: string): Promise<MachineInfo> {
  const version = await pool.query<{ server_version: string }>("show server_version");
  const settings = await pool.query<{
    name: string;
    setting: string;
    unit: string | null;
  }>("select name, setting, unit from pg_settings where name = any($1::text[]) order by name", [SETTINGS]);
  const pkg = JSON.parse(readFileSync(`${repoRoot}/package.json`, "utf8")) as {
    version: string;
  };
  let gitCommit = "unknown";
  try {
    gitCommit = execFileSync("git", ["rev-parse", "--short", "HEAD"], {
      cwd: repoRoot,
      encoding: "utf8",
    }).trim();
  } catch {
    // not a git checkout
  }
  const cpus = os.cpus();
  return {
    hostname: os.hostname(),
    os: osName(),
    kernel: os.release(),
    cpuModel: cpus[0]?.model.trim() ?? "unknown",
    cpus: cpus.length,
    memoryGb: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    loadAvgStart: os.loadavg(),
    node: process.versions.node,
    postgres: version.rows[0]!.server_version,
    postgresSettings: Object.fromEntries(
      settings.rows.map((row) => [row.name, row.unit ? `${row.setting} (${row.unit})` : row.setting]),
    ),
    tools: {
      sqlite3: commandVersion("sqlite3", ["--version"]).split(" ").slice(0, 2).join(" "),
      psql: commandVersion("psql", ["--version"]),
      pgloader: commandVersion("pgloader", ["--version"]),
    },
    pgshiftVersion: pkg.version,
    gitCommit,
  };
}

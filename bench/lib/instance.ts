import { chmodSync, existsSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import pg from "pg";
import { withDatabase } from "../../src/pg/server-databases.ts";
import {
  destroyLocalInstance,
  type LocalInstanceOptions,
  localInstanceUrl,
  startLocalInstance,
} from "../../src/local/index.ts";
import { quoteIdent } from "../../src/pg/quote.ts";

/**
 * The bench's own managed PostgreSQL: the same durable defaults users get (fsync on, no ephemeral
 * settings), in a bench-specific directory under the system temp dir.
 */
export interface BenchInstance {
  options: LocalInstanceOptions;
  /** URL of the maintenance database `postgres` (password included: never print it). */
  adminUrl: string;
  version: string;
  dataDir: string;
}

export function benchWorkDir(): string {
  const dir = join(os.tmpdir(), "pgshift-bench");
  mkdirSync(dir, { recursive: true });
  // The managed server runs as an unprivileged user when we are root: it must traverse this directory.
  chmodSync(dir, 0o755);
  return dir;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Instances (and scratch dirs) left by bench runs that were killed: their owner process is gone. */
async function removeStaleInstances(baseDir: string, workDir: string): Promise<void> {
  for (const entry of existsSync(baseDir) ? readdirSync(baseDir) : []) {
    // bench-<pid>, and the extra instances a scenario starts beside it (bench-<pid>-<what>)
    const match = /^bench-(\d+)(?:-[a-z0-9]+)?$/.exec(entry);
    if (match && !alive(Number(match[1]))) {
      await destroyLocalInstance({ name: entry, baseDir }).catch(() => undefined);
    }
  }
  for (const entry of readdirSync(workDir)) {
    const match = /^run-(\d+)$/.exec(entry);
    if (match && !alive(Number(match[1]))) rmSync(join(workDir, entry), { recursive: true, force: true });
  }
}

/**
 * One instance per bench process (`bench-<pid>`), so two runs on one machine never share a server
 * or drop each other's databases.
 */
export async function startBenchInstance(): Promise<BenchInstance> {
  const baseDir = join(benchWorkDir(), "local");
  await removeStaleInstances(baseDir, benchWorkDir());
  const options: LocalInstanceOptions = { name: `bench-${process.pid}`, baseDir };
  const started = await startLocalInstance(options);
  return {
    options,
    adminUrl: localInstanceUrl(options),
    version: started.status.version ?? "unknown",
    dataDir: started.status.dataDir,
  };
}

export async function destroyBenchInstance(instance: BenchInstance): Promise<void> {
  await destroyLocalInstance(instance.options);
}

export const databaseUrl = withDatabase;

/** Drops (terminating sessions) and recreates a database; returns its URL. Extensions come along. */
export async function freshDatabase(adminUrl: string, database: string): Promise<string> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(`drop database if exists ${quoteIdent(database)} with (force)`);
    await client.query(`create database ${quoteIdent(database)}`);
  } finally {
    await client.end();
  }
  const url = databaseUrl(adminUrl, database);
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    await db.query("create extension if not exists pg_trgm; create extension if not exists pgcrypto");
  } finally {
    await db.end();
  }
  return url;
}

export async function dropDatabase(adminUrl: string, database: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(`drop database if exists ${quoteIdent(database)} with (force)`);
  } finally {
    await client.end();
  }
}

/** Flushes dirty buffers so one contender's writes are not paid for by the next one's checkpoint. */
export async function settle(adminUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query("checkpoint");
  } finally {
    await client.end();
  }
}

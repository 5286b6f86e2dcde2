import { hostname, userInfo } from "node:os";
import type pg from "pg";
import { sqlstateOf } from "../pg/errors.ts";
import type { InternalSchemaPart } from "../pg/internal-schema.ts";

/**
 * pgshift's migration state in the target database. `migrations` holds one row per applied
 * version; `migration_log` keeps every action (applied, reverted, failed, baseline, drift accepted)
 * and is never rewritten; `migration_lock` is the lock row used when advisory locks cannot work
 * (transaction-mode PgBouncer).
 */
export const migratePart: InternalSchemaPart = {
  name: "migrate",
  steps: [
    `create table pgshift.migrations (
       version text primary key check (version ~ '^[0-9]{14}$'),
       name text not null,
       sha256 text not null,
       applied_at timestamptz not null default now(),
       applied_by text not null,
       duration_ms integer not null,
       outcome text not null check (outcome in ('applied', 'baseline'))
     );
     create table pgshift.migration_log (
       id bigint generated always as identity primary key,
       at timestamptz not null default now(),
       version text not null,
       name text not null,
       action text not null check (action in ('applied', 'reverted', 'failed', 'baseline', 'drift_accepted', 'missing_accepted', 'out_of_order_applied')),
       sha256 text,
       previous_sha256 text,
       by text not null,
       duration_ms integer,
       error text
     );
     create table pgshift.migration_lock (
       id boolean primary key default true check (id),
       owner text not null,
       acquired_at timestamptz not null,
       heartbeat_at timestamptz not null,
       expires_at timestamptz not null
     )`,
  ],
};

export interface AppliedMigration {
  version: string;
  name: string;
  sha256: string;
  appliedAt: Date;
  appliedBy: string;
  durationMs: number;
  outcome: "applied" | "baseline";
}

/** Who runs this: OS user and host, then the database role is appended by the server. */
export function runnerName(): string {
  let user = "unknown";
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry (containers); keep "unknown"
  }
  return `${user}@${hostname()} pid ${process.pid}`;
}

/** Applied migrations by version; empty when pgshift's tables do not exist yet (nothing applied). */
export async function readHistory(client: pg.ClientBase | pg.Pool): Promise<AppliedMigration[]> {
  try {
    const { rows } = await client.query(
      `select version, name, sha256, applied_at, applied_by, duration_ms, outcome
         from pgshift.migrations order by version`,
    );
    return rows.map((r) => ({
      version: r.version,
      name: r.name,
      sha256: r.sha256,
      appliedAt: r.applied_at,
      appliedBy: r.applied_by,
      durationMs: r.duration_ms,
      outcome: r.outcome,
    }));
  } catch (error) {
    const state = sqlstateOf(error);
    if (state === "42P01" || state === "3F000") return [];
    throw error;
  }
}

export interface LogEntry {
  version: string;
  name: string;
  action:
    | "applied"
    | "reverted"
    | "failed"
    | "baseline"
    | "drift_accepted"
    | "missing_accepted"
    | "out_of_order_applied";
  sha256?: string | null;
  previousSha256?: string | null;
  durationMs?: number | null;
  error?: string | null;
}

export async function appendLog(client: pg.ClientBase, by: string, entry: LogEntry): Promise<void> {
  await client.query(
    `insert into pgshift.migration_log (version, name, action, sha256, previous_sha256, by, duration_ms, error)
     values ($1, $2, $3, $4, $5, $6 || ' as ' || current_user, $7, $8)`,
    [
      entry.version,
      entry.name,
      entry.action,
      entry.sha256 ?? null,
      entry.previousSha256 ?? null,
      by,
      entry.durationMs ?? null,
      entry.error ?? null,
    ],
  );
}

export async function recordApplied(
  client: pg.ClientBase,
  by: string,
  migration: { version: string; name: string; sha256: string },
  durationMs: number,
  outcome: "applied" | "baseline",
): Promise<void> {
  await client.query(
    `insert into pgshift.migrations (version, name, sha256, applied_by, duration_ms, outcome)
     values ($1, $2, $3, $4 || ' as ' || current_user, $5, $6)`,
    [migration.version, migration.name, migration.sha256, by, Math.round(durationMs), outcome],
  );
  await appendLog(client, by, {
    version: migration.version,
    name: migration.name,
    action: outcome,
    sha256: migration.sha256,
    durationMs: Math.round(durationMs),
  });
}

export async function recordReverted(
  client: pg.ClientBase,
  by: string,
  migration: { version: string; name: string; sha256: string },
  durationMs: number,
): Promise<void> {
  await client.query("delete from pgshift.migrations where version = $1", [migration.version]);
  await appendLog(client, by, {
    version: migration.version,
    name: migration.name,
    action: "reverted",
    sha256: migration.sha256,
    durationMs: Math.round(durationMs),
  });
}

import type pg from "pg";
import { targetOf } from "../pg/pool.ts";
import type { DriftEntry } from "./errors.ts";
import { readHistory } from "./history.ts";
import { loadMigrations } from "./migration-file.ts";
import { comparePlan, type MigrationStatusEntry } from "./plan.ts";

export interface MigrationStatusOptions {
  pool: pg.Pool;
  dir: string;
}

export interface MigrationStatus {
  database: string;
  /** Newest applied version, or null. */
  current: string | null;
  /** Newest version on disk, or null. */
  latest: string | null;
  entries: MigrationStatusEntry[];
  applied: number;
  pending: number;
  outOfOrder: number;
  drift: DriftEntry[];
  /** Everything on disk is applied, unchanged, and nothing applied is missing. */
  upToDate: boolean;
}

/** Files compared with history; reads only (creates nothing, takes no lock). */
export async function migrationStatus(options: MigrationStatusOptions): Promise<MigrationStatus> {
  const files = await loadMigrations(options.dir);
  const history = await readHistory(options.pool);
  const plan = comparePlan(files, history);
  const count = (state: MigrationStatusEntry["state"]) =>
    plan.entries.filter((e) => e.state === state).length;
  return {
    database: targetOf(options.pool).database,
    current: plan.current,
    latest: files.length ? files[files.length - 1]!.version : null,
    entries: plan.entries,
    applied: count("applied") + count("drifted"),
    pending: count("pending"),
    outOfOrder: count("out-of-order"),
    drift: plan.drift,
    upToDate: plan.drift.length === 0 && plan.pending.length === 0 && plan.outOfOrder.length === 0,
  };
}

export interface MigrationVerifyResult {
  database: string;
  ok: boolean;
  /** Applied migrations whose file is unchanged. */
  verified: number;
  drift: DriftEntry[];
  /** Unapplied files older than the newest applied one: `up` would refuse them. */
  outOfOrder: string[];
  /** Not a problem for verify; reported for information. */
  pending: number;
}

/** Checks every applied migration's sha256 against its file; reads only. `ok` is false on drift, missing or out-of-order files. */
export async function verifyMigrations(options: MigrationStatusOptions): Promise<MigrationVerifyResult> {
  const status = await migrationStatus(options);
  const outOfOrder = status.entries.filter((e) => e.state === "out-of-order").map((e) => e.file!);
  return {
    database: status.database,
    ok: status.drift.length === 0 && outOfOrder.length === 0,
    verified: status.entries.filter((e) => e.state === "applied").length,
    drift: status.drift,
    outOfOrder,
    pending: status.pending,
  };
}

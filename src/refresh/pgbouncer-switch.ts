import type { EventEmitter } from "node:events";
import pg from "pg";
import { UsageError } from "../errors.ts";
import { type AliasTarget, pointAlias, readConfig, writeConfig } from "./pgbouncer-ini.ts";
import {
  PgbouncerActiveServersError,
  PgbouncerPauseTimeoutError,
  PgbouncerReloadError,
  PgbouncerRestoreFailedError,
  PgbouncerWaitCloseStuckError,
} from "./refresh-errors.ts";

export type PgbouncerSwitchMode = "pgbouncer" | "pgbouncer-reload";

export interface AliasSwitchOptions {
  mode: PgbouncerSwitchMode;
  /** URL of PgBouncer's admin console (database `pgbouncer`). */
  adminUrl: string;
  alias: string;
  configFile: string;
  /** Where the alias goes. */
  to: AliasTarget;
  /** How long PAUSE may take (it waits for the longest running transaction); default 5000 ms. */
  pauseBudgetMs?: number;
  /** Describes the longest running transaction on the old database, for the timeout error. */
  longestTransaction?: () => Promise<string | null>;
}

export interface AliasSwitchResult {
  mode: PgbouncerSwitchMode;
  /** How long PAUSE took to complete (null in reload mode). */
  pauseMs: number | null;
  /** From PAUSE sent to RESUME answered: how long new queries through the alias stalled (null in reload mode). */
  stallMs: number | null;
  reloadMs: number;
}

export const DEFAULT_PAUSE_BUDGET_MS = 5_000;

/** Admin console commands are not SQL: the alias goes in bare, so only plain names are allowed. */
export function assertAliasName(alias: string): void {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(alias))
    throw new UsageError(
      `PgBouncer alias "${alias}" must be a plain name (letters, digits, _) to be named on the admin console`,
    );
}

/** A client on the admin console; its last command tag kept raw (pg shortens "WAIT_CLOSE" to "WAIT"). */
async function connectAdmin(url: string): Promise<{ client: pg.Client; lastTag: () => string }> {
  const client = new pg.Client({ connectionString: url });
  let tag = "";
  (client as unknown as { connection: EventEmitter }).connection.on(
    "commandComplete",
    (message: { text: string }) => {
      tag = message.text;
    },
  );
  client.on("error", () => undefined);
  await client.connect();
  return { client, lastTag: () => tag };
}

/**
 * Points a PgBouncer alias at another database. Mode `pgbouncer`: rewrite the alias's line in the
 * config, then on one admin connection PAUSE alias (within the budget; its tag must be PAUSE, and no
 * server of the alias may stay active), RELOAD, RESUME alias. Mode `pgbouncer-reload`: rewrite and
 * RELOAD only (in-flight transactions finish on the old database). Any failure before RELOAD took:
 * RESUME (from a fresh connection when the pausing one hangs, after closing it), config restored and
 * reloaded, so live is untouched. Never sends WAIT_CLOSE.
 */
export async function switchAlias(options: AliasSwitchOptions): Promise<AliasSwitchResult> {
  const { alias, configFile } = options;
  assertAliasName(alias);
  const budgetMs = options.pauseBudgetMs ?? DEFAULT_PAUSE_BUDGET_MS;
  if (!(Number.isFinite(budgetMs) && budgetMs > 0))
    throw new UsageError(`--pause-budget must be a positive duration, not ${budgetMs}`);
  const original = await readConfig(configFile);
  const edited = pointAlias(original, alias, options.to);
  let admin = await connectAdmin(options.adminUrl);
  let paused = false;
  let pauseMs: number | null = null;
  let pauseSent = 0;
  try {
    await writeConfig(configFile, edited.text);
    if (options.mode === "pgbouncer") {
      pauseSent = performance.now();
      // PAUSE waits for the longest running transaction; the budget bounds how long every client stalls
      paused = true;
      const outcome = await Promise.race([
        admin.client.query(`PAUSE ${alias}`).then(
          () => "done" as const,
          (error: Error) => error,
        ),
        new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), budgetMs).unref()),
      ]);
      if (outcome === "timeout") {
        const longest = await options.longestTransaction?.().catch(() => null);
        throw new PgbouncerPauseTimeoutError(alias, budgetMs, longest ?? null);
      }
      if (outcome instanceof Error) throw outcome;
      pauseMs = performance.now() - pauseSent;
      const tag = admin.lastTag();
      if (tag !== "PAUSE") throw new PgbouncerWaitCloseStuckError(alias, tag);
      const { rows: servers } = await admin.client.query("SHOW SERVERS");
      const active = servers.filter((s) => s.database === alias && s.state === "active").length;
      if (active > 0) throw new PgbouncerActiveServersError(alias, active);
    }
    const reloadStarted = performance.now();
    await admin.client.query("RELOAD");
    const reloadMs = performance.now() - reloadStarted;
    const { rows: databases } = await admin.client.query("SHOW DATABASES");
    const now = databases.find((d) => d.name === alias);
    if (!now || now.database !== options.to.dbname)
      throw new PgbouncerReloadError(alias, options.to.dbname, now?.database ?? null);
    let stallMs: number | null = null;
    if (paused) {
      await admin.client.query(`RESUME ${alias}`);
      paused = false;
      stallMs = performance.now() - pauseSent;
    }
    return { mode: options.mode, pauseMs, stallMs, reloadMs };
  } catch (error) {
    // A PAUSE still waiting keeps its connection hanging even after a RESUME from elsewhere (1.18), and
    // closing it does not resume: close it, then RESUME from a fresh connection (measured on 1.18).
    if (paused) {
      await admin.client.end().catch(() => undefined);
      admin = await connectAdmin(options.adminUrl);
      await admin.client.query(`RESUME ${alias}`).catch(() => undefined);
      paused = false;
    }
    try {
      await writeConfig(configFile, original);
      await admin.client.query("RELOAD");
    } catch (restoreError) {
      // The first error is why the switch stopped; the restore's failure is what the operator must fix now.
      throw new PgbouncerRestoreFailedError(alias, configFile, error, restoreError);
    }
    throw error;
  } finally {
    if (paused) await admin.client.query(`RESUME ${alias}`).catch(() => undefined);
    await admin.client.end().catch(() => undefined);
  }
}

/** Where PgBouncer's running configuration sends `alias` (SHOW DATABASES), or null when it has no such alias. */
export async function servedTarget(adminUrl: string, alias: string): Promise<AliasTarget | null> {
  assertAliasName(alias);
  const admin = await connectAdmin(adminUrl);
  try {
    const { rows } = await admin.client.query("SHOW DATABASES");
    const row = rows.find((d) => d.name === alias);
    if (!row) return null;
    return {
      host: row.host ? String(row.host) : null,
      port: row.port === null || row.port === undefined ? null : String(row.port),
      dbname: String(row.database),
    };
  } finally {
    await admin.client.end().catch(() => undefined);
  }
}

import type pg from "pg";
import { withClient } from "../pg/pool.ts";
import { quoteIdent } from "../pg/quote.ts";
import type { TunedSetting } from "./tune.ts";

export interface ApplySettingsResult {
  applied: { name: string; value: string; pendingRestart: boolean }[];
  /** Settings written to postgresql.auto.conf that wait for a server restart. */
  pendingRestart: string[];
  /** Settings this server cannot take as tuned (a value its build lacks, e.g. wal_compression lz4), left as they are. */
  skipped: { name: string; value: string; reason: string }[];
}

/**
 * ALTER SYSTEM SET for each setting, then pg_reload_conf(); reports which ones wait for a restart (as
 * pg_settings.pending_restart says after the reload). Needs a superuser (or ALTER SYSTEM privilege).
 */
export async function applySettings(
  pool: pg.Pool,
  settings: readonly TunedSetting[],
): Promise<ApplySettingsResult> {
  return withClient(pool, async (client) => {
    // An enum value the server was built without (lz4, zstd) would make ALTER SYSTEM fail: left as it is, and said.
    const { rows: enums } = await client.query<{ name: string; enumvals: string[] | null }>(
      "select name, enumvals from pg_settings where name = any($1::text[]) and vartype = 'enum'",
      [settings.map((s) => s.name)],
    );
    const allowed = new Map(enums.map((r) => [r.name, r.enumvals ?? []]));
    const skipped: ApplySettingsResult["skipped"] = [];
    const accepted = settings.filter((setting) => {
      const values = allowed.get(setting.name);
      if (!values || values.includes(setting.value)) return true;
      skipped.push({
        name: setting.name,
        value: setting.value,
        reason: `this server takes ${values.join(", ")}`,
      });
      return false;
    });
    settings = accepted;
    // ALTER SYSTEM accepts no bind parameters; the value goes in through format('%L') on the server
    for (const setting of settings) {
      const { rows } = await client.query<{ sql: string }>(
        `select format('alter system set %s = %L', $1::text, $2::text) as sql`,
        [quoteIdent(setting.name), setting.value],
      );
      await client.query(rows[0]!.sql);
    }
    await client.query("select pg_reload_conf()");
    // pending_restart is set by the postmaster's reload, which a backend sees shortly after
    await new Promise((resolve) => setTimeout(resolve, 300));
    const { rows } = await client.query<{ name: string; pending_restart: boolean }>(
      "select name, pending_restart from pg_settings where name = any($1::text[])",
      [settings.map((s) => s.name)],
    );
    const pending = new Map(rows.map((r) => [r.name, r.pending_restart]));
    const applied = settings.map((s) => ({
      name: s.name,
      value: s.value,
      pendingRestart: pending.get(s.name) ?? s.restart,
    }));
    return {
      applied,
      pendingRestart: applied.filter((a) => a.pendingRestart).map((a) => a.name),
      skipped,
    };
  });
}

/** The server's major version (`server_version_num` / 10000). */
export async function serverMajorVersion(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query<{ v: string }>("select current_setting('server_version_num') as v");
  return Math.floor(Number(rows[0]!.v) / 10000);
}

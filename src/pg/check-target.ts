import type pg from "pg";
import { type TargetIdentity, targetOf, withClient } from "./pool.ts";

export interface TargetCheck {
  target: TargetIdentity;
  serverVersion: string;
  serverVersionNum: number;
  database: string;
  user: string;
  superuser: boolean;
  canCreateSchema: boolean;
  extensions: { name: string; available: boolean; installed: boolean }[];
  /** pgshift's own schema parts and their versions, empty when pgshift never ran here. */
  internalSchema: { part: string; version: number }[];
  /** This connection's TLS: off, or on with protocol version and cipher (pg_stat_ssl). */
  tls: { on: boolean; version: string | null; cipher: string | null };
}

/** Connects and reports what pgshift needs to know about a target: version, rights, extensions. */
export async function checkTarget(pool: pg.Pool): Promise<TargetCheck> {
  return withClient(pool, async (client) => {
    const { rows } = await client.query(
      `select current_setting('server_version') as version, current_setting('server_version_num')::int as num,
              current_database() as database, current_user as "user",
              (select rolsuper from pg_roles where rolname = current_user) as superuser,
              has_database_privilege(current_database(), 'CREATE') as can_create`,
    );
    const ext = await client.query(
      `select name, installed_version is not null as installed from pg_available_extensions where name = any($1)`,
      [["pgcrypto", "pg_trgm"]],
    );
    const available = new Map<string, boolean>(ext.rows.map((r) => [r.name, r.installed]));
    const parts = await client
      .query(`select part, version from pgshift.schema_parts order by part`)
      .catch(() => ({ rows: [] as { part: string; version: number }[] }));
    const ssl = await client
      .query(`select ssl, version, cipher from pg_stat_ssl where pid = pg_backend_pid()`)
      .catch(() => ({ rows: [] as { ssl: boolean; version: string | null; cipher: string | null }[] }));
    const tls = ssl.rows[0];
    const row = rows[0];
    return {
      target: targetOf(pool),
      serverVersion: row.version,
      serverVersionNum: row.num,
      database: row.database,
      user: row.user,
      superuser: row.superuser,
      canCreateSchema: row.can_create,
      extensions: ["pgcrypto", "pg_trgm"].map((name) => ({
        name,
        available: available.has(name),
        installed: available.get(name) ?? false,
      })),
      internalSchema: parts.rows.map((r) => ({ part: r.part, version: r.version })),
      tls: { on: Boolean(tls?.ssl), version: tls?.version ?? null, cipher: tls?.cipher ?? null },
    };
  });
}

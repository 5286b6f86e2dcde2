import type pg from "pg";
import { UsageError } from "../errors.ts";
import { withClient } from "../pg/pool.ts";
import { quoteIdent, quoteLiteral, quoteQualified } from "../pg/quote.ts";

export interface RlsOptions {
  pool: pg.Pool;
  table: string;
  schema?: string;
  /** The column holding the tenant (default tenant_id). */
  column?: string;
  /** The custom setting naming the current tenant (default app.tenant), set per transaction with SET LOCAL. */
  setting?: string;
  dryRun?: boolean;
}

export interface RlsResult {
  table: string;
  policy: string;
  /** False when the table already had RLS enabled and forced, and the policy. */
  changed: boolean;
  statements: string[];
  dryRun: boolean;
}

export const TENANT_POLICY = "pgshift_tenant_isolation";

/**
 * The statements that isolate tenants in one table: ENABLE and FORCE row-level security (so the table's
 * owner is bound too; superusers and BYPASSRLS roles are not) and a policy comparing the tenant column
 * with `current_setting(setting, true)`. An unset or empty setting matches no row.
 */
export function rlsStatements(
  schema: string,
  table: string,
  column: string,
  columnType: string,
  setting: string,
): string[] {
  const qualified = quoteQualified(schema, table);
  // current_setting(..., true) is NULL when never set, '' after a SET LOCAL's transaction ended
  const tenant = `nullif(current_setting(${quoteLiteral(setting)}, true), '')::${columnType}`;
  const check = `(${quoteIdent(column)} = ${tenant})`;
  return [
    `ALTER TABLE ${qualified} ENABLE ROW LEVEL SECURITY`,
    `ALTER TABLE ${qualified} FORCE ROW LEVEL SECURITY`,
    `CREATE POLICY ${quoteIdent(TENANT_POLICY)} ON ${qualified} USING ${check} WITH CHECK ${check}`,
  ];
}

/** Turns on tenant isolation for a table; a second run finds everything in place and changes nothing. */
export async function provisionRls(options: RlsOptions): Promise<RlsResult> {
  const schema = options.schema ?? "public";
  const column = options.column ?? "tenant_id";
  const setting = options.setting ?? "app.tenant";
  if (!/^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$/i.test(setting))
    throw new UsageError(`the tenant setting must look like app.tenant, got "${setting}"`);
  return withClient(options.pool, async (client) => {
    const { rows } = await client.query<{
      type: string | null;
      enabled: boolean;
      forced: boolean;
      has_policy: boolean;
    }>(
      `select format_type(a.atttypid, a.atttypmod) as type, c.relrowsecurity as enabled,
              c.relforcerowsecurity as forced,
              exists (select 1 from pg_policy p where p.polrelid = c.oid and p.polname = $4) as has_policy
         from pg_class c join pg_namespace n on n.oid = c.relnamespace
         left join pg_attribute a on a.attrelid = c.oid and a.attname = $3 and not a.attisdropped
        where n.nspname = $1 and c.relname = $2 and c.relkind in ('r', 'p')`,
      [schema, options.table, column, TENANT_POLICY],
    );
    const found = rows[0];
    if (!found) throw new UsageError(`table ${schema}.${options.table} does not exist`);
    if (!found.type) throw new UsageError(`table ${schema}.${options.table} has no column "${column}"`);
    const [enable, force, policy] = rlsStatements(schema, options.table, column, found.type, setting);
    const statements = [
      ...(found.enabled ? [] : [enable!]),
      ...(found.forced ? [] : [force!]),
      ...(found.has_policy ? [] : [policy!]),
    ];
    const result = {
      table: `${schema}.${options.table}`,
      policy: TENANT_POLICY,
      changed: statements.length > 0,
      statements,
      dryRun: Boolean(options.dryRun),
    };
    if (options.dryRun || statements.length === 0) return result;
    await client.query("begin");
    try {
      for (const sql of statements) await client.query(sql);
      await client.query("commit");
    } catch (error) {
      await client.query("rollback").catch(() => undefined);
      throw error;
    }
    return result;
  });
}

import type pg from "pg";
import { PgshiftError, UsageError } from "../errors.ts";
import { targetOf, withClient } from "../pg/pool.ts";
import { quoteIdent, quoteLiteral } from "../pg/quote.ts";
import { generatePassword, type PgpassEntry, scramVerifier, writePgpass } from "./passwords.ts";

export type RoleKind = "owner" | "migrator" | "app" | "readonly";

export interface RoleTimeouts {
  /** statement_timeout in ms (0 = none). */
  statementTimeoutMs: number;
  /** idle_in_transaction_session_timeout in ms (0 = none). */
  idleInTransactionMs: number;
}

export interface ProvisionOptions {
  /** A pool connected as a superuser (or a role with CREATEROLE that owns the database). */
  pool: pg.Pool;
  /** The application's name: roles are `<app>_owner`, `<app>_migrator`, `<app>_app`, `<app>_readonly`. */
  app: string;
  /** Schema whose tables the roles share (default public). */
  schema?: string;
  /** Where generated passwords go, in .pgpass format, mode 0600. Required unless dryRun. */
  passwordFile?: string;
  /** Per-role timeouts; the owner never logs in and has none. */
  timeouts?: Partial<Record<Exclude<RoleKind, "owner">, Partial<RoleTimeouts>>>;
  /** Plan only: the statements are returned, nothing is changed, no password is generated. */
  dryRun?: boolean;
}

export interface ProvisionStatement {
  sql: string;
  /** The SQL as shown to people: a password verifier is replaced by a placeholder. */
  display: string;
}

export interface ProvisionResult {
  database: string;
  schema: string;
  roles: Record<RoleKind, string>;
  /** Roles that did not exist and were (or, with dryRun, would be) created. */
  created: string[];
  /** Users whose new passwords were written to the password file. */
  passwordsWritten: string[];
  passwordFile: string | undefined;
  statements: ProvisionStatement[];
  dryRun: boolean;
  /**
   * Whether the app and readonly roles were given SELECT on pgshift.migrations (the migration readiness
   * check). False when the table did not exist yet: run provision again after the first `migrate up`.
   */
  migrationsReadable: boolean;
}

export class ProvisionError extends PgshiftError {
  constructor(message: string, cause?: unknown) {
    super("provision_failed", message, { cause });
  }
}

/** Defaults chosen for a web service: short statements for the app, longer reads, no limit for migrations. */
export const DEFAULT_TIMEOUTS: Record<Exclude<RoleKind, "owner">, RoleTimeouts> = {
  migrator: { statementTimeoutMs: 0, idleInTransactionMs: 300_000 },
  app: { statementTimeoutMs: 30_000, idleInTransactionMs: 10_000 },
  readonly: { statementTimeoutMs: 300_000, idleInTransactionMs: 60_000 },
};

const APP_NAME = /^[a-z_][a-z0-9_]{0,40}$/;

export function roleNames(app: string): Record<RoleKind, string> {
  if (!APP_NAME.test(app))
    throw new UsageError(`--app must be lower-case letters, digits and _ (at most 41), got "${app}"`);
  return {
    owner: `${app}_owner`,
    migrator: `${app}_migrator`,
    app: `${app}_app`,
    readonly: `${app}_readonly`,
  };
}

function statement(sql: string, display = sql): ProvisionStatement {
  return { sql, display };
}

/**
 * The privilege statements, given which roles exist. Every one of them is idempotent (GRANT and REVOKE of
 * what is already granted or revoked, ALTER ROLE SET of the same value), so a second run changes nothing.
 */
export function privilegeStatements(
  database: string,
  schema: string,
  roles: Record<RoleKind, string>,
  timeouts: Record<Exclude<RoleKind, "owner">, RoleTimeouts>,
  /** pgshift.migrations exists: the app and readonly roles may read it (readiness checks), nothing else of pgshift. */
  migrationsTable = false,
): ProvisionStatement[] {
  const [db, s] = [quoteIdent(database), quoteIdent(schema)];
  const [owner, migrator, app, readonly] = [roles.owner, roles.migrator, roles.app, roles.readonly].map(
    quoteIdent,
  );
  const sql = [
    // the migrator works as the owner: what it creates belongs to the owner, never to a login role
    `GRANT ${owner} TO ${migrator}`,
    `ALTER ROLE ${migrator} SET role = ${quoteLiteral(roles.owner)}`,
    `REVOKE ALL ON DATABASE ${db} FROM PUBLIC`,
    `GRANT CONNECT, TEMPORARY, CREATE ON DATABASE ${db} TO ${owner}`,
    `GRANT CONNECT ON DATABASE ${db} TO ${migrator}, ${app}, ${readonly}`,
    `REVOKE ALL ON SCHEMA ${s} FROM PUBLIC`,
    `GRANT USAGE, CREATE ON SCHEMA ${s} TO ${owner}`,
    `GRANT USAGE ON SCHEMA ${s} TO ${app}, ${readonly}`,
    `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${s} TO ${app}`,
    `GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA ${s} TO ${app}`,
    `GRANT SELECT ON ALL TABLES IN SCHEMA ${s} TO ${readonly}`,
    `GRANT SELECT ON ALL SEQUENCES IN SCHEMA ${s} TO ${readonly}`,
    `ALTER DEFAULT PRIVILEGES FOR ROLE ${owner} IN SCHEMA ${s} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ${app}`,
    `ALTER DEFAULT PRIVILEGES FOR ROLE ${owner} IN SCHEMA ${s} GRANT USAGE, SELECT ON SEQUENCES TO ${app}`,
    `ALTER DEFAULT PRIVILEGES FOR ROLE ${owner} IN SCHEMA ${s} GRANT SELECT ON TABLES TO ${readonly}`,
    `ALTER DEFAULT PRIVILEGES FOR ROLE ${owner} IN SCHEMA ${s} GRANT SELECT ON SEQUENCES TO ${readonly}`,
  ];
  if (migrationsTable)
    sql.push(
      `GRANT USAGE ON SCHEMA pgshift TO ${app}, ${readonly}`,
      `GRANT SELECT ON pgshift.migrations TO ${app}, ${readonly}`,
    );
  for (const kind of ["migrator", "app", "readonly"] as const) {
    const role = quoteIdent(roles[kind]);
    sql.push(`ALTER ROLE ${role} SET statement_timeout = ${timeouts[kind].statementTimeoutMs}`);
    sql.push(
      `ALTER ROLE ${role} SET idle_in_transaction_session_timeout = ${timeouts[kind].idleInTransactionMs}`,
    );
  }
  return sql.map((text) => statement(text));
}

function resolvedTimeouts(
  given: ProvisionOptions["timeouts"],
): Record<Exclude<RoleKind, "owner">, RoleTimeouts> {
  const out = { ...DEFAULT_TIMEOUTS };
  for (const kind of ["migrator", "app", "readonly"] as const) {
    const t = { ...DEFAULT_TIMEOUTS[kind], ...given?.[kind] };
    for (const value of [t.statementTimeoutMs, t.idleInTransactionMs])
      if (!Number.isInteger(value) || value < 0)
        throw new UsageError(`timeouts for ${kind} must be whole milliseconds >= 0, got ${value}`);
    out[kind] = t;
  }
  return out;
}

/**
 * Creates the four roles of an application database (owner NOLOGIN; migrator, app, readonly with
 * generated passwords written to `passwordFile`, never returned) and grants least privilege. Roles that
 * exist keep their passwords; running it again changes nothing.
 */
export async function provisionRoles(options: ProvisionOptions): Promise<ProvisionResult> {
  const roles = roleNames(options.app);
  const schema = options.schema ?? "public";
  const timeouts = resolvedTimeouts(options.timeouts);
  const dryRun = Boolean(options.dryRun);
  if (!dryRun && !options.passwordFile)
    throw new UsageError(
      "a password file is needed to write the generated passwords to: pass --password-file",
    );
  return withClient(options.pool, async (client) => {
    const { rows: info } = await client.query<{
      database: string;
      schema_exists: boolean;
      migrations: boolean;
    }>(
      `select current_database() as database,
              exists (select 1 from pg_namespace where nspname = $1) as schema_exists,
              to_regclass('pgshift.migrations') is not null as migrations`,
      [schema],
    );
    const migrationsReadable = info[0]!.migrations;
    const database = info[0]!.database;
    if (!info[0]!.schema_exists) throw new UsageError(`schema "${schema}" does not exist in ${database}`);
    const { rows: existing } = await client.query<{ rolname: string }>(
      "select rolname from pg_roles where rolname = any($1::text[])",
      [Object.values(roles)],
    );
    const exists = new Set(existing.map((r) => r.rolname));
    const statements: ProvisionStatement[] = [];
    const created: string[] = [];
    const passwords: { user: string; password: string }[] = [];
    for (const kind of ["owner", "migrator", "app", "readonly"] as const) {
      const role = roles[kind];
      if (exists.has(role)) continue;
      created.push(role);
      if (kind === "owner") {
        statements.push(statement(`CREATE ROLE ${quoteIdent(role)} NOLOGIN`));
        continue;
      }
      const head = `CREATE ROLE ${quoteIdent(role)} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD`;
      if (dryRun) {
        statements.push(
          statement(`${head} '********'`, `${head} '********' -- generated, written to the password file`),
        );
        continue;
      }
      const password = generatePassword();
      passwords.push({ user: role, password });
      // a SCRAM verifier is a plain string literal: base64 and $ : only
      statements.push(
        statement(
          `${head} '${scramVerifier(password)}'`,
          `${head} '********' -- generated, written to the password file`,
        ),
      );
    }
    statements.push(...privilegeStatements(database, schema, roles, timeouts, migrationsReadable));
    const result: ProvisionResult = {
      database,
      schema,
      roles,
      created,
      passwordsWritten: [],
      passwordFile: options.passwordFile,
      statements,
      dryRun,
      migrationsReadable,
    };
    if (dryRun) return result;
    try {
      await client.query("begin");
      for (const s of statements) await client.query(s.sql);
      // the passwords are written before COMMIT: if the file cannot be written, no role exists without one
      if (passwords.length) {
        const target = targetOf(options.pool);
        const entries: PgpassEntry[] = passwords.map((p) => ({
          host: target.host,
          port: target.port,
          database,
          user: p.user,
          password: p.password,
        }));
        writePgpass(options.passwordFile!, entries);
      }
      await client.query("commit");
    } catch (error) {
      await client.query("rollback").catch(() => undefined);
      if (error instanceof PgshiftError) throw error;
      throw new ProvisionError(
        `provisioning ${options.app} failed: ${(error as Error).message}; nothing was changed (the run is one transaction)`,
        error,
      );
    }
    result.passwordsWritten = passwords.map((p) => p.user);
    return result;
  });
}

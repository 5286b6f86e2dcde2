import type { Command } from "commander";
import { UsageError } from "../../errors.ts";
import { action } from "../action.ts";

/** The provisioning library, loaded when a provision command runs: other commands start without it. */
const library = () => import("../../provision/index.ts");

interface ProvisionFlags {
  app?: string;
  passwordFile?: string;
  dryRun?: boolean;
  appStatementTimeout?: string;
  appIdleTimeout?: string;
  readonlyStatementTimeout?: string;
}

interface RlsFlags {
  table: string;
  column: string;
  setting: string;
  dryRun?: boolean;
}

function ms(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new UsageError(`${flag} must be whole milliseconds >= 0, got "${value}"`);
  return Number(value);
}

export function registerProvisionCommands(program: Command): void {
  const provision = program
    .command("provision")
    .description(
      "create an application's roles (owner, migrator, app, readonly) with least privilege; --to must be an admin URL",
    )
    .option("--app <name>", "application name: roles <name>_owner, _migrator, _app, _readonly")
    .option("--password-file <file>", "where generated passwords go (.pgpass format, mode 0600)")
    .option("--dry-run", "print the SQL (passwords masked) and change nothing")
    .option("--app-statement-timeout <ms>", "statement_timeout of the app role (default 30000)")
    .option("--app-idle-timeout <ms>", "idle_in_transaction_session_timeout of the app role (default 10000)")
    .option("--readonly-statement-timeout <ms>", "statement_timeout of the readonly role (default 300000)")
    .action(
      action(async (ctx, flags: ProvisionFlags) => {
        if (!flags.app) throw new UsageError("provision needs --app NAME (the roles are named after it)");
        const { provisionRoles } = await library();
        const app = {
          ...(ms("--app-statement-timeout", flags.appStatementTimeout) !== undefined
            ? { statementTimeoutMs: ms("--app-statement-timeout", flags.appStatementTimeout)! }
            : {}),
          ...(ms("--app-idle-timeout", flags.appIdleTimeout) !== undefined
            ? { idleInTransactionMs: ms("--app-idle-timeout", flags.appIdleTimeout)! }
            : {}),
        };
        const readonlyTimeout = ms("--readonly-statement-timeout", flags.readonlyStatementTimeout);
        const result = await provisionRoles({
          pool: await ctx.pool({ max: 1 }),
          app: flags.app,
          schema: ctx.globals.schema ?? "public",
          passwordFile: flags.passwordFile ?? `${flags.app}.pgpass`,
          dryRun: Boolean(flags.dryRun),
          timeouts: {
            app,
            ...(readonlyTimeout !== undefined ? { readonly: { statementTimeoutMs: readonlyTimeout } } : {}),
          },
        });
        // the JSON answer carries the displayed SQL only: a verifier is no password, but it stays home
        const shown = { ...result, statements: result.statements.map((s) => s.display) };
        ctx.out.result(shown, () => {
          if (result.dryRun) return shown.statements.map((s) => `${s};`).join("\n");
          return [
            `provisioned ${flags.app} in ${result.database} (schema ${result.schema})`,
            `  roles: ${Object.values(result.roles).join(", ")}`,
            result.created.length
              ? `  created: ${result.created.join(", ")}`
              : "  created: none (all roles existed)",
            result.passwordsWritten.length
              ? `  passwords written to ${result.passwordFile} (mode 0600, .pgpass format) for: ${result.passwordsWritten.join(", ")}`
              : "  no new passwords",
            result.migrationsReadable
              ? `  ${result.roles.app} and ${result.roles.readonly} may read pgshift.migrations (readiness: serve --expect-migrations)`
              : "  pgshift.migrations does not exist yet: run provision again after the first `pgshift migrate up`, so the app can read it for readiness checks",
          ].join("\n");
        });
        return undefined;
      }),
    );

  provision
    .command("rls")
    .description(
      "row-level security on a table: ENABLE + FORCE and a policy on current_setting('app.tenant', true)",
    )
    .requiredOption("--table <table>", "table to isolate by tenant")
    .option("--column <column>", "the tenant column", "tenant_id")
    .option(
      "--setting <name>",
      "the setting naming the current tenant (SET LOCAL per transaction)",
      "app.tenant",
    )
    .option("--dry-run", "print the SQL and change nothing")
    .action(
      action(async (ctx, flags: RlsFlags) => {
        const { provisionRls } = await library();
        // commander hands `provision rls --dry-run` to the parent's --dry-run: honour either, never apply by mistake
        const dryRun = Boolean(flags.dryRun || (ctx.globals as { dryRun?: boolean }).dryRun);
        const result = await provisionRls({
          pool: await ctx.pool({ max: 1 }),
          table: flags.table,
          column: flags.column,
          schema: ctx.globals.schema ?? "public",
          setting: flags.setting,
          dryRun,
        });
        ctx.out.result(result, () => {
          if (result.dryRun) return result.statements.map((s) => `${s};`).join("\n") || "-- nothing to do";
          return result.changed
            ? `row-level security on ${result.table}: ${result.statements.length} statement(s) run; set the tenant per transaction with SET LOCAL ${flags.setting} = '...'`
            : `row-level security on ${result.table}: already in place`;
        });
        return undefined;
      }),
    );
}

import type { Command } from "commander";
import { checkTarget } from "../../pg/check-target.ts";
import { action } from "../action.ts";

export function registerCheckCommand(program: Command): void {
  program
    .command("check")
    .description("connect to the target and report server version, rights, extensions and pgshift state")
    .action(
      action(async (ctx) => {
        const result = await checkTarget(await ctx.pool({ max: 1 }));
        ctx.out.result(result, () =>
          [
            `connected to ${result.target.url}`,
            `  PostgreSQL ${result.serverVersion}, database ${result.database}, user ${result.user}${result.superuser ? " (superuser)" : ""}`,
            `  create schemas: ${result.canCreateSchema ? "yes" : "no"}`,
            `  tls: ${result.tls.on ? `${result.tls.version} ${result.tls.cipher}` : "off (the connection is not encrypted)"}`,
            `  extensions: ${result.extensions.map((e) => `${e.name} ${e.installed ? "installed" : e.available ? "available" : "MISSING"}`).join(", ")}`,
            `  pgshift schema: ${result.internalSchema.length ? result.internalSchema.map((p) => `${p.part} v${p.version}`).join(", ") : "not created yet"}`,
          ].join("\n"),
        );
        return undefined;
      }),
    );
}

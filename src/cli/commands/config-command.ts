import type { Command } from "commander";
import { action } from "../action.ts";
import { renderTable } from "../output.ts";

export function registerConfigCommands(program: Command): void {
  const config = program.command("config").description("inspect pgshift settings");
  config
    .command("show")
    .description("print the resolved settings and where each came from (passwords redacted)")
    .action(
      action(async (ctx) => {
        const { settings, sources, configFile } = ctx.resolvedSettings;
        const { redactSettings } = await import("../../config/settings.ts");
        const shown = redactSettings(settings);
        ctx.out.result({ settings: shown, sources, configFile: configFile ?? null }, () =>
          renderTable(
            ["setting", "value", "from"],
            Object.entries(shown).map(([key, value]) => [
              key,
              String(value),
              sources[key as keyof typeof sources] ?? "default",
            ]),
          ),
        );
        return undefined;
      }),
    );
}

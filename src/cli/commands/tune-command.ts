import { availableParallelism, totalmem } from "node:os";
import type { Command } from "commander";
import { UsageError } from "../../errors.ts";
import type { Storage, Workload } from "../../provision/tune.ts";
import { action } from "../action.ts";

/** The provisioning library, loaded when `tune` runs: other commands start without it. */
const library = () => import("../../provision/index.ts");

interface TuneFlags {
  memory?: string;
  cpus?: string;
  connections?: string;
  workload: string;
  storage: string;
  pgVersion?: string;
  format: string;
  apply?: boolean;
  restart?: boolean;
}

function wholeNumber(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < 1)
    throw new UsageError(`${flag} must be a whole number >= 1, got "${value}"`);
  return Number(value);
}

export function registerTuneCommand(program: Command): void {
  program
    .command("tune")
    .description("pgtune's recommended settings for a machine, as ALTER SYSTEM statements or a conf snippet")
    .option("--memory <size>", "RAM of the database server, e.g. 16GB (default: this machine's)")
    .option("--cpus <n>", "CPU cores of the database server (default: this machine's)")
    .option(
      "--connections <n>",
      "max_connections (default per workload: web 200, oltp 300, dw 40, mixed 100)",
    )
    .option("--workload <kind>", "web, oltp, dw, mixed or desktop", "web")
    .option("--storage <kind>", "ssd, hdd, san or nvme", "ssd")
    .option("--pg-version <major>", "PostgreSQL major version (default: the target's with --apply, else 16)")
    .option("--format <format>", "sql (ALTER SYSTEM) or conf (postgresql.conf snippet)", "sql")
    .option("--apply", "run the ALTER SYSTEM statements on the target and reload")
    .option("--restart", "with --apply on the managed local instance: restart it when a setting needs it")
    .action(
      action(async (ctx, flags: TuneFlags) => {
        const { tune, alterSystemSql, confSnippet, parseMemory, applySettings, serverMajorVersion } =
          await library();
        if (flags.format !== "sql" && flags.format !== "conf")
          throw new UsageError(`--format must be "sql" or "conf", got "${flags.format}"`);
        const pool = flags.apply ? await ctx.pool({ max: 1 }) : undefined;
        const pgVersion =
          wholeNumber("--pg-version", flags.pgVersion) ?? (pool ? await serverMajorVersion(pool) : undefined);
        const connections = wholeNumber("--connections", flags.connections);
        const result = tune({
          memoryBytes: flags.memory ? parseMemory(flags.memory) : totalmem(),
          cpus: wholeNumber("--cpus", flags.cpus) ?? availableParallelism(),
          ...(connections !== undefined ? { connections } : {}),
          workload: flags.workload as Workload,
          storage: flags.storage as Storage,
          ...(pgVersion !== undefined ? { pgVersion } : {}),
        });
        for (const warning of result.warnings) ctx.out.notice(`warning: ${warning}`);
        const i = result.input;
        const header = `pgtune formulas: ${Math.round(i.memoryBytes / 1024 ** 2)}MB RAM, ${i.cpus} CPUs, ${i.connections} connections, ${i.workload}, ${i.storage}, PostgreSQL ${i.pgVersion}`;
        const text =
          flags.format === "conf"
            ? confSnippet(result.settings, header)
            : `-- ${header}\n${alterSystemSql(result.settings)}`;
        if (!pool) {
          ctx.out.result(result, () => text);
          return undefined;
        }
        const applied = await applySettings(pool, result.settings);
        const target = await ctx.targetUrl();
        let restarted = false;
        if (applied.pendingRestart.length && flags.restart) {
          if (!target.managed)
            throw new UsageError(
              "--restart works on the managed local instance only; restart the server yourself",
            );
          await ctx.close();
          const options = { name: ctx.settings.localName, baseDir: ctx.settings.localDir };
          const { startLocalInstance, stopLocalInstance } = await import("../../local/instance.ts");
          await stopLocalInstance(options);
          await startLocalInstance(options);
          restarted = true;
        }
        ctx.out.result({ ...result, ...applied, restarted }, () =>
          [
            `applied ${applied.applied.length} settings (${header})`,
            applied.pendingRestart.length === 0
              ? "  all in effect after reload"
              : restarted
                ? `  restarted the managed instance for: ${applied.pendingRestart.join(", ")}`
                : `  waiting for a restart: ${applied.pendingRestart.join(", ")}${target.managed ? " (pass --restart, or pgshift local stop && pgshift local start)" : ""}`,
            ...applied.skipped.map((s) => `  not applied: ${s.name} = ${s.value} (${s.reason})`),
          ].join("\n"),
        );
        return undefined;
      }),
    );
}

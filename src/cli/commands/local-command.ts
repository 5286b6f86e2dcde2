import type { Command } from "commander";
import type { LocalInstanceStatus } from "../../local/instance.ts";
import { PgshiftError } from "../../errors.ts";
import { action } from "../action.ts";
import type { CommandContext } from "../context.ts";

/** The managed instance's code (and pg), loaded when a command runs, not when the CLI starts. */
const instance = () => import("../../local/instance.ts");

function describe(status: LocalInstanceStatus): string {
  if (status.state === "absent") return `instance ${status.name}: absent (nothing under ${status.dir})`;
  return [
    `instance ${status.name}: ${status.state}${status.pid ? ` (pid ${status.pid})` : ""}`,
    `  PostgreSQL ${status.version} from ${status.binDir} (${status.binarySource}), running as ${status.runAs}`,
    `  url:  ${status.url}   (full: pgshift local url${status.name === "default" ? "" : ` --name ${status.name}`})`,
    ...(status.tls
      ? ["  tls:  required (hostssl only); the url verifies the server with the instance's CA"]
      : []),
    `  data: ${status.dataDir}`,
    `  log:  ${status.logFile}`,
  ].join("\n");
}

function instanceOptions(ctx: CommandContext, name: string | undefined) {
  return { name: name ?? ctx.settings.localName, baseDir: ctx.settings.localDir };
}

export function registerLocalCommands(program: Command): void {
  const local = program
    .command("local")
    .description("manage local PostgreSQL instances (the embedded default target when no --to is given)");

  local
    .command("start")
    .description("create (on first use) and start an instance on a free loopback port")
    .option("--name <name>", "instance name", undefined)
    .option("--tls", "make a CA and server certificate (first time) and accept TLS connections only")
    .option("--pgbouncer", "run PgBouncer (transaction pooling) in front of it on its own port")
    .action(
      action(async (ctx, opts: { name?: string; tls?: boolean; pgbouncer?: boolean }) => {
        const result = await (
          await instance()
        ).startLocalInstance({
          ...instanceOptions(ctx, opts.name),
          ...(opts.tls ? { tls: true } : {}),
          ...(opts.pgbouncer ? { pgbouncer: true } : {}),
        });
        ctx.out.result(result, () => {
          const verb = result.alreadyRunning
            ? "already running"
            : result.created
              ? "created and started"
              : "started";
          const recovered = result.recoveredStaleLock
            ? " (recovered from a crash: stale postmaster.pid removed)"
            : "";
          return `${verb}${recovered}\n${describe(result.status)}`;
        });
        return undefined;
      }),
    );

  local
    .command("stop")
    .description("stop an instance (data is kept)")
    .option("--name <name>", "instance name")
    .action(
      action(async (ctx, opts: { name?: string }) => {
        const status = await (await instance()).stopLocalInstance(instanceOptions(ctx, opts.name));
        ctx.out.result(status, () => describe(status));
        return undefined;
      }),
    );

  local
    .command("status")
    .description("show an instance's state, version, port and paths (exit 1 when not running)")
    .option("--name <name>", "instance name")
    .action(
      action(async (ctx, opts: { name?: string }) => {
        const status = await (await instance()).localInstanceStatus(instanceOptions(ctx, opts.name));
        ctx.out.result(status, () => describe(status));
        return status.state === "running" ? 0 : 1;
      }),
    );

  local
    .command("url")
    .description("print the full connection URL (with password) for psql or DATABASE_URL")
    .option("--name <name>", "instance name")
    .option("--pgbouncer", "the URL through the instance's PgBouncer")
    .action(
      action(async (ctx, opts: { name?: string; pgbouncer?: boolean }) => {
        const options = instanceOptions(ctx, opts.name);
        const lib = await instance();
        const url = opts.pgbouncer ? lib.localPgbouncerUrl(options) : lib.localInstanceUrl(options);
        // The one place pgshift prints a password: the user asked for a usable connection string.
        if (ctx.out.json) ctx.out.raw(JSON.stringify({ url }));
        else ctx.out.raw(url);
        return undefined;
      }),
    );

  local
    .command("destroy")
    .description("stop an instance and delete its data directory")
    .option("--name <name>", "instance name")
    .action(
      action(async (ctx, opts: { name?: string }) => {
        const options = instanceOptions(ctx, opts.name);
        const lib = await instance();
        const before = await lib.localInstanceStatus(options);
        if (before.state === "absent")
          throw new PgshiftError(
            "instance_not_found",
            `no local instance ${JSON.stringify(before.name)} under ${before.dir}; nothing was destroyed (pgshift local status --name NAME shows one)`,
            { details: { name: before.name, dir: before.dir } },
          );
        const status = await lib.destroyLocalInstance(options);
        ctx.out.result(status, () => `instance ${status.name} destroyed (${status.dir} removed)`);
        return undefined;
      }),
    );
}

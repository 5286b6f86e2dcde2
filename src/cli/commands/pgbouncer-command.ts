import type { Command } from "commander";
import { UsageError } from "../../errors.ts";
import { action } from "../action.ts";

/** The provisioning library, loaded when a pgbouncer command runs. */
const library = () => import("../../provision/index.ts");

export function registerPgbouncerCommands(program: Command): void {
  const pgbouncer = program.command("pgbouncer").description("PgBouncer in front of a target");
  pgbouncer
    .command("config")
    .description(
      "write pgbouncer.ini (transaction mode) and its auth file (the users' SCRAM verifiers) for --to",
    )
    .requiredOption("--users <roles>", "comma-separated roles that log in through PgBouncer")
    .option("--out <dir>", "directory for pgbouncer.ini and userlist.txt", "pgbouncer")
    .option("--listen-port <n>", "PgBouncer's port", "6432")
    .option("--pool-size <n>", "server connections per database and user", "20")
    .action(
      action(async (ctx, flags: { users: string; out: string; listenPort: string; poolSize: string }) => {
        for (const [flag, value] of [
          ["--listen-port", flags.listenPort],
          ["--pool-size", flags.poolSize],
        ] as const)
          if (!/^\d+$/.test(value) || Number(value) < 1)
            throw new UsageError(`${flag} must be a whole number >= 1, got "${value}"`);
        const { writePgbouncerFiles } = await library();
        const result = await writePgbouncerFiles({
          pool: await ctx.pool({ max: 1 }),
          dir: flags.out,
          users: flags.users
            .split(",")
            .map((u) => u.trim())
            .filter(Boolean),
          listenPort: Number(flags.listenPort),
          defaultPoolSize: Number(flags.poolSize),
        });
        ctx.out.result(result, () =>
          [
            `wrote ${result.ini} (transaction pooling to ${result.server.host}:${result.server.port})`,
            `  ${result.authFile} (mode 0600): ${result.users.join(", ")}`,
            `  run: pgbouncer ${result.ini}`,
          ].join("\n"),
        );
        return undefined;
      }),
    );
}

import { existsSync } from "node:fs";
import type { Command } from "commander";
import { UsageError } from "../../errors.ts";
import { action } from "../action.ts";

/** The health server, loaded when `serve` runs: other commands start without it. */
const library = () => import("../../serve/index.ts");

interface ServeFlags {
  port: string;
  host: string;
  readyTimeout: string;
  poolMax: string;
  expectMigrations?: string;
  expectVersion?: string;
  maxArchiveLag?: string;
  maxReplicationLag?: string;
  backupRepo?: string;
}

function wholeNumber(flag: string, value: string, min: number): number {
  if (!/^\d+$/.test(value) || Number(value) < min)
    throw new UsageError(`${flag} must be a whole number >= ${min}, got "${value}"`);
  return Number(value);
}

export function registerServeCommand(program: Command): void {
  program
    .command("serve")
    .description("health sidecar: /livez, /readyz, /status (health+json) and /metrics (Prometheus) for --to")
    .option("--port <n>", "port to listen on (0: any free port)", "9187")
    .option("--host <address>", "address to listen on", "127.0.0.1")
    .option("--ready-timeout <ms>", "deadline of each readiness check", "1000")
    .option("--pool-max <n>", "connections the sidecar may open", "2")
    .option("--expect-migrations <dir>", "ready only when every migration in DIR is applied")
    .option(
      "--backup-repo <dir>",
      "a pgshift backup repository: /metrics shows its newest backups and restore drill",
    )
    .option("--expect-version <version>", "ready only when the schema is at least at VERSION")
    .option(
      "--max-archive-lag <duration>",
      "ready only when WAL waits for the archiver at most this long (e.g. 5m)",
    )
    .option(
      "--max-replication-lag <duration>",
      "ready only when every standby replays within this (e.g. 30s)",
    )
    .action(
      action(async (ctx, flags: ServeFlags) => {
        const { archiveLagCheck, migrationsCheck, replicationLagCheck, startHealthServer } = await library();
        const { parseDuration } = await import("../../duration.ts");
        const port = wholeNumber("--port", flags.port, 0);
        const archiveLagMs = flags.maxArchiveLag && parseDuration(flags.maxArchiveLag, "--max-archive-lag");
        const replicationLagMs =
          flags.maxReplicationLag && parseDuration(flags.maxReplicationLag, "--max-replication-lag");
        if (flags.backupRepo && !existsSync(flags.backupRepo))
          throw new UsageError(`--backup-repo ${flags.backupRepo}: no such directory`);
        if (flags.expectMigrations && !existsSync(flags.expectMigrations))
          throw new UsageError(`--expect-migrations ${flags.expectMigrations}: no such directory`);
        const readyTimeoutMs = wholeNumber("--ready-timeout", flags.readyTimeout, 1);
        const { url } = await ctx.targetUrl();
        // its own pool: short connect timeout so a dead database answers 503 quickly, not after 10 s
        const { createPool } = await import("../../pg/pool.ts");
        const pool = createPool({
          url,
          max: wholeNumber("--pool-max", flags.poolMax, 1),
          applicationName: "pgshift serve",
          connectTimeoutMs: readyTimeoutMs,
        });
        const signal = ctx.signal;
        const checks = [
          ...(flags.expectMigrations || flags.expectVersion
            ? [
                migrationsCheck(pool, {
                  ...(flags.expectMigrations ? { dir: flags.expectMigrations } : {}),
                  ...(flags.expectVersion ? { atLeast: flags.expectVersion } : {}),
                }),
              ]
            : []),
          ...(archiveLagMs ? [archiveLagCheck(pool, archiveLagMs / 1000)] : []),
          ...(replicationLagMs ? [replicationLagCheck(pool, replicationLagMs / 1000)] : []),
        ];
        const health = await startHealthServer({ pool, port, host: flags.host, readyTimeoutMs, checks });
        const { registerRefreshMetrics } = await import("../../refresh/refresh-metrics.ts");
        registerRefreshMetrics(health, pool);
        if (flags.backupRepo) {
          const { registerBackupMetrics } = await import("../../backup/backup-metrics.ts");
          registerBackupMetrics(health, { repository: flags.backupRepo });
        }
        ctx.out.notice(
          `serving ${health.url}/livez, /readyz, /status and /metrics; readiness: ${["database:responseTime", ...checks.map((c) => c.name)].join(", ")}; stop with Ctrl-C`,
        );
        try {
          await new Promise<void>((resolve) => {
            if (signal.aborted) resolve();
            else signal.addEventListener("abort", () => resolve(), { once: true });
          });
        } finally {
          await health.close();
          await pool.end().catch(() => undefined);
        }
        ctx.interruptedBy = undefined; // a stop by signal is how a sidecar ends: exit 0
        ctx.out.result({ url: health.url, stopped: true }, () => "stopped");
        return undefined;
      }),
    );
}

import type { Command } from "commander";
import { UsageError } from "../../errors.ts";
import type { MaintenanceReport } from "../../serve/maintenance-checks.ts";
import { action } from "../action.ts";

interface CheckFlags {
  deadTuples: string;
  deadRatio: string;
  slowest: string;
  pooler: string;
  pgbouncerVersion?: string;
}

function numberFlag(flag: string, value: string, valid: (n: number) => boolean, what: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || !valid(n))
    throw new UsageError(`${flag} must be ${what}, got "${value}"`);
  return n;
}

function maintenanceLines(m: MaintenanceReport): string[] {
  const lines = [
    `  autovacuum: ${m.autovacuum.on ? "on" : "OFF"}${m.autovacuum.trackCounts ? "" : " (track_counts off)"}${m.autovacuum.disabledTables.length ? `, off for ${m.autovacuum.disabledTables.map((t) => `${t.schema}.${t.table}`).join(", ")}` : ""}`,
    `  dead tuples: ${m.deadTuples.length ? m.deadTuples.map((d) => `${d.schema}.${d.table} ${d.deadTuples} (${Math.round(d.ratio * 100)} %)`).join(", ") : "no table over the threshold"}`,
    `  never analyzed: ${m.neverAnalyzed.length ? m.neverAnalyzed.map((t) => `${t.schema}.${t.table}`).join(", ") : "none"}`,
  ];
  if (m.statements.state === "installed") {
    lines.push(`  slowest statements (pg_stat_statements, mean):`);
    if (!m.statements.slowest.length) lines.push("    none recorded yet");
    for (const s of m.statements.slowest) {
      const query = s.query.replace(/\s+/g, " ").trim();
      lines.push(
        `    ${s.meanMs.toFixed(2)} ms x ${s.calls}  ${query.length > 100 ? `${query.slice(0, 99)}…` : query}`,
      );
    }
  } else {
    lines.push(`  pg_stat_statements: ${m.statements.state.replace("_", " ")}; ${m.statements.hint}`);
  }
  lines.push(
    `  pooler: ${m.pooler.detected === null ? "none detected" : `${m.pooler.detected}${m.pooler.version ? ` ${m.pooler.version}` : ""}, ${m.pooler.hazards.length} transaction-pooling hazard(s)`}`,
  );
  if (m.warnings.length) lines.push("warnings:", ...m.warnings.map((w) => `  - ${w}`));
  return lines;
}

export function registerCheckCommand(program: Command): void {
  program
    .command("check")
    .description(
      "connect to the target and report server version, rights, extensions, pgshift state and maintenance (autovacuum, dead tuples, slow statements, pooling hazards)",
    )
    .option("--dead-tuples <n>", "report tables with at least this many dead tuples", "10000")
    .option("--dead-ratio <r>", "... that are at least this share of their tuples (0-1)", "0.2")
    .option("--slowest <n>", "statements to list from pg_stat_statements", "5")
    .option("--pooler <kind>", "auto | pgbouncer | none: check transaction-pooling hazards", "auto")
    .option("--pgbouncer-version <v>", "PgBouncer's version when its console does not tell it")
    .action(
      action(async (ctx, flags: CheckFlags) => {
        const deadTuplesMin = numberFlag(
          "--dead-tuples",
          flags.deadTuples,
          (n) => n >= 0 && Number.isInteger(n),
          "a whole number >= 0",
        );
        const deadRatioMin = numberFlag(
          "--dead-ratio",
          flags.deadRatio,
          (n) => n >= 0 && n <= 1,
          "a number from 0 to 1",
        );
        const slowest = numberFlag(
          "--slowest",
          flags.slowest,
          (n) => n >= 0 && Number.isInteger(n),
          "a whole number >= 0",
        );
        if (!["auto", "pgbouncer", "none"].includes(flags.pooler))
          throw new UsageError(`--pooler must be auto, pgbouncer or none, got "${flags.pooler}"`);
        const { url } = await ctx.targetUrl();
        const pool = await ctx.pool({ max: 1 });
        const { checkTarget } = await import("../../pg/check-target.ts");
        const target = await checkTarget(pool);
        const { maintenanceChecks } = await import("../../serve/maintenance-checks.ts");
        const maintenance = await maintenanceChecks(pool, {
          url,
          deadTuplesMin,
          deadRatioMin,
          slowest,
          pooler: flags.pooler as "auto" | "pgbouncer" | "none",
          ...(flags.pgbouncerVersion ? { pgbouncerVersion: flags.pgbouncerVersion } : {}),
        });
        const result = { ...target, maintenance };
        ctx.out.result(result, () =>
          [
            `connected to ${result.target.url}`,
            `  PostgreSQL ${result.serverVersion}, database ${result.database}, user ${result.user}${result.superuser ? " (superuser)" : ""}`,
            `  create schemas: ${result.canCreateSchema ? "yes" : "no"}`,
            `  tls: ${result.tls.on ? `${result.tls.version} ${result.tls.cipher}` : "off (the connection is not encrypted)"}`,
            `  extensions: ${result.extensions.map((e) => `${e.name} ${e.installed ? "installed" : e.available ? "available" : "MISSING"}`).join(", ")}`,
            `  pgshift schema: ${result.internalSchema.length ? result.internalSchema.map((p) => `${p.part} v${p.version}`).join(", ") : "not created yet"}`,
            ...maintenanceLines(maintenance),
          ].join("\n"),
        );
        return undefined;
      }),
    );
}

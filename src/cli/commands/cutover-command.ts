import type { Command } from "commander";
import type { CutoverStatusReport, CutoverVerifyReport } from "../../cutover/cutover-report.ts";
import type { RampDecision } from "../../cutover/ramp-policy.ts";
import type { RampSettingsInput, RampThresholds } from "../../cutover/ramp-settings.ts";
import { ExitCode } from "../../errors.ts";
import { action } from "../action.ts";
import { auditOperation } from "../audit-operation.ts";
import { renderTable } from "../output.ts";

/** The cutover modules, loaded when a cutover command runs: other commands start without them. */
const reports = () => import("../../cutover/cutover-report.ts");

function ago(iso: string): string {
  const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (seconds < 120) return `${seconds} s ago`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min ago`;
  return `${Math.round(seconds / 3600)} h ago`;
}

function percent(rate: number): string {
  return `${(rate * 100).toFixed(2)} %`;
}

function renderStatus(s: CutoverStatusReport): string {
  const r = s.routing;
  const reads =
    r.reads === "split"
      ? `${100 - r.nextReadPercent} % legacy, ${r.nextReadPercent} % next (by key)`
      : `${r.reads}${r.shadow ? `; shadow reads on ${r.reads === "legacy" ? "next" : "legacy"}` : ""}`;
  const lines = [
    `cutover ${s.cutover.name}: ${s.cutover.phase}${s.cutover.forced ? " (forced)" : ""}, since ${s.cutover.changedAt} by ${s.cutover.changedBy}${s.cutover.reason ? ` (${s.cutover.reason})` : ""}`,
    `  writes: ${r.writes.map((side, i) => (i === 0 ? `${side} (authoritative)` : side)).join(", then ")}`,
    `  reads:  ${reads}`,
  ];
  if (s.override)
    lines.push(
      `  override: ${s.override.variable}=${s.override.value} is set in this shell; instances started with it ignore the stored phase`,
    );
  lines.push(
    `  repairs: ${s.repairs.pendingNext + s.repairs.pendingLegacy} pending (${s.repairs.pendingNext} for next, ${s.repairs.pendingLegacy} for legacy), ${s.repairs.repaired} repaired`,
    `  shadow (as instances reported): ${s.shadow.matched} matched, ${s.shadow.mismatched} mismatched, ${s.shadow.raced} raced, ${s.shadow.errors} errors, ${s.shadow.skipped} skipped`,
  );
  const v = s.lastVerification;
  lines.push(
    v
      ? `  last verification: ${v.finishedAt} (${ago(v.finishedAt)}), ${v.mode}, ${v.keysChecked} keys, ${v.mismatched} divergent (${percent(v.mismatchRate)}), ${v.repaired} repaired, ${v.errors} errors`
      : "  last verification: none (run store.cutover.verify() in the application)",
  );
  if (s.ramp) {
    const last = s.ramp.lastDecision as RampDecision | null;
    lines.push(
      `  ramp: ${s.ramp.state}${s.ramp.pausedReason ? ` (${s.ramp.pausedReason})` : ""}, ${s.ramp.steps.join(", ")} every ${s.ramp.everyMs / 1000} s${last ? `; last decision: ${last.action}: ${last.reason}` : ""}`,
    );
  }
  if (s.lastSnapshot)
    lines.push(
      `  final snapshot: ${s.lastSnapshot.path}, ${s.lastSnapshot.records} records, sha256 ${s.lastSnapshot.sha256}, started ${s.lastSnapshot.startedAt}`,
    );
  for (const b of s.backfills)
    lines.push(
      `  backfill ${b.resumeKey}: ${b.status}, ${b.rowsDone} records in ${b.batches} batches, last key ${b.lastKey ?? "-"}`,
    );
  if (s.disagreeing.length)
    lines.push(`  WARNING: live instances on another phase: ${s.disagreeing.join(", ")}`);
  if (s.instances.length) {
    lines.push("", "instances:");
    lines.push(
      renderTable(
        ["instance", "phase", "source", "reported", "state"],
        s.instances.map((i) => [
          i.instanceId,
          i.phase,
          i.phaseSource,
          ago(i.reportedAt),
          i.closed ? "closed" : i.stale ? "stale" : "live",
        ]),
      ),
    );
  }
  if (s.history.length) {
    lines.push("", "history:");
    lines.push(
      renderTable(
        ["at", "from", "to", "kind", "by", "reason"],
        s.history.map((h) => [
          h.at,
          h.from ?? "",
          h.to,
          `${h.kind}${h.forced ? " (forced)" : ""}`,
          h.actor,
          h.reason ?? "",
        ]),
      ),
    );
  }
  return lines.join("\n");
}

function renderVerify(report: CutoverVerifyReport): string {
  const lines = [`cutover ${report.name} (${report.phase}): ${report.verdict}`];
  for (const reason of report.reasons) lines.push(`  - ${reason}`);
  const v = report.verification;
  if (v) {
    lines.push(
      `  latest verification ${v.finishedAt}: ${v.mode}, ${v.keysChecked} keys, ${v.matched} matched, ${v.mismatched} divergent (${percent(v.mismatchRate)}: ${v.missingInNext} missing in next, ${v.missingInLegacy} missing in legacy), ${v.errors} errors`,
    );
    if (v.samples.length) {
      lines.push("  sample keys:");
      for (const sample of v.samples.slice(0, 10)) {
        const where = sample.diff?.length
          ? ` at ${sample.diff
              .slice(0, 3)
              .map((d) => d.path || "/")
              .join(", ")}`
          : "";
        lines.push(
          `    ${sample.key}: ${sample.kind}${where}${sample.repaired ? " (repaired)" : ""}${sample.error ? ` (${sample.error})` : ""}`,
        );
      }
    }
  }
  lines.push(
    `  shadow reads (as instances reported): ${report.shadow.matched} matched, ${report.shadow.mismatched} mismatched, ${report.shadow.errors} errors`,
  );
  return lines.join("\n");
}

interface RampFlags {
  every?: string;
  step?: string;
  steps?: string;
  rollbackTo?: string;
  maxErrorRate?: string;
  maxMismatchRate?: string;
  maxP95Ms?: string;
  maxPendingRepairs?: string;
  minCalls?: string;
  tick?: string;
  once?: boolean;
  resume?: boolean;
}

/** Flags given on the command line, as the library's ramp options (env and defaults fill the rest). */
function rampInput(opts: RampFlags): RampSettingsInput {
  const healthy: Partial<RampThresholds> = {};
  const numeric: [keyof RampThresholds, string | undefined][] = [
    ["maxErrorRate", opts.maxErrorRate],
    ["maxMismatchRate", opts.maxMismatchRate],
    ["maxP95Ms", opts.maxP95Ms],
    ["maxPendingRepairs", opts.maxPendingRepairs],
    ["minCalls", opts.minCalls],
  ];
  for (const [key, text] of numeric) if (text !== undefined) healthy[key] = Number(text);
  return {
    ...(opts.every !== undefined ? { every: opts.every } : {}),
    ...(opts.steps !== undefined
      ? { steps: opts.steps.split(",").map((p) => p.trim()) }
      : opts.step !== undefined
        ? { steps: Number(opts.step) }
        : {}),
    ...(opts.rollbackTo !== undefined ? { onUnhealthy: { rollbackTo: opts.rollbackTo } } : {}),
    healthy,
  };
}

function renderDecision(d: RampDecision): string {
  const moved = d.to ? ` ${d.phase} -> ${d.to}` : ` (${d.phase})`;
  return `${new Date(d.atMs).toISOString()} ramp ${d.action}${moved}: ${d.reason}`;
}

const rampOptions = (command: Command) =>
  command
    .option(
      "--every <duration>",
      "how long each step must stay healthy (24h, 30m, 90s; env ..._RAMP_EVERY; default 24h)",
    )
    .option(
      "--step <percent>",
      "ramp in steps of this percent, then next-primary (env ..._RAMP_STEP; default 10)",
    )
    .option(
      "--steps <phases>",
      "explicit comma-separated phases instead of --step, e.g. ramp:10,ramp:50,ramp:100,next-primary",
    )
    .option("--rollback-to <phase>", "where a crossed threshold sends the cutover (default shadow)")
    .option("--max-error-rate <ratio>", "failed calls / calls (default 0.01)")
    .option("--max-mismatch-rate <ratio>", "shadow mismatches / comparisons (default 0.001)")
    .option("--max-p95-ms <ms>", "p95 latency of either side (default 500)")
    .option("--max-pending-repairs <n>", "pending repair-ledger entries tolerated (default 0)")
    .option("--min-calls <n>", "calls a window needs before it is judged (default 1000)");

export function registerCutoverCommands(program: Command): void {
  const cutover = program
    .command("cutover")
    .description("inspect and steer live cutovers (phases stored in the target's pgshift schema)");

  cutover
    .command("list")
    .description("list cutovers with their phase, pending repairs and live instances")
    .action(
      action(async (ctx) => {
        const { listCutovers } = await reports();
        const result = await listCutovers(await ctx.pool({ max: 2 }));
        ctx.out.result(result, () =>
          result.length === 0
            ? "no cutovers in this database (an application registers one when it first calls createCutover())"
            : renderTable(
                ["name", "phase", "since", "pending repairs", "live instances", "last verification"],
                result.map((c) => [
                  c.name,
                  c.phase,
                  c.changedAt,
                  c.pendingRepairs,
                  c.liveInstances,
                  c.lastVerification
                    ? `${c.lastVerification.mismatched}/${c.lastVerification.keysChecked} divergent, ${ago(c.lastVerification.finishedAt)}`
                    : "none",
                ]),
              ),
        );
        return ExitCode.ok;
      }),
    );

  cutover
    .command("status")
    .description("phase, routing, repairs, shadow results, backfills, instances and history of one cutover")
    .argument("<name>", "cutover name")
    .action(
      action(async (ctx, name: string) => {
        const { cutoverStatus } = await reports();
        const result = await cutoverStatus(await ctx.pool({ max: 2 }), name);
        ctx.out.result(result, () => renderStatus(result));
        return ExitCode.ok;
      }),
    );

  cutover
    .command("set-phase")
    .description(
      "move a cutover one phase forward or back (legacy-only, dual-write, shadow, ramp:P, next-primary, next-only); every instance follows within a second",
    )
    .argument("<name>", "cutover name")
    .argument("<phase>", "target phase, e.g. shadow or ramp:25")
    .option(
      "--force",
      "allow skipping phases, leaving next-only, or reading from a side with pending repairs",
    )
    .option("--reason <text>", "why, recorded in the cutover history")
    .action(
      action(async (ctx, name: string, phase: string, opts: { force?: boolean; reason?: string }) => {
        const { setCutoverPhase } = await import("../../cutover/cutover-state.ts");
        const pool = await ctx.pool({ max: 2 });
        const result = await setCutoverPhase(pool, {
          name,
          phase,
          force: Boolean(opts.force),
          ...(opts.reason !== undefined ? { reason: opts.reason } : {}),
        });
        ctx.out.result(result, () => {
          if (result.kind === "same") return `cutover ${name} is already in ${result.to}; nothing changed`;
          const lines = [`cutover ${name}: ${result.from} -> ${result.to} (${result.kind})`];
          if (result.forced) lines.push(...result.overridden.map((problem) => `  forced past: ${problem}`));
          return lines.join("\n");
        });
        if (result.kind !== "same")
          await auditOperation(ctx.out, pool, {
            action: "cutover_phase",
            detail: {
              cutover: name,
              from: result.from,
              to: result.to,
              forced: result.forced,
              reason: opts.reason ?? null,
            },
            report: JSON.stringify(result),
          });
        return ExitCode.ok;
      }),
    );

  rampOptions(
    cutover
      .command("ramp")
      .description(
        "run the automatic ramp: advance one step when a window of `--every` was healthy, hold on too few calls, roll back when a threshold is crossed; one leader per cutover (advisory lock), run it on several hosts for failover",
      )
      .argument("<name>", "cutover name"),
  )
    .option("--tick <duration>", "how often to look at the figures (default every/10, 1 s .. 60 s)")
    .option("--once", "decide once, print the decision and exit")
    .option("--resume", "resume a ramp paused by a manual phase change or a rollback, with a fresh window")
    .action(
      action(async (ctx, name: string, opts: RampFlags) => {
        const { RampPolicy, resumeRamp } = await import("../../cutover/ramp-policy.ts");
        const { parseDuration } = await import("../../cutover/ramp-settings.ts");
        const pool = await ctx.pool({ max: 2 });
        if (opts.resume) {
          const state = await resumeRamp(pool, name);
          ctx.out.notice(`cutover ${name}: ramp resumed from ${state.phase}`);
        }
        const policy = new RampPolicy({
          pool,
          name,
          ...rampInput(opts),
          tickMs: opts.once ? 0 : opts.tick !== undefined ? parseDuration(opts.tick, "--tick") : undefined,
          onDecision: (d) => {
            if (!opts.once) ctx.out.notice(renderDecision(d));
          },
        });
        await policy.start();
        try {
          if (opts.once) {
            const decision = await policy.tick();
            ctx.out.result(decision, () => renderDecision(decision));
            return ExitCode.ok;
          }
          ctx.out.notice(
            `cutover ${name}: ramp over ${policy.settings.steps.join(", ")}, every ${policy.settings.everyMs / 1000} s; rollback to ${policy.settings.rollbackTo}; Ctrl-C stops`,
          );
          await policy
            .tick()
            .catch((error) => ctx.out.notice(`ramp tick failed: ${(error as Error).message}`));
          await new Promise<void>((resolve) => {
            process.once("SIGINT", resolve);
            process.once("SIGTERM", resolve);
          });
          return ExitCode.ok;
        } finally {
          await policy.stop();
        }
      }),
    );

  cutover
    .command("alerts")
    .description(
      "print Prometheus alerting rules for a cutover (p95, failed calls, pool exhausted, shadow mismatches, repair backlog, ramp rolled back), thresholds from the ramp settings",
    )
    .argument("<name>", "cutover name")
    .option("--max-error-rate <ratio>", "failed calls / calls (default 0.01, or env ..._RAMP_MAX_ERROR_RATE)")
    .option("--max-p95-ms <ms>", "p95 latency (default 500, or env ..._RAMP_MAX_P95_MS)")
    .option("--for <duration>", "how long a latency or error condition holds before firing (default 5m)")
    .action(
      action(async (ctx, name: string, opts: { maxErrorRate?: string; maxP95Ms?: string; for?: string }) => {
        const { cutoverAlertRules } = await import("../../cutover/alert-rules.ts");
        const { resolveRampSettings } = await import("../../cutover/ramp-settings.ts");
        const settings = resolveRampSettings(name, rampInput(opts));
        ctx.out.raw(
          cutoverAlertRules({
            name,
            thresholds: settings.thresholds,
            ...(opts.for !== undefined ? { for: opts.for } : {}),
          }).trimEnd(),
        );
        return ExitCode.ok;
      }),
    );

  cutover
    .command("verify")
    .description(
      "report the consistency evidence the application recorded: the latest verifier run, pending repairs, shadow counts (exit 0 consistent, 3 divergent, 1 unproven)",
    )
    .argument("<name>", "cutover name")
    .action(
      action(async (ctx, name: string) => {
        const { cutoverVerifyReport } = await reports();
        const result = await cutoverVerifyReport(await ctx.pool({ max: 2 }), name);
        ctx.out.result(result, () => renderVerify(result));
        return result.verdict === "consistent"
          ? ExitCode.ok
          : result.verdict === "divergent"
            ? ExitCode.mismatch
            : ExitCode.failure;
      }),
    );
}

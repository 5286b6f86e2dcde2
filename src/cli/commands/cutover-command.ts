import type { Command } from "commander";
import type { CutoverStatusReport, CutoverVerifyReport } from "../../cutover/cutover-report.ts";
import { ExitCode } from "../../errors.ts";
import { action } from "../action.ts";
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
        const result = await setCutoverPhase(await ctx.pool({ max: 2 }), {
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

import type { BenchContext } from "../lib/context.ts";
import { runRampLoad } from "../lib/ramp-load.ts";
import { emptyScenario, ratio, type ScenarioResult } from "../lib/result.ts";

/** Offered rate, and what a caller's p95 (from each request's scheduled time) must stay under. */
const RATE = 1000;
const P95_BOUND_MS = 100;
/** The policy's steps: ramp:25, ramp:50, ramp:75, ramp:100, next-primary. */
const STEPS = 5;

/**
 * An open loop at 1000 requests/s through dual-write -> shadow -> the automatic ramp -> next-primary on a
 * compressed clock (one "24h" step per tenth of the run): 60 s in the quick run, 10 minutes in the full.
 */
export async function rampScenario(ctx: BenchContext): Promise<ScenarioResult> {
  const seconds = ctx.mode === "quick" ? 60 : 600;
  const result = emptyScenario(
    "ramp",
    `Open loop at ${RATE} requests/s for ${seconds} s (80 % reads, 20 % writes over 10,000 task documents) through dual-write, shadow and the automatic ramp policy to next-primary, on a compressed clock.`,
  );
  result.params = { rate: RATE, seconds, keys: 10_000, p95BoundMs: P95_BOUND_MS };
  ctx.log(`ramp: ${RATE} requests/s for ${seconds} s through the automatic ramp`);
  const load = await runRampLoad({ adminUrl: ctx.instance.adminUrl, rate: RATE, seconds, keys: 10_000 });
  result.measurements = load as unknown as Record<string, unknown>;
  result.ratios.ramp_failed_calls = ratio("calls that failed during the ramp", load.failed, {
    op: "<=",
    value: 0,
  });
  result.ratios.ramp_p95_ms = ratio(
    "caller p95 in ms over the whole ramp (from each request's scheduled time, open loop)",
    load.overall.p95_ms,
    { op: "<", value: P95_BOUND_MS },
  );
  result.ratios.ramp_completed_vs_offered = ratio(
    "requests completed / requests offered",
    load.offered ? load.completed / load.offered : null,
    { op: ">=", value: 1 },
  );
  result.ratios.ramp_steps_recorded = ratio(
    "automatic phase changes recorded (reason auto: ...)",
    load.rampSteps.length,
    { op: ">=", value: STEPS },
  );
  result.tables.push({
    title: "Caller latency per phase (ms, from each request's scheduled time)",
    headers: ["phase", "calls", "p50", "p95", "p99"],
    rows: Object.entries(load.perPhase).map(([phase, f]) => [phase, f.calls, f.p50_ms, f.p95_ms, f.p99_ms]),
  });
  result.tables.push({
    title: "Ramp decisions",
    headers: ["from", "to", "reason"],
    rows: load.rampSteps.map((s) => [s.from ?? "", s.to, s.reason ?? ""]),
  });
  result.notes.push(
    `Shadow comparisons: ${JSON.stringify(load.shadow)}. Final phase ${load.finalPhase}; at most ${load.maxInFlight} requests in flight; clock ${load.clockSpeed}x real time. The p95 bound (${P95_BOUND_MS} ms) is this bench's: the caller's wait includes queueing behind the shared cores.`,
  );
  return result;
}

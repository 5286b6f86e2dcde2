import type pg from "pg";
import { LatencyReservoir } from "./latency-reservoir.ts";
import type { CutoverSide } from "./phases.ts";

/** The figures one instance saw in one window, as written to pgshift.cutover_health. */
export interface CutoverHealthReport {
  instanceId: string;
  windowStartMs: number;
  windowEndMs: number;
  calls: number;
  legacyCalls: number;
  nextCalls: number;
  legacyErrors: number;
  nextErrors: number;
  shadowCompared: number;
  shadowMismatched: number;
  legacyP95Ms: number | null;
  nextP95Ms: number | null;
  pendingRepairs: number;
  legacyWrites: number;
  lastLegacyWriteAt: string | null;
}

/** Health figures summed over every instance's reports in a window (what the ramp policy judges). */
export interface CutoverHealthFigures {
  windowStartMs: number;
  windowEndMs: number;
  reports: number;
  instances: number;
  calls: number;
  errors: { legacy: number; next: number };
  /** Failed calls / calls, over both sides. */
  errorRate: number;
  shadowCompared: number;
  shadowMismatched: number;
  mismatchRate: number;
  /** The highest p95 any instance reported for a side (an upper bound of the pooled p95), in ms. */
  p95Ms: { legacy: number | null; next: number | null };
  /** Pending repair-ledger entries (the ledger itself, not a report). */
  pendingRepairs: number;
}

/**
 * Counts calls, errors and latencies of the current window on the caller's path (O(1) per call); the
 * runtime writes a window out and starts the next one on each report.
 */
export class HealthWindow {
  private startMs: number;
  private calls = { legacy: 0, next: 0 };
  private errors = { legacy: 0, next: 0 };
  private latency = { legacy: new LatencyReservoir(1024), next: new LatencyReservoir(1024) };
  private legacyWrites = 0;
  /** Wall-clock ms (not the injected clock: it is compared with the snapshot's database time). */
  private lastLegacyWriteMs: number | null = null;
  private shadowBase = { compared: 0, mismatched: 0 };

  constructor(startMs: number) {
    this.startMs = startMs;
  }

  call(side: CutoverSide, kind: "reads" | "writes", milliseconds: number | undefined): void {
    this.calls[side]++;
    if (milliseconds === undefined) this.errors[side]++;
    else this.latency[side].record(milliseconds);
    if (side === "legacy" && kind === "writes") {
      this.legacyWrites++;
      this.lastLegacyWriteMs = Date.now();
    }
  }

  /** Closes the window at `endMs` and opens the next; shadow counts are the runtime's running totals. */
  take(
    instanceId: string,
    endMs: number,
    shadow: { compared: number; mismatched: number },
    pendingRepairs: number,
  ): CutoverHealthReport {
    const report: CutoverHealthReport = {
      instanceId,
      windowStartMs: this.startMs,
      windowEndMs: endMs,
      calls: this.calls.legacy + this.calls.next,
      legacyCalls: this.calls.legacy,
      nextCalls: this.calls.next,
      legacyErrors: this.errors.legacy,
      nextErrors: this.errors.next,
      shadowCompared: shadow.compared - this.shadowBase.compared,
      shadowMismatched: shadow.mismatched - this.shadowBase.mismatched,
      legacyP95Ms: this.latency.legacy.summary().p95,
      nextP95Ms: this.latency.next.summary().p95,
      pendingRepairs,
      legacyWrites: this.legacyWrites,
      lastLegacyWriteAt:
        this.lastLegacyWriteMs === null ? null : new Date(this.lastLegacyWriteMs).toISOString(),
    };
    this.startMs = endMs;
    this.calls = { legacy: 0, next: 0 };
    this.errors = { legacy: 0, next: 0 };
    this.latency = { legacy: new LatencyReservoir(1024), next: new LatencyReservoir(1024) };
    this.legacyWrites = 0;
    this.shadowBase = { ...shadow };
    return report;
  }
}

export async function writeHealthReport(
  db: pg.Pool | pg.ClientBase,
  cutover: string,
  r: CutoverHealthReport,
): Promise<void> {
  await db.query(
    `insert into pgshift.cutover_health (cutover, instance_id, window_start_ms, window_end_ms, calls, legacy_calls,
       next_calls, legacy_errors, next_errors, shadow_compared, shadow_mismatched, legacy_p95_ms, next_p95_ms,
       pending_repairs, legacy_writes, last_legacy_write_at)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
    [
      cutover,
      r.instanceId,
      r.windowStartMs,
      r.windowEndMs,
      r.calls,
      r.legacyCalls,
      r.nextCalls,
      r.legacyErrors,
      r.nextErrors,
      r.shadowCompared,
      r.shadowMismatched,
      r.legacyP95Ms,
      r.nextP95Ms,
      r.pendingRepairs,
      r.legacyWrites,
      r.lastLegacyWriteAt,
    ],
  );
}

/** Sums the reports whose window ended in (fromMs, toMs]; pending repairs come from the ledger. */
export async function readHealthFigures(
  db: pg.Pool | pg.ClientBase,
  cutover: string,
  fromMs: number,
  toMs: number,
): Promise<CutoverHealthFigures> {
  const { rows } = await db.query(
    `select count(*)::int as reports, count(distinct instance_id)::int as instances,
            coalesce(sum(calls), 0)::float8 as calls,
            coalesce(sum(legacy_errors), 0)::float8 as legacy_errors, coalesce(sum(next_errors), 0)::float8 as next_errors,
            coalesce(sum(shadow_compared), 0)::float8 as shadow_compared,
            coalesce(sum(shadow_mismatched), 0)::float8 as shadow_mismatched,
            max(legacy_p95_ms) as legacy_p95, max(next_p95_ms) as next_p95,
            (select count(*) from pgshift.cutover_repairs where cutover = $1 and status = 'pending')::float8 as pending
       from pgshift.cutover_health
      where cutover = $1 and window_end_ms > $2 and window_end_ms <= $3`,
    [cutover, fromMs, toMs],
  );
  const r = rows[0];
  const calls = Number(r.calls);
  const errors = { legacy: Number(r.legacy_errors), next: Number(r.next_errors) };
  const compared = Number(r.shadow_compared);
  const mismatched = Number(r.shadow_mismatched);
  return {
    windowStartMs: fromMs,
    windowEndMs: toMs,
    reports: r.reports,
    instances: r.instances,
    calls,
    errors,
    errorRate: calls === 0 ? 0 : (errors.legacy + errors.next) / calls,
    shadowCompared: compared,
    shadowMismatched: mismatched,
    mismatchRate: compared === 0 ? 0 : mismatched / compared,
    p95Ms: {
      legacy: r.legacy_p95 === null ? null : Number(r.legacy_p95),
      next: r.next_p95 === null ? null : Number(r.next_p95),
    },
    pendingRepairs: Number(r.pending),
  };
}

/** When legacy was last written, as instances reported (null when never). */
export async function lastLegacyWrite(db: pg.Pool | pg.ClientBase, cutover: string): Promise<string | null> {
  const { rows } = await db.query(
    "select max(last_legacy_write_at) as at from pgshift.cutover_health where cutover = $1",
    [cutover],
  );
  return rows[0].at ? new Date(rows[0].at).toISOString() : null;
}

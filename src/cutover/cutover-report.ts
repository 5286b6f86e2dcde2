import type pg from "pg";
import {
  type CutoverRow,
  cutoverHistory,
  type CutoverHistoryEntry,
  listCutoverRows,
  type CutoverRepairCounts,
  repairCounts,
  requireCutover,
} from "./cutover-state.ts";
import { parseCutoverPhase, phaseOverrideVariable, type CutoverRouting, routingOf } from "./phases.ts";
import type { ShadowCounts } from "./shadow-stats.ts";
import type { CutoverVerifySample } from "./verifier.ts";

/** Instances that have not reported for this long are listed as stale. */
const STALE_AFTER_SECONDS = 30;

export interface CutoverInstanceReport {
  instanceId: string;
  host: string;
  pid: number;
  phase: string;
  phaseSource: string;
  startedAt: string;
  reportedAt: string;
  closed: boolean;
  stale: boolean;
  shadow: ShadowCounts | null;
}

export interface StoredCutoverVerification {
  id: number;
  mode: string;
  phase: string;
  keysChecked: number;
  matched: number;
  mismatched: number;
  missingInNext: number;
  missingInLegacy: number;
  errors: number;
  repaired: number;
  transient: number;
  mismatchRate: number;
  samples: CutoverVerifySample[];
  startedAt: string;
  finishedAt: string;
}

export interface CutoverBackfillReport {
  resumeKey: string;
  status: string;
  lastKey: string | null;
  rowsDone: number;
  batches: number;
  startedAt: string;
  updatedAt: string;
  finishedAt: string | null;
}

export interface CutoverSummary extends CutoverRow {
  pendingRepairs: number;
  liveInstances: number;
  lastVerification: {
    mismatched: number;
    keysChecked: number;
    finishedAt: string;
  } | null;
}

export interface CutoverStatusReport {
  cutover: CutoverRow;
  routing: CutoverRouting;
  /** Set when PGSHIFT_CUTOVER_<NAME>_PHASE is set in the environment that asked. */
  override: { variable: string; value: string } | null;
  repairs: CutoverRepairCounts;
  instances: CutoverInstanceReport[];
  /** Instances (live ones) that observe a phase other than the stored one. */
  disagreeing: string[];
  shadow: ShadowCounts;
  lastVerification: StoredCutoverVerification | null;
  backfills: CutoverBackfillReport[];
  history: CutoverHistoryEntry[];
  /** The automatic ramp's state, null when no ramp policy ever ran. */
  ramp: {
    state: string;
    pausedReason: string | null;
    steps: string[];
    everyMs: number;
    lastDecision: unknown;
  } | null;
  /** The latest final snapshot of legacy, null when none was taken. */
  lastSnapshot: { path: string; records: number; sha256: string; startedAt: string } | null;
}

export async function listCutovers(pool: pg.Pool): Promise<CutoverSummary[]> {
  const rows = await listCutoverRows(pool);
  if (rows.length === 0) return [];
  const { rows: extra } = await pool.query(
    `select c.name,
            (select count(*)::int from pgshift.cutover_repairs r where r.cutover = c.name and r.status = 'pending') as pending,
            (select count(*)::int from pgshift.cutover_instances i where i.cutover = c.name and i.closed_at is null
                and i.reported_at > now() - make_interval(secs => $1)) as live,
            (select jsonb_build_object('mismatched', v.mismatched, 'keysChecked', v.keys_checked, 'finishedAt', v.finished_at)
               from pgshift.cutover_verifications v where v.cutover = c.name order by v.id desc limit 1) as verification
       from pgshift.cutovers c`,
    [STALE_AFTER_SECONDS],
  );
  const byName = new Map(extra.map((r) => [r.name as string, r]));
  return rows.map((row) => {
    const e = byName.get(row.name);
    return {
      ...row,
      pendingRepairs: e?.pending ?? 0,
      liveInstances: e?.live ?? 0,
      lastVerification: e?.verification
        ? {
            mismatched: Number(e.verification.mismatched),
            keysChecked: Number(e.verification.keysChecked),
            finishedAt: new Date(e.verification.finishedAt).toISOString(),
          }
        : null,
    };
  });
}

export async function latestVerification(
  pool: pg.Pool,
  name: string,
): Promise<StoredCutoverVerification | null> {
  const { rows } = await pool.query(
    "select * from pgshift.cutover_verifications where cutover = $1 order by id desc limit 1",
    [name],
  );
  const r = rows[0];
  if (!r) return null;
  const keysChecked = Number(r.keys_checked);
  const mismatched = Number(r.mismatched);
  return {
    id: Number(r.id),
    mode: r.mode,
    phase: r.phase,
    keysChecked,
    matched: Number(r.matched),
    mismatched,
    missingInNext: Number(r.missing_in_next),
    missingInLegacy: Number(r.missing_in_legacy),
    errors: Number(r.errors),
    repaired: Number(r.repaired),
    transient: Number(r.transient),
    mismatchRate: keysChecked === 0 ? 0 : mismatched / keysChecked,
    samples: r.samples,
    startedAt: new Date(r.started_at).toISOString(),
    finishedAt: new Date(r.finished_at).toISOString(),
  };
}

export async function cutoverStatus(
  pool: pg.Pool,
  name: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<CutoverStatusReport> {
  const cutover = await requireCutover(pool, name);
  const variable = phaseOverrideVariable(name);
  const { rows: instanceRows } = await pool.query(
    `select *, closed_at is not null as closed, reported_at < now() - make_interval(secs => $2) as stale
       from pgshift.cutover_instances where cutover = $1 order by reported_at desc limit 50`,
    [name, STALE_AFTER_SECONDS],
  );
  const instances: CutoverInstanceReport[] = instanceRows.map((r) => ({
    instanceId: r.instance_id,
    host: r.host,
    pid: r.pid,
    phase: r.phase,
    phaseSource: r.phase_source,
    startedAt: new Date(r.started_at).toISOString(),
    reportedAt: new Date(r.reported_at).toISOString(),
    closed: r.closed,
    stale: r.stale,
    shadow: r.metrics?.shadow
      ? {
          started: r.metrics.shadow.started,
          matched: r.metrics.shadow.matched,
          mismatched: r.metrics.shadow.mismatched,
          raced: r.metrics.shadow.raced,
          errors: r.metrics.shadow.errors,
          skipped: r.metrics.shadow.skipped,
        }
      : null,
  }));
  const shadow: ShadowCounts = {
    started: 0,
    matched: 0,
    mismatched: 0,
    raced: 0,
    errors: 0,
    skipped: 0,
  };
  for (const instance of instances) {
    if (!instance.shadow) continue;
    for (const k of Object.keys(shadow) as (keyof ShadowCounts)[]) shadow[k] += instance.shadow[k] ?? 0;
  }
  const { rows: backfillRows } = await pool.query(
    "select * from pgshift.cutover_backfills where cutover = $1 order by resume_key",
    [name],
  );
  return {
    cutover,
    routing: routingOf(parseCutoverPhase(cutover.phase)),
    override: env[variable] ? { variable, value: env[variable]! } : null,
    repairs: await repairCounts(pool, name),
    instances,
    disagreeing: instances
      .filter((i) => !i.closed && !i.stale && i.phase !== cutover.phase)
      .map((i) => `${i.instanceId} (${i.phase}, ${i.phaseSource})`),
    shadow,
    lastVerification: await latestVerification(pool, name),
    backfills: backfillRows.map((r) => ({
      resumeKey: r.resume_key,
      status: r.status,
      lastKey: r.last_key,
      rowsDone: Number(r.rows_done),
      batches: r.batches,
      startedAt: new Date(r.started_at).toISOString(),
      updatedAt: new Date(r.updated_at).toISOString(),
      finishedAt: r.finished_at ? new Date(r.finished_at).toISOString() : null,
    })),
    history: await cutoverHistory(pool, name),
    ...(await rampAndSnapshot(pool, name)),
  };
}

/** Ramp state and latest snapshot; both tables come with the cutover schema's v2, absent before it. */
async function rampAndSnapshot(
  pool: pg.Pool,
  name: string,
): Promise<Pick<CutoverStatusReport, "ramp" | "lastSnapshot">> {
  const { rows: present } = await pool.query("select to_regclass('pgshift.cutover_ramps') is not null as ok");
  if (!present[0].ok) return { ramp: null, lastSnapshot: null };
  const { rows: ramps } = await pool.query("select * from pgshift.cutover_ramps where cutover = $1", [name]);
  const { rows: snapshots } = await pool.query(
    "select * from pgshift.cutover_snapshots where cutover = $1 order by id desc limit 1",
    [name],
  );
  const r = ramps[0];
  const s = snapshots[0];
  return {
    ramp: r
      ? {
          state: r.state,
          pausedReason: r.paused_reason,
          steps: r.steps,
          everyMs: Number(r.every_ms),
          lastDecision: r.last_decision,
        }
      : null,
    lastSnapshot: s
      ? {
          path: s.path,
          records: Number(s.records),
          sha256: s.sha256,
          startedAt: new Date(s.started_at).toISOString(),
        }
      : null,
  };
}

export interface CutoverVerifyReport {
  name: string;
  phase: string;
  /** consistent: the latest verification found no open divergence and no repair is pending. */
  verdict: "consistent" | "divergent" | "unproven";
  reasons: string[];
  verification: StoredCutoverVerification | null;
  repairs: CutoverRepairCounts;
  shadow: ShadowCounts;
}

/**
 * What the database knows about a cutover's consistency: the verifier results the application stored,
 * the repair ledger and the shadow counts instances reported. The CLI cannot read the legacy store
 * itself (it lives in the application), so the verification runs there: `store.cutover.verify()`.
 */
export async function cutoverVerifyReport(pool: pg.Pool, name: string): Promise<CutoverVerifyReport> {
  const status = await cutoverStatus(pool, name);
  const reasons: string[] = [];
  const v = status.lastVerification;
  let verdict: CutoverVerifyReport["verdict"] = "consistent";
  if (!v) {
    verdict = "unproven";
    reasons.push(
      "no verification recorded: run store.cutover.verify() in the application (it stores its result here)",
    );
  } else {
    const open = v.mismatched - v.repaired;
    if (open > 0) {
      verdict = "divergent";
      reasons.push(
        `the latest verification (${v.finishedAt}) found ${v.mismatched} divergent key(s) of ${v.keysChecked} (${v.missingInNext} missing in next, ${v.missingInLegacy} missing in legacy), ${v.repaired} repaired`,
      );
    } else if (v.mismatched > 0) {
      verdict = "unproven";
      reasons.push(
        `the latest verification repaired all ${v.mismatched} divergent key(s); run verify() again to prove the result`,
      );
    }
    if (v.errors > 0) {
      if (verdict === "consistent") verdict = "unproven";
      reasons.push(`${v.errors} key(s) could not be read during the latest verification`);
    }
  }
  const pending = status.repairs.pendingLegacy + status.repairs.pendingNext;
  if (pending > 0) {
    verdict = "divergent";
    reasons.push(
      `${pending} failed write(s) wait in the repair ledger (${status.repairs.pendingNext} for next, ${status.repairs.pendingLegacy} for legacy): run store.cutover.repair()`,
    );
  }
  return {
    name,
    phase: status.cutover.phase,
    verdict,
    reasons,
    verification: v,
    repairs: status.repairs,
    shadow: status.shadow,
  };
}

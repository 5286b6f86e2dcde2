import pg from "pg";
import { LockClass } from "../pg/advisory-lock.ts";
import { UsageError } from "../errors.ts";
import { type Logger, silentLogger } from "../progress.ts";
import { ensureCutoverSchema, requireCutover, setCutoverPhase } from "./cutover-state.ts";
import { type CutoverHealthFigures, readHealthFigures } from "./health-report.ts";
import { CUTOVER_PHASES, checkPhaseTransition, type CutoverPhase, parseCutoverPhase } from "./phases.ts";
import {
  type RampSettings,
  type RampSettingsInput,
  type RampThresholds,
  resolveRampSettings,
} from "./ramp-settings.ts";

export interface RampPolicyOptions extends RampSettingsInput {
  pool: pg.Pool;
  name: string;
  /** Epoch milliseconds (default Date.now); windows and `every` are measured on it. */
  clock?: () => number;
  /** How often the policy looks at the figures (default: every / 10, between 1 s and 60 s; 0 = only tick()). */
  tickMs?: number;
  /** Environment for the thresholds (default process.env). */
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
  /** Called with every decision this instance takes as leader. */
  onDecision?: (decision: RampDecision) => void;
}

export type RampAction = "advance" | "hold" | "rollback" | "paused" | "standby";

export interface RampDecision {
  action: RampAction;
  phase: CutoverPhase;
  /** The phase moved to (advance, rollback). */
  to?: CutoverPhase;
  /** `auto: ...` for phase changes; why it held otherwise. */
  reason: string;
  figures?: CutoverHealthFigures;
  /** Policy clock. */
  atMs: number;
}

export interface RampState {
  cutover: string;
  state: "running" | "paused";
  pausedReason: string | null;
  phase: CutoverPhase;
  stepStartedMs: number;
  settings: RampSettings;
  lastDecision: RampDecision | null;
}

/** A 32-bit FNV-1a of the name as a signed int4, the second part of the leader lock key. */
function nameHash(name: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    hash ^= name.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash | 0;
}

function pct(rate: number): string {
  return `${(rate * 100).toFixed(2)} %`;
}

/** The thresholds a window crosses (empty when healthy). */
export function crossedThresholds(f: CutoverHealthFigures, t: RampThresholds): string[] {
  const crossed: string[] = [];
  if (f.pendingRepairs > t.maxPendingRepairs)
    crossed.push(`pending repairs ${f.pendingRepairs} > ${t.maxPendingRepairs}`);
  if (f.calls < t.minCalls) return crossed;
  if (f.errorRate > t.maxErrorRate)
    crossed.push(
      `error rate ${pct(f.errorRate)} > ${pct(t.maxErrorRate)} (${f.errors.legacy} legacy + ${f.errors.next} next errors in ${f.calls} calls)`,
    );
  if (f.mismatchRate > t.maxMismatchRate)
    crossed.push(
      `shadow mismatch rate ${pct(f.mismatchRate)} > ${pct(t.maxMismatchRate)} (${f.shadowMismatched} of ${f.shadowCompared})`,
    );
  for (const side of ["legacy", "next"] as const) {
    const p95 = f.p95Ms[side];
    if (p95 !== null && p95 > t.maxP95Ms) crossed.push(`${side} p95 ${p95} ms > ${t.maxP95Ms} ms`);
  }
  return crossed;
}

function summary(f: CutoverHealthFigures): string {
  return `${f.calls} calls, errors ${pct(f.errorRate)}, mismatches ${pct(f.mismatchRate)}, p95 legacy ${f.p95Ms.legacy ?? "-"} ms / next ${f.p95Ms.next ?? "-"} ms, ${f.pendingRepairs} pending repairs, ${f.reports} reports from ${f.instances} instance(s)`;
}

/** Position of a phase in the order of phases (ramp percentages in between). */
function phaseOrder(phase: CutoverPhase): number {
  const parsed = parseCutoverPhase(phase);
  return CUTOVER_PHASES.indexOf(parsed.kind) * 1000 + parsed.percent;
}

/** The phase after `phase` on the ramp, or undefined when at (or off) its end. */
function nextStep(steps: readonly CutoverPhase[], phase: CutoverPhase): CutoverPhase | undefined {
  const i = steps.indexOf(phase);
  if (i >= 0) return steps[i + 1];
  const first = steps[0]!;
  const check = checkPhaseTransition(phase, first);
  return check.allowed && check.kind === "forward" ? first : undefined;
}

function rowState(r: Record<string, unknown>): RampState {
  return {
    cutover: r.cutover as string,
    state: r.state as RampState["state"],
    pausedReason: (r.paused_reason as string | null) ?? null,
    phase: r.phase as CutoverPhase,
    stepStartedMs: Number(r.step_started_ms),
    settings: {
      steps: r.steps as CutoverPhase[],
      everyMs: Number(r.every_ms),
      thresholds: r.thresholds as RampThresholds,
      rollbackTo: r.rollback_to as CutoverPhase,
    },
    lastDecision: (r.last_decision as RampDecision | null) ?? null,
  };
}

export async function readRampState(pool: pg.Pool, name: string): Promise<RampState | undefined> {
  await ensureCutoverSchema(pool);
  const { rows } = await pool.query("select * from pgshift.cutover_ramps where cutover = $1", [name]);
  return rows[0] ? rowState(rows[0]) : undefined;
}

/** Lets a paused ramp (manual phase change, rollback) decide again, from the current phase, with a fresh window. */
export async function resumeRamp(pool: pg.Pool, name: string, nowMs = Date.now()): Promise<RampState> {
  const cutover = await requireCutover(pool, name);
  await ensureCutoverSchema(pool);
  const { rows } = await pool.query(
    `update pgshift.cutover_ramps set state = 'running', paused_reason = null, phase = $2, step_started_ms = $3,
            updated_at = now() where cutover = $1 returning *`,
    [name, cutover.phase, nowMs],
  );
  if (!rows[0])
    throw new UsageError(
      `cutover ${name} has no ramp policy to resume; start one with autoRamp() or pgshift cutover ramp`,
    );
  return rowState(rows[0]);
}

/**
 * The automatic ramp. Every instance may run one; the one holding a session advisory lock (on its own
 * connection, class LockClass.cutoverRamp, second part a hash of the name) decides and the others
 * stand by; when the leader's session dies, PostgreSQL releases the lock and the next tick of another
 * instance takes it. Each tick judges the health reports of the current step's window:
 * a crossed threshold rolls back to `rollbackTo` and pauses; too few calls holds; a healthy window that
 * lasted `every` advances one step. A phase change not made by the policy pauses it until resumeRamp().
 */
export class RampPolicy {
  readonly settings: RampSettings;
  private readonly clock: () => number;
  private readonly logger: Logger;
  private lockClient: pg.Client | undefined;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<RampDecision> | undefined;
  private stopped = false;
  /** Backend pid of the session holding the leader lock, while this instance leads. */
  leaderPid: number | undefined;

  constructor(private readonly options: RampPolicyOptions) {
    this.settings = resolveRampSettings(options.name, options, options.env ?? process.env);
    this.clock = options.clock ?? Date.now;
    this.logger = options.logger ?? silentLogger;
  }

  get isLeader(): boolean {
    return this.lockClient !== undefined;
  }

  async start(): Promise<void> {
    await ensureCutoverSchema(this.options.pool);
    const cutover = await requireCutover(this.options.pool, this.options.name);
    // The first step's window starts now, not at the first tick.
    await this.ensureState(cutover.phase, this.clock());
    const tickMs =
      this.options.tickMs ?? Math.min(60_000, Math.max(1_000, Math.round(this.settings.everyMs / 10)));
    if (tickMs > 0) {
      this.timer = setInterval(() => {
        this.tick().catch((error) =>
          this.logger.warn(`cutover ${this.options.name}: ramp tick failed`, {
            error: error instanceof Error ? error.message : String(error),
          }),
        );
      }, tickMs);
      this.timer.unref();
    }
  }

  /** One look at the figures (coalesced: a tick in flight is shared). */
  tick(): Promise<RampDecision> {
    if (!this.ticking)
      this.ticking = this.decide().finally(() => {
        this.ticking = undefined;
      });
    return this.ticking;
  }

  private async acquire(): Promise<boolean> {
    if (this.lockClient) {
      try {
        await this.lockClient.query("select 1");
        return true;
      } catch {
        this.lost(this.lockClient);
      }
    }
    const client = new pg.Client({
      ...(this.options.pool.options as pg.ClientConfig),
      application_name: `pgshift-ramp-${this.options.name}`.slice(0, 63),
    });
    client.on("error", () => this.lost(client));
    await client.connect();
    const { rows } = await client.query(
      "select pg_try_advisory_lock($1::int4, $2::int4) as ok, pg_backend_pid() as pid",
      [LockClass.cutoverRamp, nameHash(this.options.name)],
    );
    if (!rows[0].ok || this.stopped) {
      await client.end().catch(() => undefined);
      return false;
    }
    this.lockClient = client;
    this.leaderPid = rows[0].pid;
    this.logger.info(`cutover ${this.options.name}: this instance leads the ramp`);
    return true;
  }

  private lost(client: pg.Client): void {
    if (this.lockClient !== client) return;
    this.lockClient = undefined;
    this.leaderPid = undefined;
    client.end().catch(() => undefined);
    this.logger.warn(`cutover ${this.options.name}: lost the ramp leader lock`);
  }

  /** The policy row, created from this instance's settings when missing; settings are the leader's. */
  private async ensureState(phase: CutoverPhase, nowMs: number): Promise<RampState> {
    const s = this.settings;
    const { rows } = await this.options.pool.query(
      `insert into pgshift.cutover_ramps (cutover, steps, every_ms, thresholds, rollback_to, phase, step_started_ms)
       values ($1, $2::jsonb, $3, $4::jsonb, $5, $6, $7)
       on conflict (cutover) do update set steps = excluded.steps, every_ms = excluded.every_ms,
         thresholds = excluded.thresholds, rollback_to = excluded.rollback_to, updated_at = now()
       returning *`,
      [
        this.options.name,
        JSON.stringify(s.steps),
        s.everyMs,
        JSON.stringify(s.thresholds),
        s.rollbackTo,
        phase,
        nowMs,
      ],
    );
    return rowState(rows[0]);
  }

  private async record(
    decision: RampDecision,
    update: {
      state?: "running" | "paused";
      pausedReason?: string | null;
      phase?: CutoverPhase;
      stepStartedMs?: number;
    },
  ): Promise<RampDecision> {
    await this.options.pool.query(
      `update pgshift.cutover_ramps set last_decision = $2::jsonb, state = coalesce($3, state),
              paused_reason = case when $3::text is null then paused_reason else $4 end,
              phase = coalesce($5, phase), step_started_ms = coalesce($6, step_started_ms), updated_at = now()
        where cutover = $1`,
      [
        this.options.name,
        JSON.stringify(decision),
        update.state ?? null,
        update.pausedReason ?? null,
        update.phase ?? null,
        update.stepStartedMs ?? null,
      ],
    );
    this.options.onDecision?.(decision);
    if (decision.action !== "hold")
      this.logger.info(`cutover ${this.options.name}: ramp ${decision.action}: ${decision.reason}`);
    return decision;
  }

  private async decide(): Promise<RampDecision> {
    const pool = this.options.pool;
    const name = this.options.name;
    const nowMs = this.clock();
    const cutover = await requireCutover(pool, name);
    if (!(await this.acquire()))
      return {
        action: "standby",
        phase: cutover.phase,
        reason: "another instance leads the ramp",
        atMs: nowMs,
      };
    const state = await this.ensureState(cutover.phase, nowMs);
    const s = this.settings;
    if (state.phase !== cutover.phase) {
      // The policy's own change, made by a leader that died before noting it, is adopted; any other pauses.
      if (cutover.reason?.startsWith("auto:") && state.state === "running") {
        await this.record(
          {
            action: "hold",
            phase: cutover.phase,
            reason: `adopted ${cutover.phase} set by a previous leader`,
            atMs: nowMs,
          },
          { phase: cutover.phase, stepStartedMs: nowMs },
        );
        return this.decide();
      }
      if (state.state === "running") {
        const reason = `paused: ${cutover.phase} was set by ${cutover.changedBy}${cutover.reason ? ` (${cutover.reason})` : ""}, not by the ramp; resume with pgshift cutover ramp ${name} --resume`;
        return this.record(
          { action: "paused", phase: cutover.phase, reason, atMs: nowMs },
          { state: "paused", pausedReason: reason },
        );
      }
    }
    if (state.state === "paused")
      return { action: "paused", phase: cutover.phase, reason: state.pausedReason ?? "paused", atMs: nowMs };
    const figures = await readHealthFigures(pool, name, state.stepStartedMs, nowMs);
    const crossed = crossedThresholds(figures, s.thresholds);
    if (crossed.length > 0) {
      // next-only has no way back (legacy is stale); every earlier phase past rollbackTo goes back.
      if (cutover.phase !== "next-only" && phaseOrder(s.rollbackTo) < phaseOrder(cutover.phase)) {
        const reason = `auto: rollback to ${s.rollbackTo}: ${crossed.join("; ")} (${summary(figures)})`;
        await setCutoverPhase(pool, { name, phase: s.rollbackTo, force: true, reason, figures });
        return this.record(
          { action: "rollback", phase: cutover.phase, to: s.rollbackTo, reason, figures, atMs: nowMs },
          {
            state: "paused",
            pausedReason: `rolled back: ${crossed.join("; ")}`,
            phase: s.rollbackTo,
            stepStartedMs: nowMs,
          },
        );
      }
      return this.record(
        {
          action: "hold",
          phase: cutover.phase,
          reason: `unhealthy (${crossed.join("; ")}) but nothing to roll back to from ${cutover.phase}`,
          figures,
          atMs: nowMs,
        },
        {},
      );
    }
    if (figures.calls < s.thresholds.minCalls)
      return this.record(
        {
          action: "hold",
          phase: cutover.phase,
          reason: `too few calls to judge: ${figures.calls} < ${s.thresholds.minCalls}`,
          figures,
          atMs: nowMs,
        },
        {},
      );
    const to = nextStep(s.steps, cutover.phase);
    if (!to)
      return this.record(
        {
          action: "hold",
          phase: cutover.phase,
          reason: `healthy; ${cutover.phase} is the end of the ramp`,
          figures,
          atMs: nowMs,
        },
        {},
      );
    const elapsed = nowMs - state.stepStartedMs;
    if (elapsed < s.everyMs)
      return this.record(
        {
          action: "hold",
          phase: cutover.phase,
          reason: `healthy; ${Math.ceil((s.everyMs - elapsed) / 1000)} s until ${to}`,
          figures,
          atMs: nowMs,
        },
        {},
      );
    const reason = `auto: advance to ${to}: healthy for ${Math.round(elapsed / 1000)} s (${summary(figures)})`;
    try {
      await setCutoverPhase(pool, { name, phase: to, reason, figures });
    } catch (error) {
      return this.record(
        {
          action: "hold",
          phase: cutover.phase,
          reason: `healthy but ${to} was refused: ${(error as Error).message}`,
          figures,
          atMs: nowMs,
        },
        {},
      );
    }
    return this.record(
      { action: "advance", phase: cutover.phase, to, reason, figures, atMs: nowMs },
      { phase: to, stepStartedMs: nowMs },
    );
  }

  /** Stops ticking and releases the leader lock (by ending its session). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.ticking?.catch(() => undefined);
    const client = this.lockClient;
    this.lockClient = undefined;
    this.leaderPid = undefined;
    if (client) {
      client.removeAllListeners("error");
      client.on("error", () => undefined);
      await client.end().catch(() => undefined);
    }
  }
}

/** Runs one instance's ramp policy from the pool alone (the CLI's `pgshift cutover ramp`). */
export async function startRampPolicy(options: RampPolicyOptions): Promise<RampPolicy> {
  const policy = new RampPolicy(options);
  await policy.start();
  return policy;
}

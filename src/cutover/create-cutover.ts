import { hostname } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { performance } from "node:perf_hooks";
import type pg from "pg";
import { PgshiftError, UsageError } from "../errors.ts";
import { type Logger, silentLogger } from "../progress.ts";
import { type CutoverBackfillOptions, type CutoverBackfillResult, runBackfill } from "./backfill.ts";
import { canonicalEqual } from "./canonical-json.ts";
import {
  ensureCutoverSchema,
  type CutoverPhaseChange,
  olderRevision,
  registerCutover,
  setCutoverPhase,
} from "./cutover-state.ts";
import { HealthWindow, writeHealthReport } from "./health-report.ts";
import { LatencyReservoir, type LatencySummary } from "./latency-reservoir.ts";
import { PhaseWatcher, type PhaseWatcherState } from "./phase-watcher.ts";
import {
  formatCutoverPhase,
  nextPhaseOf,
  type CutoverPhase,
  parseCutoverPhase,
  phaseOverrideVariable,
  previousPhaseOf,
  type CutoverRouting,
  readSideFor,
  routingOf,
  type CutoverSide,
  validateCutoverName,
} from "./phases.ts";
import {
  type CutoverKeyAccess,
  RepairLedger,
  type CutoverRepairOptions,
  type CutoverRepairResult,
  runRepair,
} from "./repair-ledger.ts";
import { RampPolicy, type RampPolicyOptions } from "./ramp-policy.ts";
import { ShadowQueue } from "./shadow-queue.ts";
import {
  type CutoverRestoreResult,
  type CutoverSnapshot,
  restoreLegacyFromSnapshot,
  takeSnapshot,
} from "./snapshot.ts";
import { type ShadowCounts, ShadowStats } from "./shadow-stats.ts";
import { runCutoverVerify, type CutoverVerifyOptions, type CutoverVerifyResult } from "./verifier.ts";

/** A read to repeat on the other side, as recorded on the caller's path (nothing computed yet). */
interface ShadowJob {
  method: string;
  args: unknown[];
  /** The call's key when routing already needed it (ramp); otherwise computed off the caller's path. */
  key: string | undefined;
  keyed: boolean;
  served: CutoverSide;
  /** The served result, compared as it is when the job runs (see `runShadow`). */
  result: unknown;
}

/** Any function: `never[]` parameters accept every signature in the conditional type below. */
type AnyMethod = (...args: never[]) => unknown;
/** How the wrapper calls a member it has checked to be a function. */
type AnyFunction = (...args: unknown[]) => unknown;

/** Names of the function-valued members of T. */
export type MethodName<T> = {
  [K in keyof T]: T[K] extends AnyMethod ? K : never;
}[keyof T] &
  string;

export interface CutoverOptions<T extends object> {
  /** Stable name: the row in pgshift.cutovers, the env override, the metric label. */
  name: string;
  /** Where pgshift keeps the phase and the repair ledger (usually the application's pool for `next`). */
  pool: pg.Pool;
  legacy: T;
  next: T;
  /** Methods that only read; served by one side per phase, shadowed on the other. */
  reads: readonly MethodName<T>[];
  /** Methods that change data; sent to both sides while both are live. */
  writes: readonly MethodName<T>[];
  /** Equality of a read's results on both sides; default: deep equality of canonical JSON. */
  compare?: (legacy: unknown, next: unknown, call: { method: string; key: string | undefined }) => boolean;
  /** The key a call is about (ramp routing, ledger, samples); default: the first argument when it is a string or number, or its `id`/`key`. */
  keyOf?: (method: string, args: readonly unknown[]) => string | undefined;
  /** Per-key read/write; enables key-sync repairs and the verifier. */
  keyAccess?: CutoverKeyAccess<T>;
  /** The phase when the cutover is registered for the first time (default legacy-only). */
  initialPhase?: CutoverPhase;
  /** Human names of the two sides for status output, e.g. { legacy: "memory", next: "postgres public.tasks" }. */
  labels?: { legacy?: string; next?: string };
  shadow?: {
    /** Fraction of eligible reads that are shadowed (default 1). */
    rate?: number;
    /**
     * Shadow reads queued or running at most; beyond, they are skipped and counted (default 64), so a
     * slow side costs comparisons, never memory or the caller's time.
     */
    maxInFlight?: number;
    /**
     * Shadow reads running at once (default 4); the others wait in the queue. Keeps shadow reads from
     * holding more than this many of the other side's connections, which its writes also need.
     */
    concurrency?: number;
    /** Mismatch and error samples kept (default 20). */
    samples?: number;
    /** Re-read both sides once before counting a mismatch, to tell races from divergence (default true). */
    recheck?: boolean;
    /**
     * Wait before that re-read (default 100 ms), so a dual write in flight (legacy done, next not yet)
     * lands first; an immediate re-read would see the same half-applied write.
     */
    recheckDelayMs?: number;
  };
  /** How often this instance writes its metrics to pgshift.cutover_instances (default 5000 ms; 0 = never). */
  reportIntervalMs?: number;
  /** Poll intervals of the phase watcher. */
  watch?: { fastPollMs?: number; slowPollMs?: number };
  /** Environment for the phase override and the ramp thresholds (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Epoch milliseconds that stamp health windows (default Date.now); tests inject a clock shared with autoRamp. */
  clock?: () => number;
  logger?: Logger;
}

export interface CutoverSideMetrics {
  reads: LatencySummary;
  writes: LatencySummary;
  /** Shadow reads against this side. */
  shadowReads: LatencySummary;
  readErrors: number;
  writeErrors: number;
}

export interface CutoverMetrics {
  name: string;
  phase: CutoverPhase;
  phaseSource: "database" | "override";
  /** The phase stored in PostgreSQL (differs from `phase` under an override). */
  storedPhase: CutoverPhase;
  routing: CutoverRouting;
  labels: { legacy: string; next: string };
  calls: { reads: number; writes: number; other: number };
  sides: Record<CutoverSide, CutoverSideMetrics>;
  shadow: ShadowCounts & { mismatchRate: number };
  repairs: { recorded: number; backlog: number };
  phaseChanges: number;
  watcher: PhaseWatcherState;
  instanceId: string;
}

export interface CutoverStatus extends CutoverMetrics {
  /** Write targets in call order, the first authoritative. */
  writeTargets: { side: CutoverSide; label: string; authoritative: boolean }[];
  /** Share of keyed reads served by each side, in percent. */
  readTargets: { side: CutoverSide; label: string; percent: number }[];
  shadowSamples: ReturnType<ShadowStats["snapshot"]>;
  pool: { totalCount: number; idleCount: number; waitingCount: number };
}

/** The controls of a cutover, reachable as `store.cutover`. */
export interface CutoverControl<T extends object> {
  readonly name: string;
  readonly phase: CutoverPhase;
  readonly pool: pg.Pool;
  readonly legacy: T;
  readonly next: T;
  /** Stores the phase in PostgreSQL (every instance follows within a second) and applies it here at once. */
  setPhase(
    phase: CutoverPhase | string,
    options?: { force?: boolean; reason?: string },
  ): Promise<CutoverPhaseChange>;
  /** One phase forward (ramp goes 10, 50, 100 %). */
  advance(options?: { force?: boolean; reason?: string }): Promise<CutoverPhaseChange>;
  /** One phase back. */
  rollback(options?: { force?: boolean; reason?: string }): Promise<CutoverPhaseChange>;
  /** Re-reads the phase now. */
  refresh(): Promise<void>;
  /** Resolves when no shadow read (including its delayed re-check) is in flight. */
  shadowsSettled(): Promise<void>;
  repair(options?: CutoverRepairOptions): Promise<CutoverRepairResult>;
  backfill<R>(options: CutoverBackfillOptions<R>): Promise<CutoverBackfillResult>;
  verify(options?: CutoverVerifyOptions): Promise<CutoverVerifyResult>;
  metrics(): CutoverMetrics;
  status(): CutoverStatus;
  /** Called after each phase change this instance applies. */
  onPhaseChange(listener: (phase: CutoverPhase, previous: CutoverPhase) => void): () => void;
  /** Writes this instance's health figures since the last call to pgshift.cutover_health (also done on every report). */
  reportHealth(): Promise<void>;
  /**
   * Starts the automatic ramp on this instance; the instance holding the ramp's advisory lock decides,
   * the others stand by and take over when it dies. Stop it with the returned policy's `stop()`.
   */
  autoRamp(options?: Omit<RampPolicyOptions, "pool" | "name">): Promise<RampPolicy>;
  /** Streams the legacy store (via keyAccess) to an NDJSON file and records its sha256 and count. */
  snapshot(options: { to: string }): Promise<CutoverSnapshot>;
  /** Writes every record of a snapshot back into the legacy store after checking its checksum. */
  restoreLegacyFromSnapshot(options: { from: string }): Promise<CutoverRestoreResult>;
  /** Waits for in-flight shadow reads, writes the last report, stops the watcher. The pool is the caller's. */
  close(): Promise<void>;
}

/** A store with the wrapped interface plus its `cutover` controls. */
export type CutoverStore<T extends object> = T & {
  readonly cutover: CutoverControl<T>;
};

export function defaultCutoverKeyOf(_method: string, args: readonly unknown[]): string | undefined {
  const first = args[0];
  if (typeof first === "string") return first;
  if (typeof first === "number" || typeof first === "bigint") return String(first);
  if (first && typeof first === "object") {
    const record = first as Record<string, unknown>;
    for (const field of ["id", "key"]) {
      const value = record[field];
      if (typeof value === "string" || typeof value === "number") return String(value);
    }
  }
  return undefined;
}

function otherSide(side: CutoverSide): CutoverSide {
  return side === "legacy" ? "next" : "legacy";
}

function methodNames(object: object): string[] {
  const names = new Set<string>();
  for (let o: object | null = object; o && o !== Object.prototype; o = Object.getPrototypeOf(o)) {
    for (const name of Object.getOwnPropertyNames(o)) {
      if (name === "constructor") continue;
      const descriptor = Object.getOwnPropertyDescriptor(o, name);
      if (descriptor && typeof descriptor.value === "function") names.add(name);
    }
  }
  return [...names];
}

const sideMetrics = () => ({
  reads: new LatencyReservoir(),
  writes: new LatencyReservoir(),
  shadowReads: new LatencyReservoir(),
  readErrors: 0,
  writeErrors: 0,
});

class CutoverRuntime<T extends object> implements CutoverControl<T> {
  readonly name: string;
  readonly pool: pg.Pool;
  readonly legacy: T;
  readonly next: T;
  readonly instanceId = `${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;
  phase: CutoverPhase = "legacy-only";
  storedPhase: CutoverPhase = "legacy-only";
  /** The revision of the stored phase last applied; older reads are ignored. */
  private storedRevision: string | undefined;
  phaseSource: "database" | "override" = "database";
  routing: CutoverRouting = routingOf(parseCutoverPhase("legacy-only"));
  readonly keyOf: (method: string, args: readonly unknown[]) => string | undefined;
  readonly compare: NonNullable<CutoverOptions<T>["compare"]>;
  readonly labels: { legacy: string; next: string };
  readonly ledger: RepairLedger;
  readonly shadowStats: ShadowStats;
  readonly watcher: PhaseWatcher;
  readonly sides = { legacy: sideMetrics(), next: sideMetrics() };
  readonly calls = { reads: 0, writes: 0, other: 0 };
  phaseChanges = 0;
  private readonly logger: Logger;
  private readonly env: NodeJS.ProcessEnv;
  private readonly shadowRate: number;
  private readonly shadowQueue: ShadowQueue<ShadowJob>;
  private readonly recheck: boolean;
  private readonly recheckDelayMs: number;
  private readonly listeners = new Set<(phase: CutoverPhase, previous: CutoverPhase) => void>();
  private reportTimer: NodeJS.Timeout | undefined;
  private ledgerTimer: NodeJS.Timeout | undefined;
  private readonly startedAt = new Date().toISOString();
  readonly clock: () => number;
  readonly health: HealthWindow;
  private closed = false;

  constructor(private readonly options: CutoverOptions<T>) {
    this.name = validateCutoverName(options.name);
    this.pool = options.pool;
    this.legacy = options.legacy;
    this.next = options.next;
    this.keyOf = options.keyOf ?? defaultCutoverKeyOf;
    this.compare = options.compare ?? ((a, b) => canonicalEqual(a, b));
    this.labels = {
      legacy: options.labels?.legacy ?? "legacy",
      next: options.labels?.next ?? "next",
    };
    this.ledger = new RepairLedger(options.pool, this.name);
    this.shadowStats = new ShadowStats(options.shadow?.samples ?? 20);
    this.shadowRate = options.shadow?.rate ?? 1;
    this.shadowQueue = new ShadowQueue<ShadowJob>(
      options.shadow?.maxInFlight ?? 64,
      (job) => this.runShadow(job),
      (error, job) => this.shadowStats.error(job.method, job.key, otherSide(job.served), error),
      undefined,
      options.shadow?.concurrency ?? 4,
    );
    this.recheck = options.shadow?.recheck ?? true;
    this.recheckDelayMs = options.shadow?.recheckDelayMs ?? 100;
    this.logger = options.logger ?? silentLogger;
    this.env = options.env ?? process.env;
    this.clock = options.clock ?? Date.now;
    this.health = new HealthWindow(this.clock());
    this.watcher = new PhaseWatcher({
      pool: options.pool,
      name: this.name,
      onPhase: (phase, revision) => this.applyStored(phase, revision),
      onError: (error) =>
        this.logger.warn(`cutover ${this.name}: phase refresh failed; keeping ${this.phase}`, {
          error: error instanceof Error ? error.message : String(error),
        }),
      ...(options.watch?.fastPollMs ? { fastPollMs: options.watch.fastPollMs } : {}),
      ...(options.watch?.slowPollMs ? { slowPollMs: options.watch.slowPollMs } : {}),
    });
  }

  /** While ledger entries wait in memory (PostgreSQL unreachable), retry writing them every second. */
  private retryLedger(): void {
    if (this.ledgerTimer || this.closed) return;
    this.ledgerTimer = setInterval(() => {
      this.ledger
        .flush()
        .then(() => {
          clearInterval(this.ledgerTimer);
          this.ledgerTimer = undefined;
        })
        .catch((error) =>
          this.logger.warn(
            `cutover ${this.name}: ${this.ledger.backlogSize} repair entries still unrecorded`,
            {
              error: error instanceof Error ? error.message : String(error),
            },
          ),
        );
    }, 1_000);
    this.ledgerTimer.unref();
  }

  async start(): Promise<void> {
    const override = this.overridePhase(true);
    await ensureCutoverSchema(this.pool);
    const row = await registerCutover(this.pool, this.name, this.options.initialPhase);
    // Reports of instances closed long ago are history nobody reads; keep the table small.
    await this.pool.query(
      "delete from pgshift.cutover_instances where cutover = $1 and closed_at < now() - interval '7 days'",
      [this.name],
    );
    this.applyStored(row.phase, row.revision, override);
    await this.watcher.start();
    const interval = this.options.reportIntervalMs ?? 5_000;
    if (interval > 0) {
      await this.report().catch(() => undefined);
      this.reportTimer = setInterval(() => void this.report().catch(() => undefined), interval);
      this.reportTimer.unref();
    }
  }

  /** The override from PGSHIFT_CUTOVER_<NAME>_PHASE; invalid values fail at start and are ignored (with a warning) later. */
  private overridePhase(strict = false): CutoverPhase | undefined {
    const variable = phaseOverrideVariable(this.name);
    const text = this.env[variable];
    if (!text) return undefined;
    try {
      return formatCutoverPhase(parseCutoverPhase(text));
    } catch (error) {
      if (strict) throw new UsageError(`${variable}=${text}: ${(error as Error).message}`, { variable });
      this.logger.warn(`ignoring ${variable}=${text}: not a phase`);
      return undefined;
    }
  }

  private applyStored(
    stored: CutoverPhase,
    revision: string,
    override: CutoverPhase | undefined = this.overridePhase(),
  ): void {
    // A watcher's read that started before this instance's own change can answer after it; applying
    // it would move the phase back until the next notification.
    if (this.storedRevision !== undefined && olderRevision(revision, this.storedRevision)) return;
    this.storedRevision = revision;
    this.storedPhase = stored;
    const effective = override ?? stored;
    this.phaseSource = override ? "override" : "database";
    if (effective === this.phase && this.phaseChanges > 0) return;
    const previous = this.phase;
    this.phase = effective;
    this.routing = routingOf(parseCutoverPhase(effective));
    this.phaseChanges++;
    if (previous !== effective) {
      this.logger.info(`cutover ${this.name}: ${previous} -> ${effective}`, {
        source: this.phaseSource,
      });
      for (const listener of this.listeners) listener(effective, previous);
    }
  }

  private impl(side: CutoverSide): T {
    return side === "legacy" ? this.legacy : this.next;
  }

  async write(method: string, args: unknown[]): Promise<unknown> {
    this.calls.writes++;
    // The phase is read once per call: a call that started in one phase finishes in it.
    const routing = this.routing;
    const phase = this.phase;
    const authoritative = routing.writes[0]!;
    const result = await this.callSide(authoritative, method, args, "writes");
    const other = routing.writes[1];
    if (other) {
      try {
        await this.callSide(other, method, args, "writes");
      } catch (error) {
        await this.ledger.record({
          side: other,
          method,
          args,
          key: this.keyOf(method, args),
          phase,
          error: error instanceof Error ? error.message : String(error),
        });
        if (this.ledger.backlogSize > 0) this.retryLedger();
        this.logger.warn(`cutover ${this.name}: ${method} failed on ${other}; recorded for repair`, {
          error: error instanceof Error ? error.message : String(error),
        });
      }
    }
    return result;
  }

  async read(method: string, args: unknown[]): Promise<unknown> {
    this.calls.reads++;
    const routing = this.routing;
    const keyed = routing.reads === "split";
    const key = keyed ? this.keyOf(method, args) : undefined;
    const side = readSideFor(routing, key);
    const result = await this.callSide(side, method, args, "reads");
    if (routing.shadow && (this.shadowRate >= 1 || Math.random() < this.shadowRate)) {
      // Only a record is queued here; the other side's read, the comparison and the metrics run after
      // the caller has its result.
      if (!this.closed && this.shadowQueue.offer({ method, args, key, keyed, served: side, result }))
        this.shadowStats.counts.started++;
      else this.shadowStats.counts.skipped++;
    }
    return result;
  }

  private async callSide(
    side: CutoverSide,
    method: string,
    args: unknown[],
    kind: "reads" | "writes",
  ): Promise<unknown> {
    const target = this.impl(side) as Record<string, AnyFunction>;
    const started = performance.now();
    try {
      const result = await target[method]!.apply(target, args);
      const elapsed = performance.now() - started;
      this.sides[side][kind].record(elapsed);
      this.health.call(side, kind, elapsed);
      return result;
    } catch (error) {
      this.health.call(side, kind, undefined);
      if (kind === "reads") this.sides[side].readErrors++;
      else this.sides[side].writeErrors++;
      throw error;
    }
  }

  /**
   * One shadow read, run from the queue's drain. The served result is compared as it is now: the
   * caller got the same object and may have changed it since (in its synchronous continuation, before
   * this turn of the event loop ended). Copying every result on the caller's path to rule that out
   * would cost more than the read itself (structuredClone of a small document: ~2 µs); instead, with
   * `recheck` (the default), a mismatch is counted only after both sides are read again, which a
   * caller's change to its own copy cannot survive (a change to an object the legacy store still
   * holds is a real divergence, and is counted).
   */
  private async runShadow(job: ShadowJob): Promise<void> {
    const { method, args, served, result } = job;
    const key = job.keyed ? job.key : (job.key = this.keyOf(method, args));
    const other = otherSide(served);
    const target = this.impl(other) as Record<string, AnyFunction>;
    let shadowResult: unknown;
    const started = performance.now();
    try {
      shadowResult = await target[method]!.apply(target, args);
      this.sides[other].shadowReads.record(performance.now() - started);
    } catch (error) {
      this.shadowStats.error(method, key, other, error);
      return;
    }
    const legacyValue = served === "legacy" ? result : shadowResult;
    const nextValue = served === "legacy" ? shadowResult : result;
    if (this.safeCompare(legacyValue, nextValue, method, key)) {
      this.shadowStats.counts.matched++;
      return;
    }
    if (!this.recheck) {
      this.shadowStats.mismatch(method, key, legacyValue, nextValue);
      return;
    }
    try {
      if (this.recheckDelayMs > 0) await sleep(this.recheckDelayMs);
      const [legacyAgain, nextAgain] = await Promise.all([
        (this.legacy as Record<string, AnyFunction>)[method]!.apply(this.legacy, args),
        (this.next as Record<string, AnyFunction>)[method]!.apply(this.next, args),
      ]);
      if (this.safeCompare(legacyAgain, nextAgain, method, key)) this.shadowStats.counts.raced++;
      else this.shadowStats.mismatch(method, key, legacyAgain, nextAgain);
    } catch (error) {
      this.shadowStats.error(method, key, other, error);
    }
  }

  /** Resolves when no shadow read is queued or running. */
  shadowsSettled(): Promise<void> {
    return this.shadowQueue.idle();
  }

  private safeCompare(legacy: unknown, next: unknown, method: string, key: string | undefined): boolean {
    try {
      return this.compare(legacy, next, { method, key });
    } catch {
      return false;
    }
  }

  async passThrough(method: string, args: unknown[]): Promise<unknown> {
    this.calls.other++;
    const side = this.routing.writes[0]!;
    const target = this.impl(side) as Record<string, AnyFunction>;
    return target[method]!.apply(target, args);
  }

  async setPhase(
    phase: CutoverPhase | string,
    options: { force?: boolean; reason?: string } = {},
  ): Promise<CutoverPhaseChange> {
    const change = await setCutoverPhase(this.pool, {
      name: this.name,
      phase,
      ...(options.force !== undefined ? { force: options.force } : {}),
      ...(options.reason !== undefined ? { reason: options.reason } : {}),
    });
    this.applyStored(change.to, change.revision);
    return change;
  }

  async advance(options: { force?: boolean; reason?: string } = {}): Promise<CutoverPhaseChange> {
    const target = nextPhaseOf(this.storedPhase);
    if (!target) throw new UsageError(`cutover ${this.name} is in ${this.storedPhase}, the last phase`);
    return this.setPhase(target, options);
  }

  async rollback(options: { force?: boolean; reason?: string } = {}): Promise<CutoverPhaseChange> {
    const target = previousPhaseOf(this.storedPhase);
    if (!target)
      throw new UsageError(
        this.storedPhase === "next-only"
          ? `cutover ${this.name} is in next-only: no rollback (legacy has received no writes since)`
          : `cutover ${this.name} is in ${this.storedPhase}, the first phase`,
      );
    return this.setPhase(target, options);
  }

  refresh(): Promise<void> {
    return this.watcher.refresh();
  }

  repair(options: CutoverRepairOptions = {}): Promise<CutoverRepairResult> {
    return runRepair({
      pool: this.pool,
      cutover: this.name,
      legacy: this.legacy,
      next: this.next,
      ...(this.options.keyAccess ? { keyAccess: this.options.keyAccess } : {}),
      repairOptions: options,
    });
  }

  backfill<R>(options: CutoverBackfillOptions<R>): Promise<CutoverBackfillResult> {
    return runBackfill(this.pool, this.name, options);
  }

  async verify(options: CutoverVerifyOptions = {}): Promise<CutoverVerifyResult> {
    const access = this.options.keyAccess;
    if (!access)
      throw new UsageError(
        `cutover ${this.name}: verify() needs keyAccess (how to read one key from each side); pass it to createCutover`,
      );
    return runCutoverVerify({
      pool: this.pool,
      cutover: this.name,
      phase: this.phase,
      legacy: this.legacy,
      next: this.next,
      access,
      compare: (a, b, key) => this.compare(a, b, { method: "verify", key }),
      authoritative: this.routing.writes[0]!,
      options,
    });
  }

  metrics(): CutoverMetrics {
    const shadow = this.shadowStats.snapshot();
    const summarize = (side: CutoverSide): CutoverSideMetrics => ({
      reads: this.sides[side].reads.summary(),
      writes: this.sides[side].writes.summary(),
      shadowReads: this.sides[side].shadowReads.summary(),
      readErrors: this.sides[side].readErrors,
      writeErrors: this.sides[side].writeErrors,
    });
    return {
      name: this.name,
      phase: this.phase,
      phaseSource: this.phaseSource,
      storedPhase: this.storedPhase,
      routing: this.routing,
      labels: this.labels,
      calls: { ...this.calls },
      sides: { legacy: summarize("legacy"), next: summarize("next") },
      shadow: { ...shadow.counts, mismatchRate: shadow.mismatchRate },
      repairs: {
        recorded: this.ledger.recorded,
        backlog: this.ledger.backlogSize,
      },
      phaseChanges: this.phaseChanges,
      watcher: { ...this.watcher.state },
      instanceId: this.instanceId,
    };
  }

  status(): CutoverStatus {
    const metrics = this.metrics();
    const routing = this.routing;
    const nextPercent =
      routing.reads === "split" ? routing.nextReadPercent : routing.reads === "next" ? 100 : 0;
    return {
      ...metrics,
      writeTargets: routing.writes.map((side, i) => ({
        side,
        label: this.labels[side],
        authoritative: i === 0,
      })),
      readTargets: (["legacy", "next"] as const)
        .map((side) => ({
          side,
          label: this.labels[side],
          percent: side === "next" ? nextPercent : 100 - nextPercent,
        }))
        .filter((t) => t.percent > 0),
      shadowSamples: this.shadowStats.snapshot(),
      pool: {
        totalCount: this.pool.totalCount,
        idleCount: this.pool.idleCount,
        waitingCount: this.pool.waitingCount,
      },
    };
  }

  onPhaseChange(listener: (phase: CutoverPhase, previous: CutoverPhase) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async reportHealth(): Promise<void> {
    const counts = this.shadowStats.counts;
    const report = this.health.take(
      this.instanceId,
      this.clock(),
      { compared: counts.matched + counts.mismatched + counts.raced, mismatched: counts.mismatched },
      this.ledger.backlogSize,
    );
    await writeHealthReport(this.pool, this.name, report);
  }

  async autoRamp(options: Omit<RampPolicyOptions, "pool" | "name"> = {}): Promise<RampPolicy> {
    const policy = new RampPolicy({
      clock: this.clock,
      env: this.env,
      logger: this.logger,
      ...options,
      pool: this.pool,
      name: this.name,
    });
    await policy.start();
    return policy;
  }

  async snapshot(options: { to: string }): Promise<CutoverSnapshot> {
    // What this instance wrote to legacy so far must be on record before the snapshot claims to be newer.
    await this.reportHealth();
    return takeSnapshot({
      pool: this.pool,
      cutover: this.name,
      phase: this.storedPhase,
      legacy: this.legacy,
      access: this.requireKeyAccess("snapshot()"),
      to: options.to,
    });
  }

  restoreLegacyFromSnapshot(options: { from: string }): Promise<CutoverRestoreResult> {
    return restoreLegacyFromSnapshot({
      pool: this.pool,
      cutover: this.name,
      legacy: this.legacy,
      access: this.requireKeyAccess("restoreLegacyFromSnapshot()"),
      from: options.from,
    });
  }

  private requireKeyAccess(what: string): CutoverKeyAccess<T> {
    const access = this.options.keyAccess;
    if (!access?.keys)
      throw new UsageError(
        `cutover ${this.name}: ${what} needs keyAccess with keys() (how to list and read the legacy store); pass it to createCutover`,
      );
    return access;
  }

  /** Writes this instance's metrics and buffered ledger entries to PostgreSQL. */
  async report(closing = false): Promise<void> {
    await this.ledger.flush();
    await this.reportHealth();
    await this.pool.query(
      `insert into pgshift.cutover_instances (instance_id, cutover, phase, phase_source, metrics, host, pid, started_at, reported_at, closed_at)
       values ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, now(), case when $9 then now() end)
       on conflict (cutover, instance_id) do update set phase = excluded.phase, phase_source = excluded.phase_source,
         metrics = excluded.metrics, reported_at = now(), closed_at = excluded.closed_at`,
      [
        this.instanceId,
        this.name,
        this.phase,
        this.phaseSource,
        JSON.stringify({
          ...this.metrics(),
          shadowSamples: this.shadowStats.snapshot(),
        }),
        hostname(),
        process.pid,
        this.startedAt,
        closing,
      ],
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.reportTimer) clearInterval(this.reportTimer);
    if (this.ledgerTimer) clearInterval(this.ledgerTimer);
    await this.shadowsSettled();
    await this.watcher.close();
    if ((this.options.reportIntervalMs ?? 5_000) > 0) await this.report(true).catch(() => undefined);
    if (this.ledger.backlogSize > 0) {
      try {
        await this.ledger.flush();
      } catch (error) {
        // Last resort: the entries travel in the error, so the application can log or persist them.
        throw new PgshiftError(
          "repair_ledger_unrecorded",
          `cutover ${this.name}: ${this.ledger.backlogSize} failed write(s) could not be recorded in pgshift.cutover_repairs (PostgreSQL unreachable); they are in this error's details.entries: replay them or repair the keys`,
          { cause: error, details: { entries: this.ledger.pending() } },
        );
      }
    }
  }
}

/**
 * Wraps two implementations of one interface and returns an object with that interface whose calls
 * follow the cutover's phase (stored in PostgreSQL, shared by every instance):
 *
 *   const tasks = await createCutover({ name: "tasks", pool, legacy: memoryTasks, next: pgTasks,
 *     reads: ["get", "list"], writes: ["put", "delete"] });
 *   await tasks.put("t1", task);             // legacy, then next while both are live
 *   await tasks.cutover.setPhase("dual-write");
 *
 * Methods in neither list are passed to the authoritative side unchanged. Close with `tasks.cutover.close()`.
 */
export async function createCutover<T extends object>(options: CutoverOptions<T>): Promise<CutoverStore<T>> {
  const runtime = new CutoverRuntime(options);
  const reads = new Set<string>(options.reads);
  const writes = new Set<string>(options.writes);
  for (const method of [...reads, ...writes]) {
    for (const side of ["legacy", "next"] as const) {
      if (typeof (options[side] as Record<string, unknown>)[method] !== "function")
        throw new UsageError(`cutover ${options.name}: the ${side} store has no method "${method}"`);
    }
    if (reads.has(method) && writes.has(method))
      throw new UsageError(`cutover ${options.name}: "${method}" is listed both as a read and as a write`);
  }
  const wrapped: Record<string, unknown> = {};
  for (const method of methodNames(options.legacy)) {
    if (method === "cutover")
      throw new UsageError(
        `cutover ${options.name}: the wrapped interface has a member named "cutover", which the controls use`,
      );
    if (reads.has(method)) wrapped[method] = (...args: unknown[]) => runtime.read(method, args);
    else if (writes.has(method)) wrapped[method] = (...args: unknown[]) => runtime.write(method, args);
    else wrapped[method] = (...args: unknown[]) => runtime.passThrough(method, args);
  }
  Object.defineProperty(wrapped, "cutover", {
    value: runtime,
    enumerable: false,
  });
  await runtime.start();
  return wrapped as CutoverStore<T>;
}

import type pg from "pg";
import { ExitCode, PgshiftError } from "../errors.ts";
import { ensureInternalSchema } from "../pg/internal-schema.ts";
import { withTransaction } from "../pg/pool.ts";
import { CUTOVER_CHANNEL, cutoverPart } from "./cutover-schema.ts";
import {
  checkPhaseTransition,
  formatCutoverPhase,
  type CutoverPhase,
  parseCutoverPhase,
  routingOf,
  type CutoverSide,
  validateCutoverName,
} from "./phases.ts";

export class UnknownCutoverError extends PgshiftError {
  constructor(name: string, known: string[]) {
    super(
      "unknown_cutover",
      `no cutover named "${name}" in this database (known: ${known.length ? known.join(", ") : "none"}); a cutover is registered when the application first calls createCutover()`,
      { details: { name, known } },
    );
  }
}

export class PhaseChangeRefusedError extends PgshiftError {
  constructor(message: string, details: Record<string, unknown>) {
    super("phase_change_refused", message, {
      exitCode: ExitCode.usage,
      details,
    });
  }
}

export interface CutoverRow {
  name: string;
  phase: CutoverPhase;
  changedAt: string;
  changedBy: string;
  reason: string | null;
  forced: boolean;
  createdAt: string;
  /**
   * changed_at in microseconds since the epoch, as a decimal string: strictly increasing with every
   * change of this cutover, so a reader can tell a stale read of the row from a newer one.
   */
  revision: string;
}

/** The columns of a cutover row, with its revision. */
const CUTOVER_COLUMNS = "*, (extract(epoch from changed_at) * 1000000)::bigint::text as revision";

/** True when revision `a` is older than `b` (both decimal strings of {@link CutoverRow.revision}). */
export function olderRevision(a: string, b: string): boolean {
  return BigInt(a) < BigInt(b);
}

export async function ensureCutoverSchema(pool: pg.Pool): Promise<void> {
  await ensureInternalSchema(pool, [cutoverPart]);
}

function toRow(r: Record<string, unknown>): CutoverRow {
  return {
    name: r.name as string,
    phase: r.phase as CutoverPhase,
    changedAt: new Date(r.changed_at as string).toISOString(),
    changedBy: r.changed_by as string,
    reason: (r.reason as string | null) ?? null,
    forced: Boolean(r.forced),
    createdAt: new Date(r.created_at as string).toISOString(),
    revision: r.revision as string,
  };
}

/** Registers a cutover in `initialPhase` unless it exists; returns its current row. */
export async function registerCutover(
  pool: pg.Pool,
  name: string,
  initialPhase: CutoverPhase = "legacy-only",
): Promise<CutoverRow> {
  validateCutoverName(name);
  const phase = formatCutoverPhase(parseCutoverPhase(initialPhase));
  await withTransaction(pool, async (client) => {
    const inserted = await client.query(
      `insert into pgshift.cutovers (name, phase, reason) values ($1, $2, 'registered')
       on conflict (name) do nothing`,
      [name, phase],
    );
    if (inserted.rowCount)
      await client.query(
        `insert into pgshift.cutover_history (cutover, from_phase, to_phase, kind, reason)
         values ($1, null, $2, 'register', 'registered')`,
        [name, phase],
      );
  });
  return (await readCutover(pool, name))!;
}

export async function readCutover(
  db: pg.Pool | pg.ClientBase,
  name: string,
): Promise<CutoverRow | undefined> {
  const { rows } = await db.query(`select ${CUTOVER_COLUMNS} from pgshift.cutovers where name = $1`, [name]);
  return rows[0] ? toRow(rows[0]) : undefined;
}

async function knownNames(db: pg.Pool | pg.ClientBase): Promise<string[]> {
  const { rows } = await db.query("select name from pgshift.cutovers order by name");
  return rows.map((r) => r.name as string);
}

export interface CutoverRepairCounts {
  pendingLegacy: number;
  pendingNext: number;
  repaired: number;
}

export async function repairCounts(db: pg.Pool | pg.ClientBase, name: string): Promise<CutoverRepairCounts> {
  const { rows } = await db.query(
    `select count(*) filter (where status = 'pending' and side = 'legacy')::int as pending_legacy,
            count(*) filter (where status = 'pending' and side = 'next')::int as pending_next,
            count(*) filter (where status = 'repaired')::int as repaired
       from pgshift.cutover_repairs where cutover = $1`,
    [name],
  );
  return {
    pendingLegacy: rows[0].pending_legacy,
    pendingNext: rows[0].pending_next,
    repaired: rows[0].repaired,
  };
}

export interface SetCutoverPhaseOptions {
  name: string;
  phase: string;
  /** Allow skipping phases, going back more than one, leaving next-only, or ignoring pending repairs. */
  force?: boolean;
  reason?: string;
  /** Evidence recorded with the change in pgshift.cutover_history.figures (the ramp policy's health figures). */
  figures?: unknown;
}

export interface CutoverPhaseChange {
  name: string;
  from: CutoverPhase;
  to: CutoverPhase;
  kind: "forward" | "rollback" | "same" | "skip";
  forced: boolean;
  reason: string | null;
  /** Why a forced change would have been refused. */
  overridden: string[];
  /** The row's revision after the change (see {@link CutoverRow.revision}). */
  revision: string;
}

/**
 * Changes a cutover's phase: one step forward or one step back unless forced. Refuses to make a side
 * serve reads while it has pending repairs (it is known to be behind). The change and its history row
 * commit together with a NOTIFY, so every instance listening picks it up at commit.
 */
export async function setCutoverPhase(
  pool: pg.Pool,
  options: SetCutoverPhaseOptions,
): Promise<CutoverPhaseChange> {
  const target = formatCutoverPhase(parseCutoverPhase(options.phase));
  if (!(await cutoverTablesExist(pool))) throw new UnknownCutoverError(options.name, []);
  return withTransaction(pool, async (client) => {
    const { rows } = await client.query(
      `select ${CUTOVER_COLUMNS} from pgshift.cutovers where name = $1 for update`,
      [options.name],
    );
    if (!rows[0]) throw new UnknownCutoverError(options.name, await knownNames(client));
    const current = toRow(rows[0]);
    const from = current.phase;
    let revision = current.revision;
    const check = checkPhaseTransition(from, target);
    const problems: string[] = [];
    if (!check.allowed) problems.push(check.reason);
    if (check.kind !== "same") {
      const counts = await repairCounts(client, options.name);
      const routing = routingOf(parseCutoverPhase(target));
      const readSides = new Set<CutoverSide>(
        routing.reads === "split"
          ? ["legacy", "next"]
          : [routing.reads, ...(routing.writes.slice(0, 1) as CutoverSide[])],
      );
      if (readSides.has("next") && counts.pendingNext > 0)
        problems.push(
          `${counts.pendingNext} write(s) to next are waiting in the repair ledger, so next is behind; run the repairer (cutover.repair()) before ${target} serves reads from next`,
        );
      if (readSides.has("legacy") && counts.pendingLegacy > 0)
        problems.push(
          `${counts.pendingLegacy} write(s) to legacy are waiting in the repair ledger, so legacy is behind; run the repairer (cutover.repair()) before ${target} serves reads from legacy`,
        );
      if (target === "next-only") {
        const snapshotProblem = await snapshotFreshness(client, options.name);
        if (snapshotProblem) {
          if (options.force && !options.reason?.trim())
            throw new PhaseChangeRefusedError(
              `refusing to force cutover "${options.name}" to next-only without a reason: ${snapshotProblem}; pass --reason (why legacy's data may be dropped without a snapshot)`,
              { name: options.name, from, to: target, problems: [snapshotProblem] },
            );
          problems.push(snapshotProblem);
        }
      }
    }
    if (problems.length > 0 && !options.force) {
      throw new PhaseChangeRefusedError(
        `refusing to move cutover "${options.name}" from ${from} to ${target}: ${problems.join("; ")}`,
        { name: options.name, from, to: target, problems },
      );
    }
    if (check.kind !== "same") {
      // changed_at strictly increases per cutover (a transaction's now() can be older than the change
      // it waited for), so it doubles as the revision watchers compare.
      const updated = await client.query(
        `update pgshift.cutovers
            set phase = $2, changed_by = current_user, reason = $3, forced = $4,
                changed_at = greatest(clock_timestamp(), changed_at + interval '1 microsecond')
          where name = $1
          returning (extract(epoch from changed_at) * 1000000)::bigint::text as revision`,
        [options.name, target, options.reason ?? null, problems.length > 0],
      );
      revision = updated.rows[0].revision as string;
      await client.query(
        `insert into pgshift.cutover_history (cutover, from_phase, to_phase, kind, forced, reason, figures)
         values ($1, $2, $3, $4, $5, $6, $7::jsonb)`,
        [
          options.name,
          from,
          target,
          check.kind,
          problems.length > 0,
          options.reason ?? null,
          options.figures === undefined ? null : JSON.stringify(options.figures),
        ],
      );
      await client.query("select pg_notify($1, $2)", [CUTOVER_CHANNEL, options.name]);
    }
    return {
      name: options.name,
      from,
      to: target,
      kind: check.kind,
      forced: problems.length > 0,
      reason: options.reason ?? null,
      overridden: problems,
      revision,
    };
  });
}

/**
 * Why next-only is not yet safe, or undefined when it is: after next-only legacy receives no writes, so
 * its data must be on record in a snapshot taken after the last write any instance reported to legacy.
 */
async function snapshotFreshness(client: pg.ClientBase, name: string): Promise<string | undefined> {
  const { rows } = await client.query(
    `select (select max(started_at) from pgshift.cutover_snapshots where cutover = $1) as snapshot_at,
            (select max(last_legacy_write_at) from pgshift.cutover_health where cutover = $1) as written_at`,
    [name],
  );
  const snapshotAt: Date | null = rows[0].snapshot_at;
  const writtenAt: Date | null = rows[0].written_at;
  if (!snapshotAt)
    return "no final snapshot of legacy is recorded; take one with cutover.snapshot({ to }) before next-only (legacy receives no writes after it)";
  if (writtenAt && writtenAt.getTime() >= snapshotAt.getTime())
    return `the latest snapshot of legacy (started ${snapshotAt.toISOString()}) is older than the last legacy write an instance reported (${writtenAt.toISOString()}); take a new one with cutover.snapshot({ to })`;
  return undefined;
}

export interface CutoverHistoryEntry {
  from: CutoverPhase | null;
  to: CutoverPhase;
  kind: string;
  forced: boolean;
  reason: string | null;
  actor: string;
  at: string;
  /** Figures recorded with the change (the ramp policy's health window), null for manual changes. */
  figures: unknown;
}

export async function cutoverHistory(
  pool: pg.Pool,
  name: string,
  limit = 20,
): Promise<CutoverHistoryEntry[]> {
  const { rows } = await pool.query(
    `select * from (select * from pgshift.cutover_history where cutover = $1 order by id desc limit $2) h order by id`,
    [name, limit],
  );
  return rows.map((r) => ({
    from: r.from_phase,
    to: r.to_phase,
    kind: r.kind,
    forced: r.forced,
    reason: r.reason,
    actor: r.actor,
    at: new Date(r.at).toISOString(),
    figures: r.figures ?? null,
  }));
}

/** Whether pgshift's cutover tables exist (read-only commands do not create them). */
export async function cutoverTablesExist(db: pg.Pool | pg.ClientBase): Promise<boolean> {
  const { rows } = await db.query("select to_regclass('pgshift.cutover_instances') is not null as ok");
  return Boolean(rows[0].ok);
}

export async function listCutoverRows(pool: pg.Pool): Promise<CutoverRow[]> {
  if (!(await cutoverTablesExist(pool))) return [];
  const { rows } = await pool.query("select * from pgshift.cutovers order by name");
  return rows.map(toRow);
}

export async function requireCutover(pool: pg.Pool, name: string): Promise<CutoverRow> {
  if (!(await cutoverTablesExist(pool))) throw new UnknownCutoverError(name, []);
  const row = await readCutover(pool, name);
  if (!row) throw new UnknownCutoverError(name, await knownNames(pool));
  return row;
}

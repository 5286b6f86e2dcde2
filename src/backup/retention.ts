import { UsageError } from "../errors.ts";

/**
 * Grandfather-father-son retention, as a pure function: which backups a policy keeps and why.
 *
 * Each class keeps the newest backup of each of its last N calendar periods (UTC) ending at `now`:
 * `daily` the last N days, `weekly` the last N ISO weeks (Monday to Sunday), `monthly` the last N
 * months, `yearly` the last N years. A period without a backup is not made up for by an older one,
 * so "7 yearly" means "the years ending this year", whatever happened in between. The newest backup
 * is always kept (so a long outage never leaves zero backups), backups started after `now` are kept
 * (clock skew is never a reason to delete), and a backup that a kept differential or incremental
 * backup depends on (`prior`, transitively) is kept too.
 */
export interface GfsPolicy {
  daily: number;
  weekly: number;
  monthly: number;
  yearly: number;
}

export const DEFAULT_GFS_POLICY: GfsPolicy = { daily: 7, weekly: 4, monthly: 12, yearly: 7 };

export type BackupKind = "full" | "diff" | "incr" | "logical" | "physical";

export interface RetentionCandidate {
  label: string;
  /** When the backup started (ISO 8601 or Date): the time retention classifies by. */
  startedAt: string | Date;
  kind: BackupKind;
  /** For diff/incr: the label of the backup this one needs in order to be restored. */
  prior?: string;
}

export type GfsClass = "daily" | "weekly" | "monthly" | "yearly" | "latest" | "future" | "dependency";

export interface RetentionDecision {
  label: string;
  startedAt: string;
  kind: BackupKind;
  keep: boolean;
  /** Every class that keeps it (empty when expired). */
  classes: GfsClass[];
  /** Human-readable, e.g. "daily 2026-12-31; monthly 2026-12" or "older than every period kept". */
  reason: string;
}

export interface RetentionResult {
  policy: GfsPolicy;
  now: string;
  keep: RetentionDecision[];
  expire: RetentionDecision[];
}

const DAY_MS = 86_400_000;

function dayKey(t: Date): string {
  return t.toISOString().slice(0, 10);
}

/** ISO 8601 week (e.g. 2026-W53): weeks start on Monday, week 1 holds the year's first Thursday. */
export function isoWeekKey(t: Date): string {
  const day = new Date(Date.UTC(t.getUTCFullYear(), t.getUTCMonth(), t.getUTCDate()));
  const weekday = (day.getUTCDay() + 6) % 7; // Monday = 0
  day.setUTCDate(day.getUTCDate() - weekday + 3); // the Thursday of this week
  const year = day.getUTCFullYear();
  const firstThursday = new Date(Date.UTC(year, 0, 4));
  firstThursday.setUTCDate(firstThursday.getUTCDate() - ((firstThursday.getUTCDay() + 6) % 7) + 3);
  const week = 1 + Math.round((day.getTime() - firstThursday.getTime()) / (7 * DAY_MS));
  return `${year}-W${String(week).padStart(2, "0")}`;
}

function monthKey(t: Date): string {
  return t.toISOString().slice(0, 7);
}

function yearKey(t: Date): string {
  return t.toISOString().slice(0, 4);
}

/** The keys of the last `count` periods ending with the one holding `now`. */
function recentPeriods(
  cls: "daily" | "weekly" | "monthly" | "yearly",
  now: Date,
  count: number,
): Set<string> {
  const keys = new Set<string>();
  for (let i = 0; i < count; i++) {
    if (cls === "daily") keys.add(dayKey(new Date(now.getTime() - i * DAY_MS)));
    else if (cls === "weekly") keys.add(isoWeekKey(new Date(now.getTime() - i * 7 * DAY_MS)));
    else if (cls === "monthly")
      keys.add(monthKey(new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - i, 1))));
    else keys.add(String(now.getUTCFullYear() - i));
  }
  return keys;
}

const PERIOD_KEY = { daily: dayKey, weekly: isoWeekKey, monthly: monthKey, yearly: yearKey } as const;

function validatePolicy(policy: GfsPolicy): void {
  const bad = (Object.keys(DEFAULT_GFS_POLICY) as (keyof GfsPolicy)[]).filter(
    (k) => !Number.isInteger(policy[k]) || policy[k] < 0,
  );
  if (bad.length) throw new UsageError(`retention counts must be whole numbers >= 0: ${bad.join(", ")}`);
}

export function selectRetained(
  backups: readonly RetentionCandidate[],
  policy: GfsPolicy = DEFAULT_GFS_POLICY,
  now: Date = new Date(),
): RetentionResult {
  validatePolicy(policy);
  const items = backups.map((b) => {
    const t = new Date(b.startedAt);
    if (Number.isNaN(t.getTime())) throw new UsageError(`backup ${b.label} has no valid start time`);
    return { ...b, t, classes: [] as GfsClass[], reasons: [] as string[] };
  });
  const labels = new Set<string>();
  for (const item of items) {
    if (labels.has(item.label)) throw new UsageError(`backup label ${item.label} appears twice`);
    labels.add(item.label);
  }
  // Newest first; ties broken by label so the result never depends on input order.
  const sorted = [...items].sort((a, b) => b.t.getTime() - a.t.getTime() || (a.label < b.label ? 1 : -1));
  const past = sorted.filter((b) => b.t.getTime() <= now.getTime());
  for (const b of sorted) {
    if (b.t.getTime() > now.getTime()) {
      b.classes.push("future");
      b.reasons.push("started after now (clock skew?)");
    }
  }
  for (const cls of ["daily", "weekly", "monthly", "yearly"] as const) {
    const wanted = recentPeriods(cls, now, policy[cls]);
    const taken = new Set<string>();
    for (const b of past) {
      const key = PERIOD_KEY[cls](b.t);
      if (!wanted.has(key) || taken.has(key)) continue;
      taken.add(key);
      b.classes.push(cls);
      b.reasons.push(`${cls} ${key}`);
    }
  }
  const newest = past[0];
  if (newest && newest.classes.length === 0) {
    newest.classes.push("latest");
    newest.reasons.push("the newest backup is always kept");
  }
  // Dependencies: a kept diff/incr needs its prior, transitively.
  const byLabel = new Map(items.map((b) => [b.label, b]));
  for (const b of sorted) {
    if (b.classes.length === 0 || b.classes.every((c) => c === "dependency")) continue;
    let child = b;
    while (child.prior !== undefined) {
      const parent = byLabel.get(child.prior);
      if (!parent) break;
      if (parent.classes.includes("dependency")) break; // its chain is marked already
      parent.classes.push("dependency");
      parent.reasons.push(`needed by ${child.kind} ${child.label}`);
      child = parent;
    }
  }
  const decisions = sorted.map((b): RetentionDecision => ({
    label: b.label,
    startedAt: b.t.toISOString(),
    kind: b.kind,
    keep: b.classes.length > 0,
    classes: b.classes,
    reason: b.classes.length > 0 ? b.reasons.join("; ") : "older than every period the policy keeps",
  }));
  return {
    policy,
    now: now.toISOString(),
    keep: decisions.filter((d) => d.keep),
    expire: decisions.filter((d) => !d.keep),
  };
}

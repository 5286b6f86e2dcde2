import { UsageError } from "../errors.ts";

/**
 * The phases of a cutover, in order. `ramp:P` serves P % of reads from `next` (P in 0..100).
 * Moving back one phase is the rollback; it is allowed from every phase before `next-only`.
 */
export type CutoverPhase =
  "legacy-only" | "dual-write" | "shadow" | `ramp:${number}` | "next-primary" | "next-only";

/** The phase kinds without the ramp percentage, in order. */
export const CUTOVER_PHASES = [
  "legacy-only",
  "dual-write",
  "shadow",
  "ramp",
  "next-primary",
  "next-only",
] as const;
export type CutoverPhaseKind = (typeof CUTOVER_PHASES)[number];

export type CutoverSide = "legacy" | "next";

export interface ParsedCutoverPhase {
  kind: CutoverPhaseKind;
  /** Only for `ramp`: percentage of reads served from next. */
  percent: number;
}

/** Parses "legacy-only" ... "ramp:25" ... "next-only"; throws a UsageError naming the valid phases. */
export function parseCutoverPhase(text: string): ParsedCutoverPhase {
  const value = text.trim();
  const ramp = /^ramp:(\d{1,3})$/.exec(value);
  if (ramp) {
    const percent = Number(ramp[1]);
    if (percent <= 100) return { kind: "ramp", percent };
  }
  if ((CUTOVER_PHASES as readonly string[]).includes(value) && value !== "ramp")
    return { kind: value as CutoverPhaseKind, percent: 0 };
  throw new UsageError(
    `unknown cutover phase "${text}": expected one of legacy-only, dual-write, shadow, ramp:P (P = 0..100), next-primary, next-only`,
    { phase: text },
  );
}

export function isCutoverPhase(text: string): text is CutoverPhase {
  try {
    parseCutoverPhase(text);
    return true;
  } catch {
    return false;
  }
}

export function formatCutoverPhase(phase: ParsedCutoverPhase): CutoverPhase {
  return phase.kind === "ramp" ? `ramp:${phase.percent}` : (phase.kind as CutoverPhase);
}

function rank(phase: ParsedCutoverPhase): number {
  return CUTOVER_PHASES.indexOf(phase.kind);
}

/** Where a phase sends writes (authoritative first) and reads. */
export interface CutoverRouting {
  /** Write targets in call order; the first is authoritative. */
  writes: readonly CutoverSide[];
  /** Where reads are served: one side, or "split" for ramp (chosen per key). */
  reads: CutoverSide | "split";
  /** Whether reads also run on the other side in the background for comparison. */
  shadow: boolean;
  /** Percent of reads served from next (ramp); 0 or 100 otherwise. */
  nextReadPercent: number;
}

export function routingOf(phase: ParsedCutoverPhase): CutoverRouting {
  switch (phase.kind) {
    case "legacy-only":
      return {
        writes: ["legacy"],
        reads: "legacy",
        shadow: false,
        nextReadPercent: 0,
      };
    case "dual-write":
      return {
        writes: ["legacy", "next"],
        reads: "legacy",
        shadow: false,
        nextReadPercent: 0,
      };
    case "shadow":
      return {
        writes: ["legacy", "next"],
        reads: "legacy",
        shadow: true,
        nextReadPercent: 0,
      };
    case "ramp":
      return {
        writes: ["legacy", "next"],
        reads: phase.percent === 0 ? "legacy" : phase.percent === 100 ? "next" : "split",
        shadow: true,
        nextReadPercent: phase.percent,
      };
    case "next-primary":
      return {
        writes: ["next", "legacy"],
        reads: "next",
        shadow: true,
        nextReadPercent: 100,
      };
    case "next-only":
      return {
        writes: ["next"],
        reads: "next",
        shadow: false,
        nextReadPercent: 100,
      };
  }
}

/**
 * 32-bit FNV-1a of a key, mapped to a bucket 0..99. Deterministic across processes and restarts,
 * so a given key is always served by the same side at a given ramp percentage, and a key served
 * from next at P % stays on next at every higher percentage.
 */
export function rampBucket(key: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % 100;
}

/** The side that serves a read of `key` under `routing`. */
export function readSideFor(routing: CutoverRouting, key: string | undefined): CutoverSide {
  if (routing.reads !== "split") return routing.reads;
  // A read without a key (e.g. a listing) cannot be split stably; it stays on the authoritative side.
  if (key === undefined) return routing.writes[0]!;
  return rampBucket(key) < routing.nextReadPercent ? "next" : "legacy";
}

export interface PhaseTransitionCheck {
  allowed: boolean;
  /** "forward", "rollback", "same", or "skip" (refused unless forced). */
  kind: "forward" | "rollback" | "same" | "skip";
  /** Why a transition is refused, or what to know about it. */
  reason: string;
}

/**
 * Whether `from -> to` is one step forward or one step back. Ramp steps may go up or down freely
 * within the ramp; entering ramp from shadow or leaving to next-primary is one step. Nothing goes
 * back from next-only: legacy has received no writes since, so reading it again would serve stale data.
 */
export function checkPhaseTransition(fromText: string, toText: string): PhaseTransitionCheck {
  const from = parseCutoverPhase(fromText);
  const to = parseCutoverPhase(toText);
  const a = rank(from);
  const b = rank(to);
  if (a === b && (from.kind !== "ramp" || from.percent === to.percent))
    return {
      allowed: true,
      kind: "same",
      reason: `already in ${formatCutoverPhase(to)}`,
    };
  if (a === b) {
    return {
      allowed: true,
      kind: to.percent > from.percent ? "forward" : "rollback",
      reason: `ramp from ${from.percent} % to ${to.percent} % of reads on next`,
    };
  }
  if (from.kind === "next-only") {
    return {
      allowed: false,
      kind: "skip",
      reason:
        "next-only is final: legacy has received no writes since it was entered, so moving back would serve stale data; backfill legacy from next first, then use --force",
    };
  }
  if (b === a + 1) return { allowed: true, kind: "forward", reason: `one step forward` };
  if (b === a - 1)
    return {
      allowed: true,
      kind: "rollback",
      reason: `one step back (rollback)`,
    };
  const skipped = CUTOVER_PHASES.slice(Math.min(a, b) + 1, Math.max(a, b)).join(", ");
  return {
    allowed: false,
    kind: "skip",
    reason:
      b > a
        ? `${formatCutoverPhase(from)} -> ${formatCutoverPhase(to)} skips ${skipped}; each phase proves the next one safe (dual-write fills next, shadow compares reads, ramp serves some reads from next), so move one phase at a time or pass --force`
        : `${formatCutoverPhase(from)} -> ${formatCutoverPhase(to)} goes back more than one phase (past ${skipped}); roll back one phase at a time or pass --force`,
  };
}

/** The phase one step forward (ramp: next step of 10 %, 50 %, 100 %). */
export function nextPhaseOf(text: string): CutoverPhase | undefined {
  const phase = parseCutoverPhase(text);
  if (phase.kind === "ramp") {
    const step = [10, 50, 100].find((p) => p > phase.percent);
    return step === undefined ? "next-primary" : `ramp:${step}`;
  }
  if (phase.kind === "shadow") return "ramp:10";
  const i = rank(phase);
  return i + 1 < CUTOVER_PHASES.length ? (CUTOVER_PHASES[i + 1] as CutoverPhase) : undefined;
}

/** The rollback target: one phase back (from a ramp: shadow; from next-primary: ramp:100). */
export function previousPhaseOf(text: string): CutoverPhase | undefined {
  const phase = parseCutoverPhase(text);
  switch (phase.kind) {
    case "legacy-only":
    case "next-only":
      return undefined;
    case "next-primary":
      return "ramp:100";
    case "ramp":
      return "shadow";
    default:
      return CUTOVER_PHASES[rank(phase) - 1] as CutoverPhase;
  }
}

/** The environment variable that overrides a cutover's phase: PGSHIFT_CUTOVER_<NAME>_PHASE. */
export function phaseOverrideVariable(name: string): string {
  return `PGSHIFT_CUTOVER_${name.toUpperCase().replace(/[^A-Z0-9]/g, "_")}_PHASE`;
}

/** Cutover names: what appears in env variable names and metric labels stays simple. */
export function validateCutoverName(name: string): string {
  if (!/^[A-Za-z][A-Za-z0-9_-]{0,62}$/.test(name))
    throw new UsageError(
      `invalid cutover name "${name}": use a letter followed by letters, digits, '-' or '_' (at most 63)`,
      { name },
    );
  return name;
}

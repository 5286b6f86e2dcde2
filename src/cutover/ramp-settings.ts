import { parseDuration } from "../duration.ts";
import { UsageError } from "../errors.ts";
import { type CutoverPhase, formatCutoverPhase, parseCutoverPhase } from "./phases.ts";

/** Limits of a healthy window; crossing any of them rolls the ramp back. */
export interface RampThresholds {
  /** Failed calls / calls over both sides (default 0.01, i.e. 1 %). */
  maxErrorRate: number;
  /** Mismatched shadow comparisons / compared (default 0.001). */
  maxMismatchRate: number;
  /** p95 of served calls on either side, in ms (default 500). */
  maxP95Ms: number;
  /** Pending repair-ledger entries tolerated (default 0). */
  maxPendingRepairs: number;
  /** Calls a window needs before it is judged; fewer and the ramp holds (default 1000). */
  minCalls: number;
}

export const DEFAULT_RAMP_THRESHOLDS: RampThresholds = {
  maxErrorRate: 0.01,
  maxMismatchRate: 0.001,
  maxP95Ms: 500,
  maxPendingRepairs: 0,
  minCalls: 1000,
};

/** The ramp's settings once options, environment and defaults are merged. */
export interface RampSettings {
  steps: CutoverPhase[];
  everyMs: number;
  thresholds: RampThresholds;
  rollbackTo: CutoverPhase;
}

export interface RampSettingsInput {
  /** Phases to walk, or a percent step (10: ramp:10, ramp:20 ... ramp:100, then next-primary). Default 10. */
  steps?: readonly (CutoverPhase | string)[] | number;
  /** Time each step must stay healthy before the next: ms or a duration ("24h", "30m", "90s"). Default 24h. */
  every?: number | string;
  healthy?: Partial<RampThresholds>;
  /** Where a crossed threshold sends the cutover (default shadow: every read on legacy again). */
  onUnhealthy?: { rollbackTo?: CutoverPhase | string };
}

export { parseDuration };

/** The phases of a ramp in `step` percent increments, ending in next-primary. */
export function rampStepsOf(step: number): CutoverPhase[] {
  if (!Number.isInteger(step) || step < 1 || step > 100)
    throw new UsageError(`ramp step ${step}: expected a whole percentage between 1 and 100`);
  const steps: CutoverPhase[] = [];
  for (let p = step; p < 100; p += step) steps.push(`ramp:${p}`);
  steps.push("ramp:100", "next-primary");
  return steps;
}

/** The environment variable of one ramp setting: PGSHIFT_CUTOVER_<NAME>_RAMP_<SETTING>. */
export function rampVariable(name: string, setting: string): string {
  return `PGSHIFT_CUTOVER_${name.toUpperCase().replace(/[^A-Z0-9]/g, "_")}_RAMP_${setting}`;
}

const THRESHOLD_VARIABLES: Record<keyof RampThresholds, string> = {
  maxErrorRate: "MAX_ERROR_RATE",
  maxMismatchRate: "MAX_MISMATCH_RATE",
  maxP95Ms: "MAX_P95_MS",
  maxPendingRepairs: "MAX_PENDING_REPAIRS",
  minCalls: "MIN_CALLS",
};

/**
 * Options > environment (PGSHIFT_CUTOVER_<NAME>_RAMP_EVERY, _STEP, _ROLLBACK_TO, _MAX_ERROR_RATE,
 * _MAX_MISMATCH_RATE, _MAX_P95_MS, _MAX_PENDING_REPAIRS, _MIN_CALLS) > defaults. Every invalid value is
 * reported in one error.
 */
export function resolveRampSettings(
  name: string,
  input: RampSettingsInput,
  env: NodeJS.ProcessEnv = process.env,
): RampSettings {
  const problems: string[] = [];
  const attempt = <V>(fn: () => V, fallback: V): V => {
    try {
      return fn();
    } catch (error) {
      problems.push((error as Error).message);
      return fallback;
    }
  };
  const fromEnv = (setting: string) => {
    const variable = rampVariable(name, setting);
    const text = env[variable];
    return text === undefined || text === "" ? undefined : { variable, text };
  };
  const thresholds = { ...DEFAULT_RAMP_THRESHOLDS };
  for (const [key, setting] of Object.entries(THRESHOLD_VARIABLES) as [keyof RampThresholds, string][]) {
    const given = input.healthy?.[key];
    const e = fromEnv(setting);
    const value = given ?? (e ? Number(e.text) : undefined);
    if (value === undefined) continue;
    if (!Number.isFinite(value) || value < 0) {
      problems.push(`${e && given === undefined ? `${e.variable}=${e.text}` : key}: expected a number >= 0`);
      continue;
    }
    thresholds[key] = value;
  }
  const everyEnv = fromEnv("EVERY");
  const everyMs = attempt(
    () =>
      parseDuration(
        input.every ?? everyEnv?.text ?? "24h",
        input.every === undefined && everyEnv ? everyEnv.variable : "every",
      ),
    86_400_000,
  );
  const stepEnv = fromEnv("STEP");
  const steps = attempt((): CutoverPhase[] => {
    const given = input.steps ?? (stepEnv ? Number(stepEnv.text) : 10);
    if (typeof given === "number") return rampStepsOf(given);
    if (given.length === 0) throw new UsageError("ramp steps: expected at least one phase");
    return given.map((p) => formatCutoverPhase(parseCutoverPhase(p)));
  }, rampStepsOf(10));
  const rollbackEnv = fromEnv("ROLLBACK_TO");
  const rollbackTo = attempt(
    () =>
      formatCutoverPhase(parseCutoverPhase(input.onUnhealthy?.rollbackTo ?? rollbackEnv?.text ?? "shadow")),
    "shadow" as CutoverPhase,
  );
  if (problems.length > 0)
    throw new UsageError(`cutover ${name}: invalid ramp settings: ${problems.join("; ")}`, { problems });
  return { steps, everyMs, thresholds, rollbackTo };
}

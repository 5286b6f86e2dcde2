/**
 * Finds a phase's duration (in ms) in a pgshift JSON result, whatever nesting the command uses:
 * `{phases: {data: {durationMs}}}`, `{phases: [{name: "data", ms}]}`, `{timings: {dataMs}}`, ...
 */
const MS_KEYS = ["durationMs", "ms", "elapsedMs", "wallMs", "timeMs"];
const S_KEYS = ["seconds", "durationS", "elapsedS", "s"];

function asMs(value: unknown, key = "", bareSeconds = false): number | undefined {
  if (typeof value === "number" && Number.isFinite(value)) {
    if (/(Ms|_ms)$/.test(key)) return value;
    if (/(seconds|Seconds|_s|S)$/.test(key)) return value * 1000;
    return bareSeconds ? value * 1000 : value;
  }
  if (value && typeof value === "object" && !Array.isArray(value)) {
    const record = value as Record<string, unknown>;
    for (const k of MS_KEYS) if (typeof record[k] === "number") return record[k] as number;
    for (const k of S_KEYS) if (typeof record[k] === "number") return (record[k] as number) * 1000;
  }
  return undefined;
}

function namesFor(phase: string): RegExp {
  return new RegExp(`^${phase}(Ms|_ms|Seconds|_s|S)?$`, "i");
}

export function findPhaseMs(
  report: unknown,
  phase: string,
  depth = 0,
  bareSeconds?: boolean,
): number | undefined {
  if (!report || typeof report !== "object" || depth > 6) return undefined;
  // pgshift's import reports give `seconds` for the whole run and bare phase numbers in the same unit.
  const seconds = bareSeconds ?? typeof (report as Record<string, unknown>).seconds === "number";
  const pattern = namesFor(phase);
  if (Array.isArray(report)) {
    for (const item of report) {
      if (
        item &&
        typeof item === "object" &&
        pattern.test(String((item as Record<string, unknown>).name ?? ""))
      ) {
        const ms = asMs(item);
        if (ms !== undefined) return ms;
      }
    }
    return undefined;
  }
  const record = report as Record<string, unknown>;
  for (const container of ["phases", "timings", "timing", "durations", "phaseTimings"]) {
    const inner = record[container];
    if (!inner || typeof inner !== "object") continue;
    if (Array.isArray(inner)) {
      const found = findPhaseMs(inner, phase, depth + 1, seconds);
      if (found !== undefined) return found;
      continue;
    }
    for (const [key, value] of Object.entries(inner as Record<string, unknown>)) {
      if (pattern.test(key)) {
        const ms = asMs(value, key, seconds);
        if (ms !== undefined) return ms;
      }
    }
  }
  for (const value of Object.values(record)) {
    if (value && typeof value === "object") {
      const found = findPhaseMs(value, phase, depth + 1, seconds);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

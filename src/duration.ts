import { UsageError } from "./errors.ts";

/** "24h", "30m", "90s", "500ms", "2d" or a number of ms. */
export function parseDuration(value: number | string, what = "duration"): number {
  if (typeof value === "number") {
    if (Number.isFinite(value) && value > 0) return value;
  } else {
    const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(value);
    if (match) {
      const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] ?? "ms"]!;
      const ms = Number(match[1]) * unit;
      if (ms > 0) return ms;
    }
  }
  throw new UsageError(`${what} "${value}": expected a positive duration such as 24h, 30m, 90s or 500ms`);
}

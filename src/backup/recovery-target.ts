import { UsageError } from "../errors.ts";

/**
 * Where recovery stops: the end of the archive (latest), a time (recovery_target_time) or a WAL
 * position (recovery_target_lsn). Both engines turn the same target into their own settings.
 */
export type RecoveryTarget =
  { kind: "latest" } | { kind: "time"; time: string } | { kind: "lsn"; lsn: string };

const LSN = /^[0-9A-F]{1,8}\/[0-9A-F]{1,8}$/i;

/** "16/B374D848" -> a byte position, for comparing LSNs. Throws UsageError for anything else. */
export function lsnPosition(lsn: string): bigint {
  if (!LSN.test(lsn.trim()))
    throw new UsageError(`"${lsn}" is not an LSN: write it as PostgreSQL prints it, e.g. 0/3000148`);
  const [high, low] = lsn.trim().split("/");
  return (BigInt(`0x${high}`) << 32n) + BigInt(`0x${low}`);
}

/** The LSN as PostgreSQL prints it (upper-case hex, no leading zeros). */
export function normalLsn(lsn: string): string {
  const p = lsnPosition(lsn);
  return `${(p >> 32n).toString(16).toUpperCase()}/${(p & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** The target from the two options a caller has; both at once is a usage error. */
export function recoveryTargetOf(options: { targetTime?: string; targetLsn?: string }): RecoveryTarget {
  if (options.targetTime !== undefined && options.targetLsn !== undefined)
    throw new UsageError("pass either a target time or a target LSN, not both");
  if (options.targetLsn !== undefined) return { kind: "lsn", lsn: normalLsn(options.targetLsn) };
  if (options.targetTime !== undefined) return { kind: "time", time: options.targetTime };
  return { kind: "latest" };
}

/** recovery_target_time rejects ISO's "T" and "Z": "2026-12-01T16:40:00.5Z" -> "2026-12-01 16:40:00.5+00". */
export function recoveryTimeText(iso: string): string {
  return iso
    .trim()
    .replace(/^(\d{4}-\d\d-\d\d)T/, "$1 ")
    .replace(/Z$/i, "+00")
    .replace(/'/g, "");
}

/** The target for a report or a message: "latest", the time, or "LSN 0/3000148". */
export function describeTarget(target: RecoveryTarget): string {
  return target.kind === "latest" ? "latest" : target.kind === "time" ? target.time : `LSN ${target.lsn}`;
}

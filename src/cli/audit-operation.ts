import { mkdir, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import type pg from "pg";
import type { Output } from "./output.ts";

/** Failures after which the server cannot take the event either (the command has said so already). */
const UNREACHABLE = /^(connection_|circuit_open$|interrupted$)/;

/** Writes a command's JSON report, making its folder; returns the exact text written (what the audit event hashes). */
export async function writeReport(path: string, report: unknown): Promise<string> {
  const text = `${JSON.stringify(report, jsonSafe, 2)}\n`;
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, text);
  return text;
}

function notRecorded(out: Output, action: string, error: unknown): void {
  out.notice(
    `warning: this ${action} was not recorded in the audit trail: ${error instanceof Error ? error.message : String(error)}`,
  );
}

function jsonSafe(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? value.toString() : value;
}

/**
 * Records one of pgshift's own operations (import, migrate, refresh, cutover phase change; restores:
 * auditRestore) in the target's audit trail, when it has one, with the sha256 of its report: the evidence
 * is in one place (21 CFR Part 11).
 * Nothing happens on a database without the trail, nor after a failure that lost the server. Failing to
 * record is said as a warning, never hidden; the operation's own exit code stands.
 */
export async function auditOperation(
  out: Output,
  pool: pg.Pool,
  event: { action: string; detail: Record<string, unknown>; report: string; errorCode?: string | undefined },
): Promise<void> {
  if (event.errorCode !== undefined && UNREACHABLE.test(event.errorCode)) return;
  try {
    const { recordAuditEvent } = await import("../audit/record-event.ts");
    await recordAuditEvent(pool, { action: event.action, detail: event.detail, report: event.report });
  } catch (error) {
    notRecorded(out, event.action, error);
  }
}

/**
 * A restore: a physical one brought every database of the restored server back, and each one with the
 * trail records it; a logical one records in its new database (`databases`). auditOperation's rules
 * otherwise: a failure to record is a warning, the exit code stands.
 */
export async function auditRestore(
  out: Output,
  serverUrl: string,
  event: { detail: Record<string, unknown>; report: string },
  databases?: readonly string[],
): Promise<void> {
  try {
    const { recordClusterAuditEvent } = await import("../audit/record-event.ts");
    await recordClusterAuditEvent(serverUrl, { action: "restore", ...event }, databases ? { databases } : {});
  } catch (error) {
    notRecorded(out, "restore", error);
  }
}

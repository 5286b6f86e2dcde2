import { createHash } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import type pg from "pg";
import { type SigningKey, signReport } from "../verify/report.ts";

/** Where a refresh writes its report, and the key it is signed with (as verify signs its reports). */
export interface RefreshReportOptions {
  path: string;
  key?: SigningKey;
}

/** What a run recorded about its report (in the result and in pgshift.refresh_versions.report). */
export interface RefreshReportRecord {
  path: string;
  /** sha256 of the file's bytes, hex. */
  sha256: string;
  /** The signature's algorithm, or null when no key was given. */
  signed: "hmac-sha256" | "ed25519" | null;
}

/**
 * Writes the JSON report of a refresh (the run's result, signed over its canonical JSON when a key is
 * given: `pgshift verify-report` checks it) and records its path and digest with the version.
 */
export async function writeRefreshReport(
  pool: pg.Pool,
  options: RefreshReportOptions,
  body: { dataset: string; version: number } & Record<string, unknown>,
): Promise<RefreshReportRecord> {
  const report = { kind: "pgshift-refresh-report", finishedAt: new Date().toISOString(), ...body };
  const document = options.key ? signReport(report, options.key) : report;
  const text = `${JSON.stringify(document, null, 2)}\n`;
  const path = resolve(options.path);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, text);
  const record: RefreshReportRecord = {
    path,
    sha256: createHash("sha256").update(text).digest("hex"),
    signed: options.key?.algorithm ?? null,
  };
  await pool.query("update pgshift.refresh_versions set report = $3 where dataset = $1 and version = $2", [
    body.dataset,
    body.version,
    JSON.stringify(record),
  ]);
  return record;
}

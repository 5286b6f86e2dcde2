import { readFile } from "node:fs/promises";
import type pg from "pg";
import {
  type CheckingKey,
  checkReportSignature,
  type ReportSignature,
  type SigningKey,
  signReport,
} from "../verify/report.ts";
import { AuditAnchorError } from "./audit-errors.ts";
import { sealAudit } from "./seal-audit.ts";

/** A chain head exported out of the database: later, verify proves the chain still contains it. */
export interface AuditAnchor {
  kind: "pgshift-audit-anchor";
  database: string;
  /** pg_control_system().system_identifier: which cluster the anchor came from. */
  systemIdentifier: string;
  seq: number;
  hash: string;
  horizon: string;
  createdAt: string;
  signature?: ReportSignature;
}

/** Seals, then returns the chain head as an anchor, signed when a key is given (Ed25519 or HMAC, as verify reports). */
export async function createAuditAnchor(pool: pg.Pool, key?: SigningKey): Promise<AuditAnchor> {
  const head = await sealAudit(pool);
  const { rows } = await pool.query(
    "select current_database() as database, (select system_identifier::text from pg_control_system()) as system_identifier",
  );
  const anchor: AuditAnchor = {
    kind: "pgshift-audit-anchor",
    database: rows[0].database,
    systemIdentifier: rows[0].system_identifier,
    seq: head.headSeq,
    hash: head.headHash,
    horizon: head.horizon,
    createdAt: new Date().toISOString(),
  };
  return key ? signReport(anchor, key) : anchor;
}

/** Reads an anchor file; with a key, its signature must check out. */
export async function readAuditAnchor(path: string, key?: CheckingKey): Promise<AuditAnchor> {
  let anchor: AuditAnchor;
  try {
    anchor = JSON.parse(await readFile(path, "utf8"));
  } catch (error) {
    throw new AuditAnchorError(`cannot read anchor ${path}: ${(error as Error).message}`, { path });
  }
  if (
    anchor?.kind !== "pgshift-audit-anchor" ||
    typeof anchor.hash !== "string" ||
    !Number.isInteger(anchor.seq)
  )
    throw new AuditAnchorError(`${path} is not a pgshift audit anchor`, { path });
  if (key) {
    const check = checkReportSignature(anchor as unknown as Record<string, unknown>, key);
    if (!check.valid) throw new AuditAnchorError(`anchor ${path}: ${check.reason}`, { path });
  }
  return anchor;
}

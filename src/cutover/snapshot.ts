import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { once } from "node:events";
import { createInterface } from "node:readline";
import type pg from "pg";
import { PgshiftError } from "../errors.ts";
import { canonicalJson } from "./canonical-json.ts";
import { ensureCutoverSchema } from "./cutover-state.ts";
import type { CutoverPhase } from "./phases.ts";
import type { CutoverKeyAccess } from "./repair-ledger.ts";

/** A final snapshot of the legacy store, as recorded in pgshift.cutover_snapshots. */
export interface CutoverSnapshot {
  id: number;
  cutover: string;
  path: string;
  records: number;
  bytes: number;
  /** sha256 of the file's bytes, hex. */
  sha256: string;
  phase: CutoverPhase;
  startedAt: string;
  finishedAt: string;
}

export interface CutoverRestoreResult {
  path: string;
  records: number;
  sha256: string;
  /** The recorded snapshot the file matched. */
  snapshotId: number;
}

export class SnapshotChecksumError extends PgshiftError {
  constructor(path: string, sha256: string, known: string[]) {
    super(
      "snapshot_checksum_mismatch",
      `snapshot ${path} (sha256 ${sha256}) matches no snapshot recorded for this cutover (recorded for this path: ${known.length ? known.join(", ") : "none"}); the file changed or is not a snapshot of this cutover, refusing to restore from it`,
      { details: { path, sha256, known } },
    );
  }
}

function toSnapshot(r: Record<string, unknown>): CutoverSnapshot {
  return {
    id: Number(r.id),
    cutover: r.cutover as string,
    path: r.path as string,
    records: Number(r.records),
    bytes: Number(r.bytes),
    sha256: r.sha256 as string,
    phase: r.phase as CutoverPhase,
    startedAt: new Date(r.started_at as string).toISOString(),
    finishedAt: new Date(r.finished_at as string).toISOString(),
  };
}

/**
 * Streams every key of the legacy store to `to` as NDJSON, one `{"key":...,"value":...}` line per record
 * in canonical JSON (sorted members, so one store always gives the same bytes), in the order keys()
 * yields them, with backpressure; records the count and sha256 once the file is closed.
 */
export async function takeSnapshot<T>(options: {
  pool: pg.Pool;
  cutover: string;
  phase: CutoverPhase;
  legacy: T;
  access: CutoverKeyAccess<T>;
  to: string;
}): Promise<CutoverSnapshot> {
  await ensureCutoverSchema(options.pool);
  const { rows: clock } = await options.pool.query("select now() as now");
  const startedAt: Date = clock[0].now;
  const hash = createHash("sha256");
  const out = createWriteStream(options.to, { flags: "w" });
  const closed = once(out, "close");
  let records = 0;
  let bytes = 0;
  try {
    for await (const key of options.access.keys!(options.legacy)) {
      const value = await options.access.read(options.legacy, key);
      if (value === undefined || value === null) continue;
      const line = `${canonicalJson({ key, value })}\n`;
      const chunk = Buffer.from(line, "utf8");
      hash.update(chunk);
      bytes += chunk.length;
      records++;
      if (!out.write(chunk)) await once(out, "drain");
    }
  } catch (error) {
    out.destroy();
    throw error;
  }
  out.end();
  await closed;
  const { rows } = await options.pool.query(
    `insert into pgshift.cutover_snapshots (cutover, path, records, bytes, sha256, phase, started_at)
     values ($1, $2, $3, $4, $5, $6, $7) returning *`,
    [options.cutover, options.to, records, bytes, hash.digest("hex"), options.phase, startedAt],
  );
  return toSnapshot(rows[0]);
}

export async function listSnapshots(pool: pg.Pool, cutover: string): Promise<CutoverSnapshot[]> {
  await ensureCutoverSchema(pool);
  const { rows } = await pool.query(
    "select * from pgshift.cutover_snapshots where cutover = $1 order by id",
    [cutover],
  );
  return rows.map(toSnapshot);
}

async function fileSha256(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/**
 * The rollback after next-only: checks the file against a recorded snapshot's sha256 (refusing a file
 * that changed), then writes each record into the legacy store in file order.
 */
export async function restoreLegacyFromSnapshot<T>(options: {
  pool: pg.Pool;
  cutover: string;
  legacy: T;
  access: CutoverKeyAccess<T>;
  from: string;
}): Promise<CutoverRestoreResult> {
  const sha256 = await fileSha256(options.from);
  const snapshots = await listSnapshots(options.pool, options.cutover);
  const match = snapshots.find((s) => s.sha256 === sha256);
  if (!match)
    throw new SnapshotChecksumError(
      options.from,
      sha256,
      snapshots.filter((s) => s.path === options.from).map((s) => s.sha256),
    );
  let records = 0;
  const lines = createInterface({ input: createReadStream(options.from, "utf8"), crlfDelay: Infinity });
  for await (const line of lines) {
    if (line === "") continue;
    const { key, value } = JSON.parse(line) as { key: string; value: unknown };
    await options.access.write(options.legacy, key, value);
    records++;
  }
  return { path: options.from, records, sha256, snapshotId: match.id };
}

import type pg from "pg";
import { targetOf } from "../pg/pool.ts";
import { PGSHIFT_VERSION } from "../version.ts";
import type { SourceFingerprint } from "./source-reader.ts";
import type { TableStatus, TableVerification } from "./types.ts";

/** The pgshift version that produced a result (goes into reports). */
export { PGSHIFT_VERSION };

export interface TargetDescription {
  /** Connection URL without password. */
  url: string;
  host: string;
  port: number;
  database: string;
  user: string;
  serverVersion: string;
  /** Target schemas the verified tables live in. */
  schemas: string[];
}

/** What `verify` returns, what the CLI renders and what the JSON report holds. */
export interface VerifyResult {
  kind: "pgshift-verification";
  formatVersion: 1;
  /** identical only when every table is identical. */
  status: TableStatus;
  identical: boolean;
  pgshiftVersion: string;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  source: SourceFingerprint & { spec: string };
  target: TargetDescription;
  /** Where the table and column mapping came from: the import's stored run, or planned again from the source. */
  plan: { from: "import" | "import-run" | "rebuilt"; runId?: string };
  /** Fraction compared when sampling; null for a full verification. */
  sample: number | null;
  summary: {
    tables: number;
    identical: number;
    mismatched: number;
    errors: number;
    sourceRows: number;
    targetRows: number;
    missingRows: number;
    extraRows: number;
    changedRows: number;
    quarantinedRows: number;
  };
  tables: TableVerification[];
}

export async function describeVerifiedTarget(pool: pg.Pool, schemas: string[]): Promise<TargetDescription> {
  const identity = targetOf(pool);
  const { rows } = await pool.query(
    "select current_setting('server_version') as version, current_database() as database, current_user as usr",
  );
  return {
    url: identity.url,
    host: identity.host,
    port: identity.port,
    database: rows[0].database,
    user: rows[0].usr,
    serverVersion: rows[0].version,
    schemas: [...new Set(schemas)].sort(),
  };
}

export function buildResult(options: {
  started: Date;
  source: SourceFingerprint & { spec: string };
  target: TargetDescription;
  sample: number | undefined;
  plan: VerifyResult["plan"];
  tables: TableVerification[];
}): VerifyResult {
  const finished = new Date();
  const tables = options.tables;
  const count = (status: TableStatus) => tables.filter((t) => t.status === status).length;
  const sum = (pick: (t: TableVerification) => number) => tables.reduce((n, t) => n + pick(t), 0);
  const errors = count("error");
  const mismatched = count("mismatch");
  const status: TableStatus = errors > 0 ? "error" : mismatched > 0 ? "mismatch" : "identical";
  return {
    kind: "pgshift-verification",
    formatVersion: 1,
    status,
    identical: status === "identical",
    pgshiftVersion: PGSHIFT_VERSION,
    startedAt: options.started.toISOString(),
    finishedAt: finished.toISOString(),
    durationMs: finished.getTime() - options.started.getTime(),
    source: options.source,
    target: options.target,
    plan: options.plan,
    sample: options.sample ?? null,
    summary: {
      tables: tables.length,
      identical: count("identical"),
      mismatched,
      errors,
      sourceRows: sum((t) => t.sourceRows),
      targetRows: sum((t) => t.targetRows),
      missingRows: sum((t) => t.missingRows),
      extraRows: sum((t) => t.extraRows),
      changedRows: sum((t) => t.changedRows),
      quarantinedRows: sum((t) => t.quarantinedRows),
    },
    tables,
  };
}

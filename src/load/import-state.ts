import type pg from "pg";
import { ExitCode, PgshiftError } from "../errors.ts";
import type { InternalSchemaPart } from "../pg/internal-schema.ts";
import type { NamingPolicy } from "../schema/naming.ts";
import type { ImportPlan } from "../schema/plan.ts";

/**
 * Where an import keeps its progress in the target, in `pgshift`: one row per run (with its plan, so
 * that `--resume` continues with exactly the same types and chunk bounds), one row per chunk (its
 * checkpoint commits in the same transaction as the chunk's rows: exactly-once), one row per
 * post-data step (index, constraint, view...), each committed with the DDL it records.
 */
export const importPart: InternalSchemaPart = {
  name: "import",
  steps: [
    `create table pgshift.import_runs (
       run_id text primary key,
       source text not null,
       source_path text not null,
       source_size bigint,
       source_mtime_ms double precision,
       target_schema text not null,
       status text not null check (status in ('running', 'failed', 'completed')),
       phase text not null,
       plan jsonb not null,
       options jsonb not null,
       started_at timestamptz not null default now(),
       updated_at timestamptz not null default now(),
       finished_at timestamptz,
       error text
     );
     create table pgshift.import_chunks (
       run_id text not null references pgshift.import_runs on delete cascade,
       source_table text not null,
       target_table text not null,
       chunk integer not null,
       after_rowid text,
       through_rowid text,
       status text not null default 'pending' check (status in ('pending', 'done')),
       rows_read bigint,
       rows_loaded bigint,
       rows_quarantined bigint,
       conversions jsonb,
       seconds double precision,
       committed_at timestamptz,
       primary key (run_id, source_table, chunk)
     );
     create table pgshift.import_steps (
       run_id text not null references pgshift.import_runs on delete cascade,
       step text not null,
       status text not null check (status in ('done', 'failed', 'skipped')),
       detail text,
       done_at timestamptz not null default now(),
       primary key (run_id, step)
     )`,
    // The transaction of each chunk (its 32-bit xid, as the rows' xmin shows it), so that verification
    // can tell the rows an --if-exists append run added from the rows the table had before.
    `alter table pgshift.import_chunks add column xid bigint`,
  ],
};

export interface ChunkRecord {
  sourceTable: string;
  chunk: number;
  status: "pending" | "done";
  rowsRead: number;
  rowsLoaded: number;
  rowsQuarantined: number;
  conversions: Record<string, number>;
  seconds: number;
}

export async function readChunks(client: pg.ClientBase, runId: string): Promise<ChunkRecord[]> {
  const { rows } = await client.query(
    `select source_table, chunk, status, rows_read, rows_loaded, rows_quarantined, conversions, seconds
       from pgshift.import_chunks where run_id = $1 order by source_table, chunk`,
    [runId],
  );
  return rows.map((r) => ({
    sourceTable: r.source_table,
    chunk: r.chunk,
    status: r.status,
    rowsRead: Number(r.rows_read ?? 0),
    rowsLoaded: Number(r.rows_loaded ?? 0),
    rowsQuarantined: Number(r.rows_quarantined ?? 0),
    conversions: r.conversions ?? {},
    seconds: r.seconds ?? 0,
  }));
}

export interface StepRecord {
  step: string;
  status: "done" | "failed" | "skipped";
  detail: string | null;
}

export async function readSteps(client: pg.ClientBase, runId: string): Promise<Map<string, StepRecord>> {
  const { rows } = await client.query(
    "select step, status, detail from pgshift.import_steps where run_id = $1",
    [runId],
  );
  return new Map(rows.map((r) => [r.step, { step: r.step, status: r.status, detail: r.detail }]));
}

/** Records a step; call inside the transaction that did the step's work. */
export async function recordStep(
  client: pg.ClientBase,
  runId: string,
  step: string,
  status: StepRecord["status"],
  detail?: string,
): Promise<void> {
  await client.query(
    `insert into pgshift.import_steps (run_id, step, status, detail) values ($1, $2, $3, $4)
     on conflict (run_id, step) do update set status = excluded.status, detail = excluded.detail, done_at = now()`,
    [runId, step, status, detail ?? null],
  );
}

export async function setRunPhase(
  client: pg.ClientBase,
  runId: string,
  phase: string,
  status: "running" | "failed" | "completed" = "running",
  error?: string,
): Promise<void> {
  await client.query(
    `update pgshift.import_runs set phase = $2, status = $3, error = $4, updated_at = now(),
       finished_at = case when $3 = 'running' then null else now() end
     where run_id = $1`,
    [runId, phase, status, error ?? null],
  );
}

/** The options a resumed run keeps from its start; a resume that asks for others is refused. */
export interface ResumeRequest {
  naming?: NamingPolicy | undefined;
  tables?: readonly string[] | undefined;
  exclude?: readonly string[] | undefined;
}

/**
 * `--resume` asked for other names or other tables than the run it resumes was planned with: resuming
 * would load into tables the user did not ask for, or leave out ones they did. Exit code 2.
 */
export class ResumeOptionsError extends PgshiftError {
  constructor(runId: string, stored: string, asked: string) {
    super(
      "resume_options_differ",
      `run ${runId} was started with ${stored}; this command asks for ${asked}. A resume continues the stored plan: repeat its options, or leave them out`,
      { exitCode: ExitCode.usage, details: { runId, stored, asked } },
    );
  }
}

/** Throws ResumeOptionsError when `requested` differs from what the stored `plan` was built with. */
export function assertResumeMatches(runId: string, plan: ImportPlan, requested: ResumeRequest): void {
  const planned = plan.tables.map((t) => t.sourceName);
  const lower = (names: readonly string[]) => [...new Set(names.map((n) => n.toLowerCase()))].sort();
  const namingDiffers = requested.naming !== undefined && requested.naming !== plan.naming;
  const tablesDiffer =
    (requested.tables?.length ? lower(requested.tables).join("\0") !== lower(planned).join("\0") : false) ||
    (requested.exclude ?? []).some((name) => lower(planned).includes(name.toLowerCase()));
  if (!namingDiffers && !tablesDiffer) return;
  const stored = `--naming ${plan.naming} --tables ${planned.join(",")}`;
  const asked = [
    requested.naming !== undefined ? `--naming ${requested.naming}` : "",
    requested.tables?.length ? `--tables ${requested.tables.join(",")}` : "",
    requested.exclude?.length ? `--exclude ${requested.exclude.join(",")}` : "",
  ]
    .filter(Boolean)
    .join(" ");
  throw new ResumeOptionsError(runId, stored, asked);
}

import type { InternalSchemaPart } from "../pg/internal-schema.ts";

/** The NOTIFY channel on which phase changes are announced; the payload is the cutover name. */
export const CUTOVER_CHANNEL = "pgshift_cutover";

/**
 * Cutover state in the `pgshift` schema: the phase every instance obeys, its history, the repair
 * ledger, backfill checkpoints, verifier results and what each running instance last reported.
 */
export const cutoverPart: InternalSchemaPart = {
  name: "cutover",
  steps: [
    `create table pgshift.cutovers (
       name text primary key,
       phase text not null,
       changed_at timestamptz not null default now(),
       changed_by text not null default current_user,
       reason text,
       forced boolean not null default false,
       created_at timestamptz not null default now()
     );
     create table pgshift.cutover_history (
       id bigint generated always as identity primary key,
       cutover text not null references pgshift.cutovers (name) on delete cascade,
       from_phase text,
       to_phase text not null,
       kind text not null,
       forced boolean not null default false,
       reason text,
       actor text not null default current_user,
       at timestamptz not null default now()
     );
     create index cutover_history_idx on pgshift.cutover_history (cutover, id);
     create table pgshift.cutover_repairs (
       id bigint generated always as identity primary key,
       cutover text not null,
       side text not null check (side in ('legacy', 'next')),
       method text not null,
       args jsonb not null,
       key text,
       phase text not null,
       error text not null,
       attempts integer not null default 0,
       status text not null default 'pending' check (status in ('pending', 'repaired')),
       last_error text,
       created_at timestamptz not null default now(),
       updated_at timestamptz not null default now(),
       repaired_at timestamptz
     );
     create index cutover_repairs_pending_idx on pgshift.cutover_repairs (cutover, side, id) where status = 'pending';
     create table pgshift.cutover_backfills (
       cutover text not null,
       resume_key text not null,
       last_key text,
       rows_done bigint not null default 0,
       batches integer not null default 0,
       status text not null default 'running' check (status in ('running', 'finished')),
       started_at timestamptz not null default now(),
       updated_at timestamptz not null default now(),
       finished_at timestamptz,
       primary key (cutover, resume_key)
     );
     create table pgshift.cutover_verifications (
       id bigint generated always as identity primary key,
       cutover text not null,
       mode text not null,
       phase text not null,
       keys_checked bigint not null,
       matched bigint not null,
       mismatched bigint not null,
       missing_in_next bigint not null,
       missing_in_legacy bigint not null,
       errors bigint not null,
       repaired bigint not null default 0,
       transient bigint not null default 0,
       samples jsonb not null,
       started_at timestamptz not null,
       finished_at timestamptz not null default now()
     );
     create index cutover_verifications_idx on pgshift.cutover_verifications (cutover, id);
     create table pgshift.cutover_instances (
       instance_id text not null,
       cutover text not null,
       phase text not null,
       phase_source text not null,
       metrics jsonb not null,
       host text not null,
       pid integer not null,
       started_at timestamptz not null,
       reported_at timestamptz not null default now(),
       closed_at timestamptz,
       primary key (cutover, instance_id)
     )`,
    // v2: health figures per instance and window (the ramp policy's input), the ramp policy's state,
    // and final snapshots of the legacy store. Times the policy compares are the reporters' clock in
    // epoch milliseconds, so a test's injected clock and the policy's agree.
    `alter table pgshift.cutover_history add column figures jsonb;
     create table pgshift.cutover_health (
       id bigint generated always as identity primary key,
       cutover text not null,
       instance_id text not null,
       window_start_ms bigint not null,
       window_end_ms bigint not null,
       calls bigint not null,
       legacy_calls bigint not null,
       next_calls bigint not null,
       legacy_errors bigint not null,
       next_errors bigint not null,
       shadow_compared bigint not null,
       shadow_mismatched bigint not null,
       legacy_p95_ms double precision,
       next_p95_ms double precision,
       pending_repairs bigint not null,
       legacy_writes bigint not null,
       last_legacy_write_at timestamptz,
       reported_at timestamptz not null default now()
     );
     create index cutover_health_idx on pgshift.cutover_health (cutover, window_end_ms);
     create table pgshift.cutover_ramps (
       cutover text primary key references pgshift.cutovers (name) on delete cascade,
       steps jsonb not null,
       every_ms bigint not null,
       thresholds jsonb not null,
       rollback_to text not null,
       phase text not null,
       step_started_ms bigint not null,
       state text not null default 'running' check (state in ('running', 'paused', 'finished')),
       paused_reason text,
       last_decision jsonb,
       updated_at timestamptz not null default now()
     );
     create table pgshift.cutover_snapshots (
       id bigint generated always as identity primary key,
       cutover text not null,
       path text not null,
       records bigint not null,
       bytes bigint not null,
       sha256 text not null,
       phase text not null,
       started_at timestamptz not null,
       finished_at timestamptz not null default now()
     );
     create index cutover_snapshots_idx on pgshift.cutover_snapshots (cutover, id)`,
  ],
};

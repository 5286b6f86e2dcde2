-- Runs of an AI agent over a document version: status, input, output, timings.
-- migrate:up
create table app.agent_executions (
  id uuid primary key default gen_random_uuid(),
  project_id uuid not null references app.projects (id) on delete cascade,
  document_version_id uuid references app.document_versions (id) on delete set null,
  agent text not null,
  status text not null default 'queued'
    check (status in ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
  input jsonb not null default '{}',
  output jsonb,
  error text,
  started_at timestamptz,
  finished_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  check (finished_at is null or started_at is not null and finished_at >= started_at)
);
create index agent_executions_project_id on app.agent_executions (project_id, created_at desc);

create trigger agent_executions_timestamps before insert or update on app.agent_executions
  for each row execute function app.maintain_timestamps();

-- migrate:down
drop table app.agent_executions;

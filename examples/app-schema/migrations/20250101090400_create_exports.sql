-- Exports of a project's documents to files.
-- migrate:up
create table app.exports (
  id uuid primary key default gen_random_uuid(),
  project_id uuid not null references app.projects (id) on delete cascade,
  requested_by uuid references app.users (id) on delete set null,
  format text not null check (format in ('pdf', 'docx', 'markdown')),
  status text not null default 'pending' check (status in ('pending', 'done', 'failed')),
  file_size bigint check (file_size >= 0),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create trigger exports_timestamps before insert or update on app.exports
  for each row execute function app.maintain_timestamps();

-- migrate:down
drop table app.exports;

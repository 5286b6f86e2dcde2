-- Documents of a project, and their immutable numbered versions.
-- migrate:up
create table app.documents (
  id uuid primary key default gen_random_uuid(),
  project_id uuid not null references app.projects (id) on delete cascade,
  title text not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index documents_project_id on app.documents (project_id);

create table app.document_versions (
  id uuid primary key default gen_random_uuid(),
  document_id uuid not null references app.documents (id) on delete cascade,
  version integer not null check (version > 0),
  body text not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (document_id, version)
);

create trigger documents_timestamps before insert or update on app.documents
  for each row execute function app.maintain_timestamps();
create trigger document_versions_timestamps before insert or update on app.document_versions
  for each row execute function app.maintain_timestamps();

-- migrate:down
drop table app.document_versions;
drop table app.documents;

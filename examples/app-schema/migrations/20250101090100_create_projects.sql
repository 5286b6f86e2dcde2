-- Projects belong to a user; a user sees only their own projects (row-level security).
-- migrate:up
create table app.projects (
  id uuid primary key default gen_random_uuid(),
  owner_id uuid not null references app.users (id) on delete cascade,
  name text not null check (length(name) between 1 and 200),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (owner_id, name)
);

create trigger projects_timestamps before insert or update on app.projects
  for each row execute function app.maintain_timestamps();

-- The application sets app.user_id for each request (set_config('app.user_id', $1, true)).
alter table app.projects enable row level security;

create policy projects_owner on app.projects
  using (owner_id = nullif(current_setting('app.user_id', true), '')::uuid)
  with check (owner_id = nullif(current_setting('app.user_id', true), '')::uuid);

-- migrate:down
drop table app.projects;

-- Notes of many tenants in one table; row-level security lets a transaction see only its tenant's rows.
-- migrate:up
create table notes (
  id bigint generated always as identity primary key,
  tenant_id text not null,
  body text not null,
  created_at timestamptz not null default now()
);

create index notes_tenant_id on notes (tenant_id);

alter table notes enable row level security;
-- FORCE binds the table's owner too; only superusers bypass it
alter table notes force row level security;

-- the application sets the tenant per transaction: select set_config('app.tenant', $1, true)
create policy tenant_isolation on notes
  using (tenant_id = nullif(current_setting('app.tenant', true), ''))
  with check (tenant_id = nullif(current_setting('app.tenant', true), ''));

-- migrate:down
drop table notes;

-- Users of the application, and the trigger function every table uses for its timestamps.
-- migrate:up
create schema app;

-- created_at is set once on insert and can never be changed; updated_at follows every update.
create function app.maintain_timestamps() returns trigger
language plpgsql as $$
begin
  if tg_op = 'INSERT' then
    new.created_at := now();
  else
    new.created_at := old.created_at;
  end if;
  new.updated_at := now();
  return new;
end
$$;

create table app.users (
  id uuid primary key default gen_random_uuid(),
  email text not null check (email like '%_@_%'),
  display_name text not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

-- One account per address, whatever the case.
create unique index users_email_key on app.users (lower(email));

create trigger users_timestamps before insert or update on app.users
  for each row execute function app.maintain_timestamps();

-- migrate:down
drop table app.users;
drop function app.maintain_timestamps();
drop schema app;

/**
 * Generates the SQLite benchmark database: an ORM-style (Prisma/Drizzle) application schema of 11
 * tables with foreign keys, unique, composite, partial and ordinary indexes, and realistic values:
 * text with quotes, commas, newlines and non-ASCII letters, integers, reals, millisecond-epoch
 * dates in DATETIME columns (as Prisma stores them), ISO dates, 0/1 booleans, blobs and JSON text.
 *
 *   node bin/run-ts.js bench/generate-sqlite.ts OUT.db [--rows 600000] [--seed 42]
 */
import { existsSync, rmSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import Database from "better-sqlite3";
import { FIRST_NAMES, LAST_NAMES, Random, WORDS } from "./lib/random.ts";

export const SQLITE_SCHEMA = `
create table organizations (
  id integer primary key autoincrement,
  name text not null,
  slug varchar(80) not null unique,
  plan text not null default 'free' check (plan in ('free', 'team', 'enterprise')),
  created_at datetime not null
);
create table users (
  id integer primary key autoincrement,
  email text not null unique,
  display_name text not null,
  is_active boolean not null default 1,
  settings json,
  avatar blob,
  created_at datetime not null,
  last_login_at datetime
);
create table memberships (
  id integer primary key,
  user_id integer not null references users(id) on delete cascade,
  organization_id integer not null references organizations(id) on delete cascade,
  role text not null default 'member',
  joined_at datetime not null,
  unique (user_id, organization_id)
);
create table projects (
  id integer primary key,
  organization_id integer not null references organizations(id) on delete cascade,
  name text not null,
  description text,
  budget real,
  metadata json,
  created_at datetime not null
);
create table tags (
  id integer primary key,
  name text not null unique
);
create table tasks (
  id integer primary key,
  project_id integer not null references projects(id) on delete cascade,
  assignee_id integer references users(id) on delete set null,
  title text not null,
  status text not null default 'todo',
  priority integer not null default 3,
  estimate_hours real,
  due_date datetime,
  labels json,
  created_at datetime not null,
  updated_at datetime not null
);
create table task_tags (
  task_id integer not null references tasks(id) on delete cascade,
  tag_id integer not null references tags(id) on delete cascade,
  primary key (task_id, tag_id)
) without rowid;
create table comments (
  id integer primary key,
  task_id integer not null references tasks(id) on delete cascade,
  author_id integer not null references users(id),
  body text not null,
  edited boolean not null default 0,
  created_at datetime not null
);
create table attachments (
  id integer primary key,
  task_id integer not null references tasks(id) on delete cascade,
  file_name text not null,
  mime_type text not null,
  size_bytes integer not null,
  content blob not null,
  sha256 char(64) not null
);
create table events (
  id integer primary key,
  user_id integer references users(id) on delete set null,
  kind text not null,
  payload json not null,
  occurred_at datetime not null
);
create table invoices (
  id integer primary key,
  organization_id integer not null references organizations(id),
  number text not null unique,
  amount_cents integer not null,
  currency char(3) not null default 'EUR',
  total real not null,
  issued_on date not null,
  paid_at datetime
);
create index memberships_organization on memberships(organization_id);
create index projects_organization on projects(organization_id);
create index tasks_project on tasks(project_id);
create index tasks_assignee on tasks(assignee_id);
create index tasks_status_priority on tasks(status, priority);
create index tasks_open_due on tasks(due_date) where status <> 'done';
create index task_tags_tag on task_tags(tag_id);
create index comments_task on comments(task_id);
create index comments_author on comments(author_id);
create index attachments_task on attachments(task_id);
create index events_user_time on events(user_id, occurred_at);
create index events_kind on events(kind);
create index invoices_organization on invoices(organization_id);
`;

/** Share of the requested rows each table gets; tags are a fixed 200 and invoices take the rest. */
const SHARES = {
  organizations: 0.005,
  users: 0.05,
  memberships: 0.05,
  projects: 0.02,
  tasks: 0.2,
  task_tags: 0.1,
  comments: 0.22,
  attachments: 0.025,
  events: 0.25,
} as const;

export const TAG_COUNT = 200;

export interface GeneratedSqlite {
  path: string;
  rows: number;
  tables: Record<string, number>;
  fileBytes: number;
  indexes: number;
  foreignKeys: number;
}

export interface GenerateSqliteOptions {
  path: string;
  rows: number;
  seed?: number;
  onProgress?: (table: string, rows: number) => void;
}

const BASE_TIME = Date.UTC(2019, 0, 1);
const SPAN_MS = 5 * 365 * 24 * 3600 * 1000;
const STATUSES = ["todo", "doing", "review", "done", "done", "done", "blocked"];
const ROLES = ["owner", "admin", "member", "member", "member", "viewer"];
const KINDS = ["login", "logout", "task.created", "task.updated", "comment.added", "export", "invoice.paid"];
const MIME = ["image/png", "application/pdf", "text/plain", "application/zip"];
const CURRENCIES = ["EUR", "USD", "GBP", "CHF"];

export function tableSizes(rows: number): Record<string, number> {
  const sizes: Record<string, number> = {};
  let used = 0;
  for (const [table, share] of Object.entries(SHARES)) {
    sizes[table] = Math.max(table === "organizations" ? 5 : 10, Math.round(rows * share));
    used += sizes[table]!;
  }
  sizes.tags = TAG_COUNT;
  sizes.invoices = Math.max(10, rows - used - TAG_COUNT);
  // Every user has exactly one membership and every task at most one tag row, which keeps the
  // composite keys unique without bookkeeping.
  sizes.memberships = Math.min(sizes.memberships!, sizes.users!);
  sizes.task_tags = Math.min(sizes.task_tags!, sizes.tasks!);
  return sizes;
}

function sentence(random: Random, min: number, max: number): string {
  const text = random.words(WORDS, random.int(min, max));
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function hex(random: Random, length: number): string {
  return random.bytes(length / 2).toString("hex");
}

export function generateSqlite(options: GenerateSqliteOptions): GeneratedSqlite {
  const path = resolve(options.path);
  for (const suffix of ["", "-wal", "-shm", "-journal"]) rmSync(`${path}${suffix}`, { force: true });
  const random = new Random(options.seed ?? 42);
  const sizes = tableSizes(options.rows);
  const db = new Database(path);
  db.pragma("journal_mode = off");
  db.pragma("synchronous = off");
  db.pragma("foreign_keys = off");
  db.exec(SQLITE_SCHEMA);
  const time = () => BASE_TIME + Math.floor(random.next() * SPAN_MS);

  const fill = (table: string, sql: string, make: (id: number) => unknown[]) => {
    const statement = db.prepare(sql);
    const count = sizes[table]!;
    const batch = 20_000;
    for (let start = 1; start <= count; start += batch) {
      const end = Math.min(count, start + batch - 1);
      db.transaction(() => {
        for (let id = start; id <= end; id++) statement.run(make(id));
      })();
      options.onProgress?.(table, end);
    }
  };

  fill("organizations", "insert into organizations values (?, ?, ?, ?, ?)", (id) => [
    id,
    `${random.pick(LAST_NAMES)} ${random.pick(["GmbH", "Inc.", "Ltd", "& Partners", "SA"])}`,
    `org-${id}`,
    random.pick(["free", "free", "team", "enterprise"]),
    time(),
  ]);
  const users = sizes.users!;
  fill("users", "insert into users values (?, ?, ?, ?, ?, ?, ?, ?)", (id) => {
    const first = random.pick(FIRST_NAMES);
    const last = random.pick(LAST_NAMES);
    return [
      id,
      `${first}.${last.replace(/[^A-Za-z]/g, "")}${id}@example.org`.toLowerCase(),
      `${first} ${last}`,
      random.chance(0.9) ? 1 : 0,
      random.chance(0.7)
        ? JSON.stringify({
            theme: random.pick(["dark", "light"]),
            locale: random.pick(["en", "de", "fr", "ja"]),
            digest: random.chance(0.5),
          })
        : null,
      random.chance(0.2) ? random.bytes(random.int(64, 256)) : null,
      time(),
      random.chance(0.8) ? time() : null,
    ];
  });
  fill("memberships", "insert into memberships values (?, ?, ?, ?, ?)", (id) => [
    id,
    id,
    random.int(1, sizes.organizations!),
    random.pick(ROLES),
    time(),
  ]);
  fill("projects", "insert into projects values (?, ?, ?, ?, ?, ?, ?)", (id) => [
    id,
    random.int(1, sizes.organizations!),
    sentence(random, 2, 4),
    random.chance(0.6) ? `${sentence(random, 6, 20)}, "quoted", and a comma.` : null,
    random.chance(0.7) ? Math.round(random.next() * 1e8) / 100 : null,
    JSON.stringify({
      color: random.pick(["red", "green", "blue"]),
      archived: random.chance(0.1),
      weight: random.next(),
    }),
    time(),
  ]);
  fill("tags", "insert into tags values (?, ?)", (id) => [id, `tag-${id}-${random.pick(WORDS)}`]);
  fill("tasks", "insert into tasks values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", (id) => {
    const created = time();
    return [
      id,
      random.int(1, sizes.projects!),
      random.chance(0.85) ? random.int(1, users) : null,
      sentence(random, 3, 9),
      random.pick(STATUSES),
      random.int(1, 5),
      random.chance(0.6) ? Math.round(random.next() * 400) / 4 : null,
      random.chance(0.5) ? created + random.int(1, 90) * 86_400_000 : null,
      random.chance(0.5) ? JSON.stringify([random.pick(WORDS), random.pick(WORDS)]) : null,
      created,
      created + random.int(0, 30 * 86_400_000),
    ];
  });
  const tasks = sizes.tasks!;
  fill("task_tags", "insert into task_tags values (?, ?)", (id) => [id, random.int(1, TAG_COUNT)]);
  fill("comments", "insert into comments values (?, ?, ?, ?, ?, ?)", (id) => [
    id,
    random.int(1, tasks),
    random.int(1, users),
    random.chance(0.2)
      ? `${sentence(random, 5, 30)}\n\n> quoted line, with "quotes" and a tab\there\n${sentence(random, 3, 10)}`
      : sentence(random, 4, 40),
    random.chance(0.1) ? 1 : 0,
    time(),
  ]);
  fill("attachments", "insert into attachments values (?, ?, ?, ?, ?, ?, ?)", (id) => {
    const size = random.int(256, 1536);
    return [
      id,
      random.int(1, tasks),
      `${random.pick(WORDS)}-${id}.${random.pick(["png", "pdf", "txt", "zip"])}`,
      random.pick(MIME),
      size,
      random.bytes(size),
      hex(random, 64),
    ];
  });
  fill("events", "insert into events values (?, ?, ?, ?, ?)", (id) => [
    id,
    random.chance(0.95) ? random.int(1, users) : null,
    random.pick(KINDS),
    JSON.stringify({
      ip: `10.${random.int(0, 255)}.${random.int(0, 255)}.${random.int(1, 254)}`,
      agent: random.pick(["Mozilla/5.0", "curl/8.5", "pgshift-bench"]),
      task: random.chance(0.5) ? random.int(1, tasks) : null,
      tags: [random.pick(WORDS)],
    }),
    time(),
  ]);
  fill("invoices", "insert into invoices values (?, ?, ?, ?, ?, ?, ?, ?)", (id) => {
    const cents = random.int(100, 5_000_000);
    const issued = new Date(time());
    return [
      id,
      random.int(1, sizes.organizations!),
      `INV-${issued.getUTCFullYear()}-${String(id).padStart(8, "0")}`,
      cents,
      random.pick(CURRENCIES),
      cents / 100,
      issued.toISOString().slice(0, 10),
      random.chance(0.8) ? issued.getTime() + random.int(1, 60) * 86_400_000 : null,
    ];
  });
  const indexes = (
    db.prepare("select count(*) as n from sqlite_master where type = 'index'").get() as { n: number }
  ).n;
  let foreignKeys = 0;
  for (const table of Object.keys(sizes)) {
    foreignKeys += (
      db.prepare(`select count(distinct id) as n from pragma_foreign_key_list('${table}')`).get() as {
        n: number;
      }
    ).n;
  }
  db.close();
  const total = Object.values(sizes).reduce((a, b) => a + b, 0);
  return {
    path,
    rows: total,
    tables: sizes,
    fileBytes: statSync(path).size,
    indexes,
    foreignKeys,
  };
}

/**
 * The one-big-table shape users bring (issue 15): a small `sites` table and `observations` holding
 * 98 % of the rows, with NUMERIC-affinity lat/lng holding reals, a `reading` column without a declared
 * type holding integers, reals and text, ISO date text, a secondary index and a foreign key.
 */
export const ONETABLE_SCHEMA = `
create table sites (
  id integer primary key,
  name text not null,
  country char(2) not null
);
create table observations (
  id integer primary key,
  site_id integer not null references sites(id),
  lat numeric not null,
  lng numeric not null,
  reading,
  observed_on date not null,
  note text
);
create index observations_site on observations(site_id);
`;

export function oneTableSizes(rows: number): Record<string, number> {
  const sites = Math.max(10, Math.round(rows * 0.02));
  return { sites, observations: Math.max(10, rows - sites) };
}

const COUNTRIES = ["DE", "FR", "US", "JP", "BR", "IS", "NZ", "KE"];
const READING_WORDS = ["n/a", "offline", "calibrating", "> 100", "trace"];

export function generateOneTableSqlite(options: GenerateSqliteOptions): GeneratedSqlite {
  const path = resolve(options.path);
  for (const suffix of ["", "-wal", "-shm", "-journal"]) rmSync(`${path}${suffix}`, { force: true });
  const random = new Random(options.seed ?? 42);
  const sizes = oneTableSizes(options.rows);
  const db = new Database(path);
  db.pragma("journal_mode = off");
  db.pragma("synchronous = off");
  db.exec(ONETABLE_SCHEMA);
  const fill = (table: string, sql: string, make: (id: number) => unknown[]) => {
    const statement = db.prepare(sql);
    const count = sizes[table]!;
    for (let start = 1; start <= count; start += 20_000) {
      const end = Math.min(count, start + 19_999);
      db.transaction(() => {
        for (let id = start; id <= end; id++) statement.run(make(id));
      })();
      options.onProgress?.(table, end);
    }
  };
  fill("sites", "insert into sites values (?, ?, ?)", (id) => [
    id,
    `${random.pick(LAST_NAMES)} ${random.pick(WORDS)} ${id}`,
    random.pick(COUNTRIES),
  ]);
  const day = 86_400_000;
  fill("observations", "insert into observations values (?, ?, ?, ?, ?, ?, ?)", (id) => {
    const kind = random.next();
    // Integers, reals and text in one column, as a hand-filled spreadsheet import leaves them.
    const reading =
      kind < 0.45
        ? BigInt(random.int(-50, 5000))
        : kind < 0.9
          ? Math.round(random.next() * 1e6) / 1e3 + 0.0005
          : random.pick(READING_WORDS);
    return [
      id,
      random.int(1, sizes.sites!),
      // Reals in NUMERIC-affinity columns (SQLite keeps them REAL unless they are whole numbers).
      Math.round((random.next() * 180 - 90) * 1e6) / 1e6 + 1e-7,
      Math.round((random.next() * 360 - 180) * 1e6) / 1e6 + 1e-7,
      reading,
      new Date(BASE_TIME + random.int(0, 5 * 365) * day).toISOString().slice(0, 10),
      random.chance(0.3) ? sentence(random, 2, 6) : null,
    ];
  });
  const indexes = (
    db.prepare("select count(*) as n from sqlite_master where type = 'index'").get() as { n: number }
  ).n;
  db.close();
  return {
    path,
    rows: sizes.sites! + sizes.observations!,
    tables: sizes,
    fileBytes: statSync(path).size,
    indexes,
    foreignKeys: 1,
  };
}

function main(argv: string[]): void {
  let out: string | undefined;
  let rows = 600_000;
  let seed = 42;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--rows") rows = Number(argv[++i]);
    else if (argv[i] === "--seed") seed = Number(argv[++i]);
    else out = argv[i];
  }
  if (!out || !Number.isInteger(rows) || rows <= 0) {
    process.stderr.write("usage: node bin/run-ts.js bench/generate-sqlite.ts OUT.db [--rows N] [--seed N]\n");
    process.exitCode = 2;
    return;
  }
  if (existsSync(out)) process.stderr.write(`replacing ${out}\n`);
  const result = generateSqlite({ path: out, rows, seed });
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main(process.argv.slice(2));

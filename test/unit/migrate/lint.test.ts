import assert from "node:assert/strict";
import { before, test } from "node:test";
import { type LintRule, lintMigrations } from "../../../src/migrate/lint.ts";
import { type MigrationFile, parseMigrationSource } from "../../../src/migrate/migration-file.ts";
import { loadSqlParser } from "../../../src/migrate/sql-statements.ts";

before(() => loadSqlParser());

function file(version: string, up: string): MigrationFile {
  const header = up.includes("concurrently") ? "-- migrate:no-transaction\n" : "";
  const parsed = parseMigrationSource(`${header}-- migrate:up\n${up}\n`, `${version}_m.sql`);
  return { version, name: "m", file: `${version}_m.sql`, sha256: "", ...parsed };
}

/** Rules flagged (not ignored) for `up`, linted as one pending migration. */
function rules(up: string, earlier?: string): LintRule[] {
  const set = earlier
    ? [file("20240101000000", earlier), file("20240102000000", up)]
    : [file("20240102000000", up)];
  return lintMigrations(set)
    .findings.filter((f) => !f.ignored && f.version === "20240102000000")
    .map((f) => f.rule);
}

const cases: { rule: LintRule; bad: string; good: string; goodEarlier?: string }[] = [
  {
    rule: "index-not-concurrent",
    bad: "create index users_email on users (email);",
    good: "create index concurrently users_email on users (email);",
  },
  {
    rule: "index-not-concurrent",
    bad: "create unique index on app.users (email);",
    good: "create unique index on app.users (email);",
    goodEarlier: "create table app.users (id int, email text);",
  },
  {
    rule: "volatile-default",
    bad: "alter table users add column token uuid default gen_random_uuid();",
    good: "alter table users add column created_at timestamptz not null default now();",
  },
  {
    rule: "volatile-default",
    bad: "alter table users add column n bigserial;",
    good: "alter table users add column n bigint;",
  },
  {
    rule: "set-not-null",
    bad: "alter table users alter column email set not null;",
    good: "alter table users add constraint users_email_nn check (email is not null) not valid;\nalter table users validate constraint users_email_nn;\nalter table users alter column email set not null;",
  },
  {
    rule: "constraint-not-valid",
    bad: "alter table orders add constraint orders_user_fk foreign key (user_id) references users (id);",
    good: "alter table orders add constraint orders_user_fk foreign key (user_id) references users (id) not valid;",
  },
  {
    rule: "constraint-not-valid",
    bad: "alter table orders add constraint orders_total check (total >= 0);",
    good: "alter table orders add constraint orders_total check (total >= 0) not valid;",
  },
  {
    rule: "column-type-change",
    bad: "alter table orders alter column total type numeric(12,2);",
    good: "alter table orders add column total_v2 numeric(12,2);",
  },
  {
    rule: "add-unique-constraint",
    bad: "alter table users add constraint users_email_key unique (email);",
    good: "alter table users add constraint users_email_key unique using index users_email_idx;",
  },
  {
    rule: "rename",
    bad: "alter table users rename column email to email_address;",
    good: "alter table users rename column email to email_address;",
    goodEarlier: "create table users (id int, email text);",
  },
  {
    rule: "rename",
    bad: "alter table users rename to accounts;",
    good: "alter index users_pkey rename to users_pk;",
  },
  {
    rule: "drop",
    bad: "alter table users drop column legacy;",
    good: "alter table users drop column legacy;",
    goodEarlier: "create table users (id int, legacy text);",
  },
  {
    rule: "drop",
    bad: "drop table public.sessions;",
    good: "create table scratch (id int);\ndrop table scratch;",
  },
];

for (const { rule, bad, good, goodEarlier } of cases) {
  test(`lint ${rule}: flags "${bad.split("\n")[0]}"`, () => {
    assert.deepEqual(rules(bad), [rule]);
  });
  test(`lint ${rule}: accepts "${good.split("\n").at(-1)}"${goodEarlier ? " on a table created earlier in the pending set" : ""}`, () => {
    assert.deepEqual(rules(good, goodEarlier), []);
  });
}

test("lint: a table created in the same migration is new, so its indexes and constraints are fine", () => {
  assert.deepEqual(
    rules(
      "create table t (id int, email text, owner int);\ncreate index on t (email);\nalter table t add constraint t_owner foreign key (owner) references owners (id);\nalter table t alter column email set not null;",
    ),
    [],
  );
});

test("lint: an ignore comment with a rule and a reason covers the next statement only", () => {
  const result = lintMigrations([
    file(
      "20240102000000",
      "-- pgshift-lint-ignore: index-not-concurrent lookup table, 12 rows, never written by the app\ncreate index a_i on a (x);\ncreate index b_i on b (x);",
    ),
  ]);
  assert.deepEqual(
    result.findings.map((f) => [f.rule, f.line, f.ignored?.reason ?? null]),
    [
      ["index-not-concurrent", 3, "lookup table, 12 rows, never written by the app"],
      ["index-not-concurrent", 4, null],
    ],
  );
  assert.equal(result.errors, 1);
  assert.equal(result.ignored, 1);
});

test("lint: an ignore without a reason, or for an unknown rule, is itself a finding", () => {
  assert.deepEqual(rules("-- pgshift-lint-ignore: drop\ndrop table old_stuff;"), [
    "drop",
    "lint-ignore-reason",
  ]);
  assert.deepEqual(rules("-- pgshift-lint-ignore: no-such-rule because\nselect 1;"), ["lint-ignore-reason"]);
});

test("lint: down sections are not linted (dropping what up created is their job)", () => {
  const parsed = parseMigrationSource(
    "-- migrate:up\ncreate table t (id int);\n-- migrate:down\ndrop table t;\n",
    "x.sql",
  );
  const result = lintMigrations([
    { version: "20240101000000", name: "x", file: "x.sql", sha256: "", ...parsed },
  ]);
  assert.equal(result.findings.length, 0);
  assert.equal(result.statements, 1);
});

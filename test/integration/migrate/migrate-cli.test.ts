import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import pg from "pg";
import { versionAt } from "../../../src/migrate/migration-file.ts";
import { LockKey } from "../../../src/pg/advisory-lock.ts";
import { runCli } from "../../helpers/cli.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import { migration } from "./migration-dir.ts";

const db = useTestDatabase("migcli");
const cwd = mkdtempSync(join(tmpdir(), "pgshift-migrate-cli-"));
after(() => rmSync(cwd, { recursive: true, force: true }));

const pgshift = (...args: string[]) => runCli(["--to", db().url, "migrate", ...args], { cwd });
const dir = join(cwd, "migrations");
/** A version some minutes after now: newer than what `migrate new` writes, not in the future beyond the allowed clock skew. */
const later = (minutes: number) => versionAt(new Date(Date.now() + minutes * 60_000));
const [v1, v2, v3, v4] = [1, 2, 3, 4].map(later) as [string, string, string, string];

test("the migrate CLI end to end: new, status, up --dry-run, up, verify, drift, lint, failure, down, baseline", async () => {
  const created = await pgshift("new", "create_things");
  assert.equal(created.code, 0, created.stderr);
  const [first] = readdirSync(dir);
  assert.match(first!, /^\d{14}_create_things\.sql$/);
  assert.equal(created.stdout.trim(), join("migrations", first!));
  assert.match(readFileSync(join(dir, first!), "utf8"), /-- migrate:up\n[\s\S]*-- migrate:down\n/);
  writeFileSync(
    join(dir, first!),
    migration("create table things (id int primary key, name text);", "drop table things;"),
  );
  writeFileSync(
    join(dir, `${v1}_things_index.sql`),
    migration(
      "create index concurrently things_name on things (name);",
      "drop index concurrently things_name;",
      {
        noTransaction: true,
      },
    ),
  );

  const pending = await pgshift("status");
  assert.equal(pending.code, 3, "status exits 3 while migrations are pending");
  assert.match(pending.stdout, /create_things\s+pending/);
  assert.match(pending.stdout, /NOT up to date/);

  const dry = await pgshift("up", "--dry-run");
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, /planned/);
  assert.match(dry.stdout, /dry run: would apply 2 migration\(s\); nothing was changed/);

  const up = await pgshift("up");
  assert.equal(up.code, 0, up.stderr);
  assert.match(up.stdout, /applied 2, failed 0, skipped 0/);
  assert.match(up.stdout, /applied \(no transaction\)/);

  const status = await runCli(["--json", "--to", db().url, "migrate", "status"], { cwd });
  assert.equal(status.code, 0, status.stderr);
  const parsed = JSON.parse(status.stdout);
  assert.equal(parsed.upToDate, true);
  assert.deepEqual(
    parsed.entries.map((e: { state: string }) => e.state),
    ["applied", "applied"],
  );

  assert.equal((await pgshift("verify")).code, 0);
  writeFileSync(join(dir, first!), `${readFileSync(join(dir, first!), "utf8")}\n-- an edit after the fact\n`);
  const verify = await pgshift("verify");
  assert.equal(verify.code, 3, "verify exits 3 on drift");
  assert.match(verify.stdout, new RegExp(`CHANGED  .*${first}`));
  writeFileSync(join(dir, `${v2}_more.sql`), migration("create table more (id int);", "drop table more;"));
  const refused = await pgshift("up");
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, new RegExp(`${first}: changed since it was applied`));
  const accepted = await pgshift("up", "--allow-drift");
  assert.equal(accepted.code, 0, accepted.stderr);
  assert.match(accepted.stdout, /drift accepted and recorded/);

  const brokenFile = join(dir, `${v3}_broken.sql`);
  writeFileSync(
    brokenFile,
    migration("create table broken (id int);\nselect no_such_function();", "drop table broken;"),
  );
  const failed = await pgshift("up");
  assert.equal(failed.code, 1, "a failed migration exits 1");
  assert.match(failed.stdout, /FAILED .*broken\.sql:3: function no_such_function\(\) does not exist/);
  assert.match(failed.stdout, /rolled back: nothing of it remains/);
  rmSync(brokenFile);

  const down = await pgshift("down", "--steps", "2");
  assert.equal(down.code, 0, down.stderr);
  assert.match(down.stdout, /reverted 2/);
  const noDown = join(dir, `${v4}_no_down.sql`);
  writeFileSync(noDown, migration("create table kept (id int);"));
  assert.equal((await pgshift("up")).code, 0);
  const irreversible = await pgshift("down");
  assert.equal(irreversible.code, 1);
  assert.match(irreversible.stderr, /cannot revert .*no_down\.sql: it has no "-- migrate:down" section/);
  const baselined = await pgshift("baseline", v4, "--dry-run");
  assert.equal(baselined.code, 0, baselined.stderr);
  assert.match(baselined.stdout, /0 recorded, 4 already applied \(dry run: nothing changed\)/);
  assert.equal((await pgshift("baseline", "2999")).code, 2, "a malformed version is a usage error");
});

test("lint exits 3 on hazards, 0 when each hazard carries a written ignore; usage errors exit 2", async () => {
  const lintDir = mkdtempSync(join(tmpdir(), "pgshift-lint-cli-"));
  try {
    const file = join(lintDir, "20240101000000_index_users.sql");
    writeFileSync(file, migration("create index users_name on users (name);", "drop index users_name;"));
    const hazard = await pgshift("lint", "--dir", lintDir);
    assert.equal(hazard.code, 3);
    assert.match(hazard.stdout, /20240101000000_index_users\.sql:2: \[index-not-concurrent\]/);
    writeFileSync(
      file,
      migration(
        "-- pgshift-lint-ignore: index-not-concurrent users has 40 rows and is only read by the admin tool\ncreate index users_name on users (name);",
        "drop index users_name;",
      ),
    );
    const ignored = await runCli(["--json", "migrate", "lint", file], { cwd });
    assert.equal(ignored.code, 0, ignored.stdout);
    const result = JSON.parse(ignored.stdout);
    assert.equal(result.errors, 0);
    assert.equal(result.findings[0].ignored.reason, "users has 40 rows and is only read by the admin tool");
    writeFileSync(
      file,
      migration(
        "-- pgshift-lint-ignore: index-not-concurrent\ncreate index users_name on users (name);",
        "select 1;",
      ),
    );
    const noReason = await pgshift("lint", file);
    assert.equal(noReason.code, 3);
    assert.match(noReason.stdout, /needs a written reason/);
  } finally {
    rmSync(lintDir, { recursive: true, force: true });
  }
  assert.equal((await pgshift("down", "--steps", "x")).code, 2);
  assert.equal((await pgshift("up", "--target", "yesterday")).code, 2);
  assert.equal((await pgshift("up", "--lock-mode", "flock")).code, 2);
});

test("a held migration lock: up fails at once naming the holder, or after --lock-wait", async () => {
  const holder = new pg.Client({ connectionString: db().url, application_name: "deploy-job-42" });
  await holder.connect();
  try {
    await holder.query("select pg_advisory_lock($1::bigint)", [LockKey.migrate.toString()]);
    const busy = await pgshift("up");
    assert.equal(busy.code, 1);
    assert.match(busy.stderr, /\(migrations\) is locked by pid \d+ \(deploy-job-42/);
    const waited = await pgshift("up", "--lock-wait", "0.5");
    assert.equal(waited.code, 1);
    assert.match(waited.stderr, /deploy-job-42.*waited/);
  } finally {
    await holder.end();
  }
  const free = await pgshift("up");
  assert.equal(free.code, 0, free.stderr);
  assert.match(free.stdout, /nothing to apply/);
});

import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { LockKey } from "../../../src/pg/advisory-lock.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import { type Fixture, makeFixture } from "../verify/fixture.ts";
import { assertCleanFailure, jsonResult, startCli, tail } from "./fault-helpers.ts";

/**
 * Another session holds pgshift's internal-schema setup lock (a stuck run, an open psql transaction):
 * `import` and `migrate up` wait a bounded time (PGSHIFT_LOCK_TIMEOUT_MS), then name the holder.
 */
describe("the internal-schema setup lock held by another session", () => {
  const db = useTestDatabase("rlock");
  let fixture: Fixture;
  let project: string;
  let holder: pg.Client;
  let holderPid: number;

  before(async () => {
    fixture = makeFixture({ items: 200 });
    project = mkdtempSync(join(tmpdir(), "pgshift-lock-"));
    mkdirSync(join(project, "migrations"));
    writeFileSync(
      join(project, "migrations", "20240101000000_first.sql"),
      "-- migrate:up\ncreate table first_t (id int);\n\n-- migrate:down\ndrop table first_t;\n",
    );
    holder = new pg.Client({ connectionString: db().url, application_name: "schema-holder" });
    // the database is dropped (its sessions terminated) before this file's after() ends the client
    holder.on("error", () => undefined);
    await holder.connect();
    const { rows } = await holder.query("select pg_backend_pid() as pid");
    holderPid = rows[0].pid;
    await holder.query("select pg_advisory_lock($1::bigint)", [LockKey.internalSchema.toString()]);
  });

  after(async () => {
    await holder?.end().catch(() => undefined);
    fixture?.cleanup();
    rmSync(project, { recursive: true, force: true });
  });

  const env = { PGSHIFT_LOCK_TIMEOUT_MS: "1000" };
  const holderNamed = (pid: () => number) =>
    new RegExp(
      `internal schema setup .* is locked by pid ${pid()} \\(schema-holder, user \\w+, client [^,]+, since [^)]+\\)`,
    );

  it("import waits, then names the session holding the setup lock", async () => {
    const run = await startCli(["import", fixture.path, "--to", db().url, "--json"], env).done;
    assertCleanFailure(run, "import behind the setup lock");
    const failure = jsonResult<{ error: string; message: string; holders: { pid: number }[] }>(run);
    assert.equal(failure.error, "lock_busy");
    assert.match(
      failure.message,
      holderNamed(() => holderPid),
    );
    assert.deepEqual(
      failure.holders.map((h) => h.pid),
      [holderPid],
    );
    const { rows } = await db().pool.query(
      "select count(*)::int as n from pg_tables where schemaname = 'public'",
    );
    assert.equal(rows[0].n, 0, "nothing imported");
  });

  it("migrate up waits, then names it too", async () => {
    const run = await startCli(["migrate", "up", "--to", db().url], env, project).done;
    assertCleanFailure(run, "migrate up behind the setup lock");
    assert.match(
      run.stderr,
      holderNamed(() => holderPid),
    );
  });

  it("once the holder lets go, both run", async () => {
    await holder.query("select pg_advisory_unlock($1::bigint)", [LockKey.internalSchema.toString()]);
    const imported = await startCli(["import", fixture.path, "--to", db().url, "--json"], env).done;
    assert.equal(imported.code, 0, tail(imported.stderr));
    const migrated = await startCli(["migrate", "up", "--to", db().url], env, project).done;
    assert.equal(migrated.code, 0, tail(migrated.stderr));
    const { rows } = await db().pool.query("select version from pgshift.migrations");
    assert.deepEqual(
      rows.map((r) => r.version),
      ["20240101000000"],
    );
  });
});

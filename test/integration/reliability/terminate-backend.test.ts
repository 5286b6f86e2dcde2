import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { verifySqlite } from "../../../src/verify/verify-import.ts";
import { createTestDatabase, serverUrl } from "../../helpers/database.ts";
import { FIXTURE_ROWS, importArgs } from "../verify/resume-helpers.ts";
import { type Fixture, makeFixture } from "../verify/fixture.ts";
import {
  assertCleanFailure,
  databaseOf,
  hostPortOf,
  jsonResult,
  pausePoint,
  spawnCli,
  startCli,
  tail,
  terminateSessions,
  waitForActive,
  assertRerunIdentical,
  documentImportArgs,
  writeEventsNdjson,
} from "./fault-helpers.ts";

/**
 * pg_terminate_backend from a second connection, at named points of a SQLite import (paused there,
 * see src/load/crash-points.ts), during a document import's COPY, a verification and a migration.
 * Each run either recovers by itself (a chunk or step retried at its boundary, a table verified
 * again) or ends in a clean error: exit 1, host:port and the reason, no stack trace, the command that
 * continues; and the resume or re-run verifies identical.
 */
let fixture: Fixture;
let work: string;

before(() => {
  fixture = makeFixture({ items: FIXTURE_ROWS.items, relations: true });
  work = mkdtempSync(join(tmpdir(), "pgshift-terminate-"));
});

after(() => {
  fixture?.cleanup();
  rmSync(work, { recursive: true, force: true });
});

async function assertIdentical(pool: import("pg").Pool): Promise<void> {
  const verified = await verifySqlite({ sourcePath: fixture.path, pool });
  assert.equal(
    verified.status,
    "identical",
    JSON.stringify(verified.tables.filter((t) => t.status !== "identical")),
  );
  assert.deepEqual(
    Object.fromEntries(verified.tables.map((t) => [t.table, [t.sourceRows, t.targetRows]])),
    Object.fromEntries(Object.entries(FIXTURE_ROWS).map(([t, n]) => [t, [n, n]])),
  );
}

describe("SQLite import: backend terminated at a pause point", { concurrency: 2 }, () => {
  for (const point of ["data:before-commit#2", "index:before-commit", "keys:before-commit"]) {
    it(`terminated at ${point}: the chunk or step is retried, the import completes identical`, async () => {
      const database = await createTestDatabase("rterm");
      const pause = pausePoint(point);
      try {
        const running = startCli(importArgs(fixture.path, database.url), pause.env);
        await pause.reached(running);
        const terminated = await terminateSessions(serverUrl(), database.name);
        assert.ok(terminated >= 1, `sessions terminated: ${terminated}`);
        pause.go();
        const run = await running.done;
        assert.equal(run.code, 0, `exit ${run.code}:\n${tail(run.stderr)}\n${tail(run.stdout)}`);
        assert.match(run.stderr, /connection lost \(.*\); retry 1 in \d+ ms/);
        assert.doesNotMatch(run.stderr, /^\s+at .+:\d+:\d+\)?$/m);
        const result = jsonResult<{ ok: boolean; verification?: { identical: boolean } }>(run);
        assert.equal(result.ok, true);
        assert.equal(result.verification?.identical, true);
        await assertIdentical(database.pool);
      } finally {
        pause.cleanup();
        await database.drop();
      }
    });
  }

  it("every session terminated again and again: a clean error with the resume command, then resume is identical", async () => {
    const database = await createTestDatabase("rterm");
    const pause = pausePoint("data:before-commit#3");
    try {
      const running = startCli(importArgs(fixture.path, database.url), pause.env);
      await pause.reached(running);
      pause.go();
      // no retry can get through: every new session is terminated too, until the import gives up
      while (running.child.exitCode === null) await terminateSessions(serverUrl(), database.name);
      const run = await running.done;
      assertCleanFailure(run, "import under repeated termination");
      const result = jsonResult<{
        ok: boolean;
        error: { code: string; message: string };
        nextSteps: string[];
      }>(run);
      assert.equal(result.ok, false);
      assert.equal(result.error.code, "connection_lost", result.error.message);
      assert.match(result.error.message, new RegExp(`lost the connection to ${hostPortOf(database.url)}/`));
      assert.ok(
        result.nextSteps.some((s) => /--resume/.test(s)),
        result.nextSteps.join("\n"),
      );

      const resumed = await spawnCli(importArgs(fixture.path, database.url, ["--resume"]));
      assert.equal(resumed.code, 0, `resume failed:\n${tail(resumed.stderr)}\n${tail(resumed.stdout)}`);
      assert.equal(jsonResult<{ resumed: boolean }>(resumed).resumed, true);
      await assertIdentical(database.pool);
    } finally {
      pause.cleanup();
      await database.drop();
    }
  });
});

describe("document import, verify and migrate: backend terminated while they run", () => {
  const records = 200_000;
  let ndjson: string;

  before(() => {
    ndjson = join(work, "events.ndjson");
    writeEventsNdjson(ndjson, records);
  });

  it("document import: a clean error, no staging table left, the re-run verifies identical", async () => {
    const database = await createTestDatabase("rterm");
    try {
      const args = documentImportArgs(ndjson, database.url);
      const running = startCli(args);
      assert.ok(
        await waitForActive(serverUrl(), database.name, "copy %", running),
        `never saw the COPY:\n${tail(running.stderr())}`,
      );
      await terminateSessions(serverUrl(), database.name);
      const run = await running.done;
      assertCleanFailure(run, "document import");
      const failure = jsonResult<{ error: string; message: string }>(run);
      assert.equal(failure.error, "connection_lost");
      assert.match(failure.message, new RegExp(`lost the connection to ${hostPortOf(database.url)}/`));
      assert.match(failure.message, /rolled back.*run the same command again/);
      const { rows: left } = await database.pool.query(
        "select relname from pg_class where relname like '%pgshift_new' or relname like '%pgshift_stage'",
      );
      assert.deepEqual(left, []);

      await assertRerunIdentical(args, records);
    } finally {
      await database.drop();
    }
  });

  it("verify: a table whose connection is terminated is verified again; identical", async () => {
    const database = await createTestDatabase("rterm");
    try {
      const imported = await spawnCli(importArgs(fixture.path, database.url, ["--no-verify"]));
      assert.equal(imported.code, 0, tail(imported.stderr));
      const pause = pausePoint("verify:table-snapshot#2");
      const running = startCli(["verify", fixture.path, "--to", database.url, "--json"], pause.env);
      await pause.reached(running);
      const terminated = await terminateSessions(serverUrl(), database.name);
      assert.ok(terminated >= 1);
      pause.go();
      const run = await running.done;
      pause.cleanup();
      assert.equal(run.code, 0, `exit ${run.code}:\n${tail(run.stderr)}\n${tail(run.stdout)}`);
      const result = jsonResult<{ status: string; tables: { sourceRows: number; targetRows: number }[] }>(
        run,
      );
      assert.equal(result.status, "identical");
      assert.equal(
        result.tables.reduce((n, t) => n + t.targetRows, 0),
        Object.values(FIXTURE_ROWS).reduce((a, b) => a + b, 0),
      );
    } finally {
      await database.drop();
    }
  });

  it("migrate up: a clean error naming what was applied, then `migrate up` applies the rest", async () => {
    const database = await createTestDatabase("rterm");
    const project = join(work, `migrate-${database.name}`);
    mkdirSync(join(project, "migrations"), { recursive: true });
    try {
      await database.pool.query(
        "create table public.slow (seconds int); insert into public.slow values (60)",
      );
      writeFileSync(
        join(project, "migrations", "20240101000000_first.sql"),
        "-- migrate:up\ncreate table first_t (id int);\n\n-- migrate:down\ndrop table first_t;\n",
      );
      writeFileSync(
        join(project, "migrations", "20240102000000_second.sql"),
        "-- migrate:up\ncreate table second_t (id int);\nselect pg_sleep((select seconds from public.slow));\n\n-- migrate:down\ndrop table second_t;\n",
      );
      const args = ["migrate", "up", "--to", database.url];
      const running = startCli(args, {}, project);
      assert.ok(
        await waitForActive(serverUrl(), database.name, "%pg_sleep%", running),
        `never saw the migration run:\n${tail(running.stderr())}`,
      );
      await terminateSessions(serverUrl(), database.name);
      const run = await running.done;
      assertCleanFailure(run, "migrate up");
      assert.match(
        run.stderr,
        new RegExp(`lost the connection to ${hostPortOf(database.url)}/${databaseOf(database.url)}`),
      );
      assert.match(run.stderr, /applied in this run: 20240101000000;/);
      assert.match(run.stderr, /20240102000000_second\.sql was rolled back/);
      assert.match(run.stderr, /run `pgshift migrate up` again/);
      const { rows: tables } = await database.pool.query(
        "select count(*)::int as n from pg_tables where tablename = 'second_t'",
      );
      assert.equal(tables[0].n, 0, "the interrupted migration left nothing");

      await database.pool.query("update public.slow set seconds = 0");
      const again = await startCli(args, {}, project).done;
      assert.equal(again.code, 0, tail(again.stderr));
      const { rows } = await database.pool.query("select version from pgshift.migrations order by version");
      assert.deepEqual(
        rows.map((r) => r.version),
        ["20240101000000", "20240102000000"],
      );
    } finally {
      await database.drop();
    }
  });
});

import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { verifySqlite } from "../../../src/verify/verify-import.ts";
import { createTestDatabase, serverUrl } from "../../helpers/database.ts";
import { type Fixture, makeFixture } from "../verify/fixture.ts";
import { FIXTURE_ROWS, importArgs } from "../verify/resume-helpers.ts";
import {
  assertRerunIdentical,
  documentImportArgs,
  jsonResult,
  pausePoint,
  spawnCli,
  startCli,
  tail,
  waitForActive,
  writeEventsNdjson,
} from "./fault-helpers.ts";

/**
 * SIGINT/SIGTERM stop a run at its next clean boundary: exit 130/143, what is complete, the command
 * that continues; no stack trace. Then the resume (or re-run) verifies identical.
 */
let fixture: Fixture;
let work: string;

before(() => {
  fixture = makeFixture({ items: FIXTURE_ROWS.items, relations: true });
  work = mkdtempSync(join(tmpdir(), "pgshift-signals-"));
});

after(() => {
  fixture?.cleanup();
  rmSync(work, { recursive: true, force: true });
});

function assertNoStack(text: string): void {
  assert.doesNotMatch(text, /Unhandled|^\s+at .+:\d+:\d+\)?$/m);
}

describe("signals", { concurrency: 3 }, () => {
  it("SIGINT during a SQLite import: exit 130 at a chunk boundary, the resume command, resume identical", async () => {
    const database = await createTestDatabase("rsig");
    const pause = pausePoint("data:chunk-start#2");
    try {
      const running = startCli(importArgs(fixture.path, database.url), pause.env);
      await pause.reached(running);
      running.child.kill("SIGINT");
      pause.go();
      const run = await running.done;
      assert.equal(run.code, 130, `exit ${run.code}:\n${tail(run.stderr)}\n${tail(run.stdout)}`);
      assertNoStack(`${run.stderr}${run.stdout}`);
      assert.match(run.stderr, /SIGINT: stopping at the next clean boundary/);
      const result = jsonResult<{
        ok: boolean;
        error: { code: string };
        nextSteps: string[];
        tables: { status: string; chunks: { done: number; total: number } }[];
      }>(run);
      assert.equal(result.ok, false);
      assert.equal(result.error.code, "interrupted");
      assert.ok(result.nextSteps.some((s) => /--resume/.test(s)));
      const done = result.tables.reduce((n, t) => n + t.chunks.done, 0);
      const total = result.tables.reduce((n, t) => n + t.chunks.total, 0);
      assert.ok(done >= 1 && done < total, `chunks done ${done} of ${total}`);

      const resumed = await spawnCli(importArgs(fixture.path, database.url, ["--resume"]));
      assert.equal(resumed.code, 0, tail(resumed.stderr));
      const verified = await verifySqlite({ sourcePath: fixture.path, pool: database.pool });
      assert.equal(verified.status, "identical");
      assert.equal(verified.tables.find((t) => t.table === "items")!.targetRows, FIXTURE_ROWS.items);
    } finally {
      pause.cleanup();
      await database.drop();
    }
  });

  it("SIGINT during verify: the tables under way finish, the rest are reported not verified, exit 130", async () => {
    const database = await createTestDatabase("rsig");
    const pause = pausePoint("verify:table-snapshot#1");
    try {
      const imported = await spawnCli(importArgs(fixture.path, database.url, ["--no-verify"]));
      assert.equal(imported.code, 0, tail(imported.stderr));
      const args = ["verify", fixture.path, "--to", database.url, "--jobs", "1", "--json"];
      const running = startCli(args, pause.env);
      await pause.reached(running);
      running.child.kill("SIGINT");
      pause.go();
      const run = await running.done;
      assert.equal(run.code, 130, `exit ${run.code}:\n${tail(run.stderr)}\n${tail(run.stdout)}`);
      assertNoStack(`${run.stderr}${run.stdout}`);
      const result = jsonResult<{ tables: { status: string; error?: { code: string } }[] }>(run);
      const statuses = result.tables.map((t) => (t.status === "error" ? t.error?.code : t.status));
      assert.equal(statuses.filter((s) => s === "identical").length, 1, statuses.join(", "));
      assert.equal(statuses.filter((s) => s === "interrupted").length, 3, statuses.join(", "));

      const again = await spawnCli(args.filter((a) => a !== "--jobs" && a !== "1"));
      assert.equal(again.code, 0, tail(again.stdout));
      assert.equal(jsonResult<{ status: string }>(again).status, "identical");
    } finally {
      pause.cleanup();
      await database.drop();
    }
  });

  it("SIGTERM during a document import: exit 143, rolled back, the re-run is identical", async () => {
    const database = await createTestDatabase("rsig");
    const ndjson = join(work, "events.ndjson");
    const records = 200_000;
    writeEventsNdjson(ndjson, records, "s");
    try {
      const args = documentImportArgs(ndjson, database.url);
      const running = startCli(args);
      assert.ok(await waitForActive(serverUrl(), database.name, "copy %", running), tail(running.stderr()));
      running.child.kill("SIGTERM");
      const run = await running.done;
      assert.equal(run.code, 143, `exit ${run.code}:\n${tail(run.stderr)}\n${tail(run.stdout)}`);
      assertNoStack(`${run.stderr}${run.stdout}`);
      const failure = jsonResult<{ error: string; message: string }>(run);
      assert.equal(failure.error, "interrupted");
      assert.match(failure.message, /SIGTERM.*rolled back; run the same command again/);
      const { rows } = await database.pool.query(
        "select count(*)::int as n from pg_tables where schemaname = 'public'",
      );
      assert.equal(rows[0].n, 0, "nothing of the interrupted import is left");

      await assertRerunIdentical(args, records);
    } finally {
      await database.drop();
    }
  });

  it("SIGTERM during migrate up: the running migration finishes, the next does not start, exit 143", async () => {
    const database = await createTestDatabase("rsig");
    const project = join(work, `migrate-${database.name}`);
    mkdirSync(join(project, "migrations"), { recursive: true });
    try {
      const migration = (name: string, body: string) =>
        writeFileSync(
          join(project, "migrations", name),
          `-- migrate:up\n${body}\n\n-- migrate:down\nselect 1;\n`,
        );
      migration("20240101000000_first.sql", "create table first_t (id int);");
      migration("20240102000000_second.sql", "create table second_t (id int);\nselect pg_sleep(2);");
      migration("20240103000000_third.sql", "create table third_t (id int);");
      const args = ["migrate", "up", "--to", database.url];
      const running = startCli(args, {}, project);
      assert.ok(
        await waitForActive(serverUrl(), database.name, "%pg_sleep%", running),
        tail(running.stderr()),
      );
      running.child.kill("SIGTERM");
      const run = await running.done;
      assert.equal(run.code, 143, `exit ${run.code}:\n${tail(run.stderr)}`);
      assertNoStack(run.stderr);
      assert.match(
        run.stderr,
        /interrupted \(SIGTERM\).*applied in this run: 20240101000000, 20240102000000;/,
      );
      assert.match(run.stderr, /20240103000000_third\.sql was not started/);
      assert.match(run.stderr, /run `pgshift migrate up` again/);
      const applied = async () =>
        (await database.pool.query("select version from pgshift.migrations order by version")).rows.map(
          (r) => r.version,
        );
      assert.deepEqual(await applied(), ["20240101000000", "20240102000000"]);

      const again = await startCli(args, {}, project).done;
      assert.equal(again.code, 0, tail(again.stderr));
      assert.deepEqual(await applied(), ["20240101000000", "20240102000000", "20240103000000"]);
    } finally {
      await database.drop();
    }
  });
});

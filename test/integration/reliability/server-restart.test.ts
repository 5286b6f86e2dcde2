import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import {
  destroyLocalInstance,
  localInstanceStatus,
  localInstanceUrl,
  startLocalInstance,
} from "../../../src/local/instance.ts";
import { chooseRunAs, runAsUser } from "../../../src/local/run-as.ts";
import { createPool } from "../../../src/pg/pool.ts";
import { verifySqlite } from "../../../src/verify/verify-import.ts";
import { testBinaries } from "../../helpers/binaries.ts";
import { withDatabase } from "../../helpers/database.ts";
import { type Fixture, makeFixture } from "../verify/fixture.ts";
import { importArgs } from "../verify/resume-helpers.ts";
import {
  assertCleanFailure,
  hostPortOf,
  jsonResult,
  pausePoint,
  type Running,
  startCli,
  tail,
  waitForActive,
  assertRerunIdentical,
  documentImportArgs,
  writeEventsNdjson,
} from "./fault-helpers.ts";

/**
 * The server dies (pg_ctl stop -m immediate, like a crash) at several points of a SQLite import, a
 * document import, a verification and a migration, on a private instance of this file's own. Each
 * run ends in a clean error (exit 1, host:port and the reason, no stack trace, what to run next);
 * after the server is back, the resume or re-run verifies identical.
 */
const instance = {
  name: `rrestart-${process.pid}`,
  baseDir: join(tmpdir(), "pgshift-reliability-restart"),
  // durable, as users run it: a crash must not take committed checkpoints with it
  ephemeral: false,
  binaries: testBinaries(),
};
const ITEMS = 6000;
let fixture: Fixture;
let adminUrl: string;
let work: string;

async function createDatabase(name: string): Promise<string> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  await client.query(`create database ${name}`);
  await client.end();
  return withDatabase(adminUrl, name);
}

async function crashServer(): Promise<void> {
  const status = await localInstanceStatus(instance);
  const result = await runAsUser(
    chooseRunAs(),
    join(status.binDir!, "pg_ctl"),
    ["stop", "-w", "-m", "immediate", "-D", status.dataDir],
    status.dir,
  );
  assert.equal(result.code, 0, result.stderr);
}

/** Crashes the server under a running command, waits for the command to end, starts the server again. */
async function crashUnder(running: Running, what: string) {
  await crashServer();
  const run = await running.done;
  await startLocalInstance(instance);
  assertCleanFailure(run, what);
  return run;
}

async function withPool<T>(url: string, fn: (pool: pg.Pool) => Promise<T>): Promise<T> {
  const pool = createPool({ url, max: 4 });
  try {
    return await fn(pool);
  } finally {
    await pool.end();
  }
}

describe("server crash and restart", () => {
  before(async () => {
    await startLocalInstance(instance);
    adminUrl = localInstanceUrl(instance);
    fixture = makeFixture({ items: ITEMS, relations: true });
    work = mkdtempSync(join(tmpdir(), "pgshift-restart-work-"));
  });

  after(async () => {
    fixture?.cleanup();
    if (work) rmSync(work, { recursive: true, force: true });
    await destroyLocalInstance(instance).catch(() => undefined);
    rmSync(instance.baseDir, { recursive: true, force: true });
  });

  for (const point of ["data:before-commit#3", "index:before-commit", "verify:before"]) {
    it(`SQLite import, server gone at ${point}: clean error with the resume command; resume is identical`, async () => {
      const name = `sq_${point.replace(/[^a-z0-9]/g, "_")}`;
      const url = await createDatabase(name);
      const pause = pausePoint(point);
      try {
        const running = startCli(importArgs(fixture.path, url, ["--chunk-rows", "1000"]), pause.env);
        await pause.reached(running);
        await crashServer();
        pause.go();
        const run = await running.done;
        await startLocalInstance(instance);
        assertCleanFailure(run, `import crashed at ${point}`);
        const result = jsonResult<{ error: { code: string; message: string }; nextSteps: string[] }>(run);
        assert.match(result.error.code, /^connection_(lost|failed)$|^verify_failed$/, result.error.message);
        assert.match(result.error.message, new RegExp(hostPortOf(url)));
        assert.ok(
          result.nextSteps.some((s) => /--resume/.test(s)),
          result.nextSteps.join("\n"),
        );

        const resumed = await startCli(importArgs(fixture.path, url, ["--resume"])).done;
        assert.equal(resumed.code, 0, `resume failed:\n${tail(resumed.stderr)}\n${tail(resumed.stdout)}`);
        assert.equal(
          jsonResult<{ verification?: { identical: boolean } }>(resumed).verification?.identical,
          true,
        );
        await withPool(url, async (pool) => {
          const verified = await verifySqlite({ sourcePath: fixture.path, pool });
          assert.equal(verified.status, "identical");
          assert.equal(verified.tables.find((t) => t.table === "items")!.targetRows, ITEMS);
        });
      } finally {
        pause.cleanup();
      }
    });
  }

  it("document import: clean error naming what is left; the re-run drops it and verifies identical", async () => {
    const url = await createDatabase("docs_restart");
    const ndjson = join(work, "events.ndjson");
    const records = 200_000;
    writeEventsNdjson(ndjson, records, "y");
    const args = documentImportArgs(ndjson, url);
    const running = startCli(args);
    assert.ok(
      await waitForActive(adminUrl, "docs_restart", "copy %", running),
      `never saw the COPY:\n${tail(running.stderr())}`,
    );
    const run = await crashUnder(running, "document import");
    const failure = jsonResult<{ error: string; message: string }>(run);
    assert.match(failure.error, /^connection_(lost|failed)$/);
    assert.match(failure.message, new RegExp(hostPortOf(url)));
    assert.match(failure.message, /run the same command again/);

    await assertRerunIdentical(args, records);
    await withPool(url, async (pool) => {
      const { rows } = await pool.query(
        "select relname from pg_class where relname like '%pgshift_new' or relname like '%pgshift_stage'",
      );
      assert.deepEqual(rows, []);
    });
  });

  it("verify: clean error per table; after the restart verify is identical", async () => {
    const url = await createDatabase("verify_restart");
    const imported = await startCli(importArgs(fixture.path, url, ["--no-verify"])).done;
    assert.equal(imported.code, 0, tail(imported.stderr));
    const args = ["verify", fixture.path, "--to", url, "--json"];
    const pause = pausePoint("verify:table-snapshot#2");
    const running = startCli(args, pause.env);
    await pause.reached(running);
    await crashServer();
    pause.go();
    const run = await running.done;
    pause.cleanup();
    await startLocalInstance(instance);
    assertCleanFailure(run, "verify");
    const result = jsonResult<{
      status: string;
      tables: { status: string; error?: { code: string; message: string } }[];
    }>(run);
    assert.equal(result.status, "error");
    const failed = result.tables.filter((t) => t.status === "error");
    assert.ok(failed.length >= 1);
    for (const t of failed) {
      assert.match(t.error!.code, /^connection_(lost|failed)$/, t.error!.message);
      assert.match(t.error!.message, new RegExp(hostPortOf(url)));
    }

    const again = await startCli(args).done;
    assert.equal(again.code, 0, tail(again.stdout));
    assert.equal(jsonResult<{ status: string }>(again).status, "identical");
  });

  it("migrate up: clean error naming what was applied; after the restart `migrate up` applies the rest", async () => {
    const url = await createDatabase("migrate_restart");
    const project = join(work, "migrate");
    mkdirSync(join(project, "migrations"), { recursive: true });
    await withPool(url, (pool) =>
      pool.query("create table public.slow (seconds int); insert into public.slow values (60)"),
    );
    writeFileSync(
      join(project, "migrations", "20240101000000_first.sql"),
      "-- migrate:up\ncreate table first_t (id int);\n\n-- migrate:down\ndrop table first_t;\n",
    );
    writeFileSync(
      join(project, "migrations", "20240102000000_second.sql"),
      "-- migrate:up\ncreate table second_t (id int);\nselect pg_sleep((select seconds from public.slow));\n\n-- migrate:down\ndrop table second_t;\n",
    );
    const args = ["migrate", "up", "--to", url];
    const running = startCli(args, {}, project);
    assert.ok(
      await waitForActive(adminUrl, "migrate_restart", "%pg_sleep%", running),
      `never saw the migration run:\n${tail(running.stderr())}`,
    );
    const run = await crashUnder(running, "migrate up");
    assert.match(run.stderr, new RegExp(`lost the connection to ${hostPortOf(url)}/migrate_restart`));
    assert.match(run.stderr, /applied in this run: 20240101000000;/);
    assert.match(run.stderr, /run `pgshift migrate up` again/);

    await withPool(url, (pool) => pool.query("update public.slow set seconds = 0"));
    const again = await startCli(args, {}, project).done;
    assert.equal(again.code, 0, tail(again.stderr));
    await withPool(url, async (pool) => {
      const { rows } = await pool.query("select version from pgshift.migrations order by version");
      assert.deepEqual(
        rows.map((r) => r.version),
        ["20240101000000", "20240102000000"],
      );
    });
  });
});

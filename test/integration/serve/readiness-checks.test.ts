import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import type pg from "pg";
import {
  destroyLocalInstance,
  localInstanceUrl,
  startLocalInstance,
  stopLocalInstance,
} from "../../../src/local/instance.ts";
import { migrate } from "../../../src/migrate/index.ts";
import { createPool, poolMetricsOf } from "../../../src/pg/pool.ts";
import { quoteIdent } from "../../../src/pg/quote.ts";
import {
  archiveLagCheck,
  migrationsCheck,
  replicationLagCheck,
  runCheck,
  startHealthServer,
} from "../../../src/serve/index.ts";
import { testBinaries } from "../../helpers/binaries.ts";
import { useTestDatabase } from "../../helpers/database.ts";

const db = useTestDatabase("ready");

function migration(dir: string, version: string, name: string, table: string): void {
  writeFileSync(
    join(dir, `${version}_${name}.sql`),
    `-- migrate:up\ncreate table ${table} (id int primary key);\n-- migrate:down\ndrop table ${table};\n`,
  );
}

describe("readiness: expected migrations applied", () => {
  const dir = mkdtempSync(join(tmpdir(), "pgshift-ready-migrations-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("/readyz is 503 naming the missing version until migrate up applies it, then 200", async () => {
    const pool = db().pool;
    migration(dir, "20250101000000", "first", "first_table");
    const health = await startHealthServer({ pool, checks: [migrationsCheck(pool, { dir })] });
    try {
      const none = await fetch(`${health.url}/readyz`);
      assert.equal(none.status, 503);
      const noneBody = (await none.json()) as { failing: { name: string; output: string }[] };
      assert.deepEqual(noneBody.failing, [
        {
          name: "migrations:applied",
          output: 'missing migrations: 20250101000000_first; run "pgshift migrate up"',
        },
      ]);

      assert.equal((await migrate({ pool, dir })).ok, true);
      const ready = await fetch(`${health.url}/readyz`);
      assert.equal(ready.status, 200);
      const readyBody = (await ready.json()) as { checks: Record<string, { observedValue: string }[]> };
      assert.equal(readyBody.checks["migrations:applied"]![0]!.observedValue, "20250101000000");

      // the application ships a newer migration than the database has
      migration(dir, "20250102000000", "second", "second_table");
      const behind = await fetch(`${health.url}/readyz`);
      assert.equal(behind.status, 503);
      const behindBody = (await behind.json()) as { failing: { name: string; output: string }[] };
      assert.match(behindBody.failing[0]!.output, /missing migrations: 20250102000000_second;/);
      assert.doesNotMatch(behindBody.failing[0]!.output, /20250101000000/);

      await migrate({ pool, dir });
      assert.equal((await fetch(`${health.url}/readyz`)).status, 200);

      const tooOld = await runCheck(migrationsCheck(pool, { atLeast: "20250103000000" }), 1_000);
      assert.equal(tooOld.status, "fail");
      assert.equal(tooOld.observedValue, "20250102000000");
      assert.match(tooOld.output ?? "", /missing migrations: 20250103000000;/);
    } finally {
      await health.close();
    }
  });

  it("a role that may not read the history fails the check saying what to grant", async () => {
    const { pool, url, name } = db();
    const role = `${name}_reader`;
    await pool.query(`create role ${quoteIdent(role)} login password 'reader-only-here'`);
    const asRole = new URL(url);
    asRole.username = role;
    asRole.password = "reader-only-here";
    const rolePool = createPool({ url: asRole.toString(), max: 1 });
    try {
      const result = await runCheck(migrationsCheck(rolePool, { dir }), 2_000);
      assert.equal(result.status, "fail");
      assert.equal(
        result.output,
        `${role} may not read pgshift.migrations: GRANT USAGE ON SCHEMA pgshift, SELECT ON pgshift.migrations to it (as the migrator)`,
      );
    } finally {
      await rolePool.end();
      await pool.query(`drop role ${quoteIdent(role)}`);
    }
  });

  it("counts pool checkouts that time out in db_client_connection_timeouts_total", async () => {
    const pool = createPool({ url: db().url, max: 1, connectTimeoutMs: 200 });
    const health = await startHealthServer({ pool, readyTimeoutMs: 1_000 });
    const held = await pool.connect();
    try {
      await assert.rejects(pool.connect(), /timeout exceeded when trying to connect/);
      assert.equal(poolMetricsOf(pool)?.checkoutTimeouts, 1);
    } finally {
      held.release();
    }
    try {
      assert.match(
        await (await fetch(`${health.url}/metrics`)).text(),
        /^db_client_connection_timeouts_total 1$/m,
      );
    } finally {
      await health.close();
      await pool.end();
    }
  });

  it("needs dir or atLeast", () => {
    assert.throws(() => migrationsCheck(db().pool, {}), /needs dir .* or atLeast/);
  });
});

describe("readiness: replication lag", () => {
  it("passes with 'no replicas' on a server nothing streams from", async () => {
    const result = await runCheck(replicationLagCheck(db().pool, 30), 1_000);
    assert.equal(result.status, "pass");
    assert.equal(result.observedValue, "no replicas");
  });
});

/** A private instance: archiving needs archive_mode and a restart, which the shared test server must not get. */
const instance = {
  name: `archive-${process.pid}`,
  baseDir: join(tmpdir(), "pgshift-archive"),
  ephemeral: true,
  binaries: testBinaries(),
};

async function promtool(text: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = execFile("promtool", ["check", "metrics"], (error, stdout, stderr) =>
      resolve({ code: error ? Number(error.code ?? 1) : 0, output: stdout + stderr }),
    );
    child.stdin?.end(text);
  });
}

describe("readiness and metrics: WAL archiving", () => {
  let pool: pg.Pool;
  before(async () => {
    await startLocalInstance(instance);
    pool = createPool({ url: localInstanceUrl(instance), max: 2 });
  });
  after(async () => {
    await pool?.end().catch(() => undefined);
    await destroyLocalInstance(instance).catch(() => undefined);
    rmSync(instance.baseDir, { recursive: true, force: true });
  });

  it("passes 'not configured' without archive_mode, fails while segments wait, passes once archived; promtool accepts /metrics", async () => {
    const off = await runCheck(archiveLagCheck(pool, 60), 2_000);
    assert.equal(off.status, "pass");
    assert.equal(off.observedValue, "not configured");

    await pool.query("alter system set archive_mode = on");
    await pool.query("alter system set archive_command = '/bin/false'");
    await pool.end();
    await stopLocalInstance(instance);
    await startLocalInstance(instance);
    pool = createPool({ url: localInstanceUrl(instance), max: 2 });

    await pool.query("create table wal_filler as select g from generate_series(1, 1000) g");
    await pool.query("select pg_switch_wal()");
    await sleep(300);
    const waiting = await runCheck(archiveLagCheck(pool, 0), 2_000);
    assert.equal(waiting.status, "fail", JSON.stringify(waiting));
    assert.equal(waiting.observedUnit, "s");
    assert.ok(Number(waiting.observedValue) > 0);
    assert.match(
      waiting.output ?? "",
      /WAL waits for the archiver for [\d.]+ s \(limit 0 s\): last archived none/,
    );
    assert.equal((await runCheck(archiveLagCheck(pool, 3_600), 2_000)).status, "pass");
    // a role that may not list archive_status/ gets the estimate from pg_stat_archiver: still failing
    await pool.query("create role watcher login password 'watcher-only-here'");
    const watcherUrl = new URL(localInstanceUrl(instance));
    watcherUrl.username = "watcher";
    watcherUrl.password = "watcher-only-here";
    const watcher = createPool({ url: watcherUrl.toString(), max: 1 });
    try {
      await assert.rejects(watcher.query("select * from pg_ls_archive_statusdir()"), /permission denied/);
      const estimated = await runCheck(archiveLagCheck(watcher, 0), 2_000);
      assert.equal(estimated.status, "fail", JSON.stringify(estimated));
    } finally {
      await watcher.end();
    }

    const health = await startHealthServer({ pool, checks: [archiveLagCheck(pool, 0)] });
    try {
      assert.equal((await fetch(`${health.url}/readyz`)).status, 503);
      const text = await (await fetch(`${health.url}/metrics`)).text();
      assert.match(text, /^pg_stat_archiver_lag_seconds (?!0$)[\d.e-]+$/m);
      assert.match(text, /^pg_stat_archiver_archived_total 0$/m);
      assert.match(text, /^# TYPE pg_stat_archiver_failed_total counter$/m);
      assert.match(text, /^# TYPE pg_stat_replication_replay_lag_seconds gauge$/m);
      assert.match(text, /^pg_stat_database_xact_commit_total\{datname="postgres"\} \d+$/m);
      // The text parses; the only lint findings are the two names kept on purpose: OpenTelemetry's
      // db.client.connection.count and postgres_exporter's pg_stat_activity_count, which dashboards query.
      const lint = await promtool(text);
      assert.deepEqual(
        lint.output.split("\n").filter((line) => line.trim()),
        [
          'db_client_connection_count non-histogram and non-summary metrics should not have "_count" suffix',
          'pg_stat_activity_count non-histogram and non-summary metrics should not have "_count" suffix',
        ],
        `promtool check metrics (exit ${lint.code}):\n${lint.output}`,
      );

      await pool.query("alter system set archive_command = '/bin/true'");
      await pool.query("select pg_reload_conf()");
      const started = Date.now();
      for (;;) {
        await pool.query("insert into wal_filler select 1");
        await pool.query("select pg_switch_wal()");
        const result = await runCheck(archiveLagCheck(pool, 0), 2_000);
        if (result.status === "pass") {
          assert.equal(result.observedValue, 0);
          break;
        }
        if (Date.now() - started > 30_000)
          assert.fail(`archiving did not catch up: ${JSON.stringify(result)}`);
        await sleep(200);
      }
      assert.equal((await fetch(`${health.url}/readyz`)).status, 200);
      assert.match(
        await (await fetch(`${health.url}/metrics`)).text(),
        /^pg_stat_archiver_archived_total [1-9]\d*$/m,
      );
      const watcherAgain = createPool({ url: watcherUrl.toString(), max: 1 });
      try {
        assert.equal((await runCheck(archiveLagCheck(watcherAgain, 0), 2_000)).status, "pass");
      } finally {
        await watcherAgain.end();
      }
    } finally {
      await health.close();
    }
  });
});

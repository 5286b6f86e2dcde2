import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { createPool } from "../../../src/pg/pool.ts";
import { maintenanceChecks } from "../../../src/serve/maintenance-checks.ts";
import { runCli } from "../../helpers/cli.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import { type TestBouncer, startTestBouncer } from "../../helpers/pgbouncer.ts";

const db = useTestDatabase("maint");

/** Runs statements on one session, then flushes its statistics so other sessions see them at once. */
async function inOneSession(url: string, statements: readonly string[]): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (const sql of statements) await client.query(sql);
    await client.query("select pg_stat_force_next_flush()");
  } finally {
    await client.end();
  }
}

describe("maintenance checks", () => {
  it("autovacuum off per table, dead tuples over the threshold, never analyzed; ANALYZE and VACUUM clear them", async () => {
    const { pool, url } = db();
    await inOneSession(url, [
      "create table churn (id int primary key, body text) with (autovacuum_enabled = false)",
      "insert into churn select g, 'x' from generate_series(1, 20000) g",
      "delete from churn where id <= 15000",
      "create table steady (id int primary key) with (autovacuum_enabled = false)",
      "insert into steady select generate_series(1, 100)",
      "create table empty_one (id int)",
    ]);
    const report = await maintenanceChecks(pool, { url });
    assert.equal(report.autovacuum.on, true);
    assert.equal(report.autovacuum.trackCounts, true);
    assert.deepEqual(report.autovacuum.disabledTables, [
      { schema: "public", table: "churn" },
      { schema: "public", table: "steady" },
    ]);
    assert.deepEqual(
      report.deadTuples.map((d) => ({ ...d, lastVacuum: undefined })),
      [
        {
          schema: "public",
          table: "churn",
          deadTuples: 15000,
          liveTuples: 5000,
          ratio: 0.75,
          lastVacuum: undefined,
        },
      ],
    );
    assert.deepEqual(report.neverAnalyzed, [
      { schema: "public", table: "churn" },
      { schema: "public", table: "steady" },
    ]);
    assert.equal(report.pooler.detected, null);
    assert.deepEqual(report.pooler.hazards, []);
    assert.ok(
      report.warnings.includes("autovacuum is turned off for public.churn (autovacuum_enabled = false)"),
    );
    assert.ok(
      report.warnings.some((w) => w.startsWith("public.churn has 15000 dead tuples (75 % of its tuples)")),
      report.warnings.join("\n"),
    );

    // a higher threshold hides it; the ratio counts too
    assert.deepEqual((await maintenanceChecks(pool, { url, deadTuplesMin: 20_000 })).deadTuples, []);
    assert.deepEqual((await maintenanceChecks(pool, { url, deadRatioMin: 0.8 })).deadTuples, []);

    await inOneSession(url, ["vacuum analyze churn", "analyze steady"]);
    const after = await maintenanceChecks(pool, { url });
    assert.deepEqual(after.deadTuples, []);
    assert.deepEqual(after.neverAnalyzed, []);
  });

  it("pg_stat_statements: not installed says how to enable it; installed lists the slowest statements", async () => {
    const { pool, url } = db();
    const before = await maintenanceChecks(pool, { url });
    assert.equal(before.statements.state, "not_installed");
    assert.match(
      (before.statements as { hint: string }).hint,
      /shared_preload_libraries .* CREATE EXTENSION pg_stat_statements/,
    );
    // the test server is a managed instance: pgshift preloads the library there
    await pool.query("create extension pg_stat_statements");
    await pool.query("select pg_sleep(0.5)");
    const report = await maintenanceChecks(pool, { url, slowest: 3 });
    assert.equal(report.statements.state, "installed");
    const slowest = report.statements.state === "installed" ? report.statements.slowest : [];
    assert.ok(slowest.length <= 3);
    assert.equal(slowest[0]?.query, "select pg_sleep($1)");
    assert.ok(slowest[0]!.meanMs >= 500, `${slowest[0]!.meanMs} ms`);
    assert.equal(slowest[0]!.calls, 1);
  });
});

describe("maintenance checks through PgBouncer (transaction mode)", () => {
  let bouncer: TestBouncer;
  const sessions: pg.Client[] = [];
  before(async () => {
    bouncer = await startTestBouncer({ serverUrl: db().url });
  });
  after(async () => {
    for (const s of sessions) await s.end().catch(() => undefined);
    await bouncer?.stop();
  });

  it("detects PgBouncer and names the sessions holding advisory locks, LISTENing, or SET without LOCAL", async () => {
    const { url, name } = db();
    const run = async (applicationName: string, ...statements: string[]) => {
      const client = new pg.Client({ connectionString: url, application_name: applicationName });
      await client.connect();
      sessions.push(client);
      for (const sql of statements) await client.query(sql);
      return (await client.query<{ pid: number }>("select pg_backend_pid() as pid")).rows[0]!.pid;
    };
    // hazards made on direct sessions, so PgBouncer's own server connections (the check's) stay clean
    const locker = await run("locker", "select pg_advisory_lock(42)");
    const listener = await run("listener", "listen jobs");
    const setter = await run("setter", "set search_path = public");
    // what transaction pooling allows: transaction-level lock, SET LOCAL
    await run(
      "fine",
      "select pg_advisory_xact_lock(7)",
      "begin",
      "set local statement_timeout = 1000",
      "commit",
    );
    // the last statement is what pg_stat_activity shows: rerun the hazardous ones' text last
    for (const [client, sql] of [
      [sessions[1]!, "listen jobs"],
      [sessions[2]!, "set search_path = public"],
    ] as const)
      await client.query(sql);

    const pool = createPool({ url: bouncer.url(name), max: 1 });
    try {
      const report = await maintenanceChecks(pool, { url: bouncer.url(name), pgbouncerVersion: "1.18.0" });
      assert.equal(report.pooler.detected, "pgbouncer");
      assert.deepEqual(
        report.pooler.hazards.map((h) => [h.kind, h.pid, h.applicationName]).sort(),
        [
          ["named_prepared_statements", undefined, undefined],
          ["listen", listener, "listener"],
          ["session_advisory_lock", locker, "locker"],
          ["session_set", setter, "setter"],
        ].sort(),
      );
      assert.ok(
        report.warnings.some((w) =>
          /^transaction pooling: SET without LOCAL leaks .*set search_path = public/.test(w),
        ),
        report.warnings.join("\n"),
      );

      const skipped = await maintenanceChecks(pool, { url: bouncer.url(name), pooler: "none" });
      assert.equal(skipped.pooler.detected, null);
      assert.deepEqual(skipped.pooler.hazards, []);
      const modern = await maintenanceChecks(pool, { url: bouncer.url(name), pgbouncerVersion: "1.22.1" });
      assert.ok(!modern.pooler.hazards.some((h) => h.kind === "named_prepared_statements"));
    } finally {
      await pool.end();
    }

    // the CLI's sessions send lock_timeout as a startup parameter, which this PgBouncer does not ignore
    // (pgshift's own PgBouncer config does): its part runs on the server directly, with the pooler named
    const cli = await runCli(["check", "--to", url, "--json", "--pooler", "pgbouncer"]);
    assert.equal(cli.code, 0, cli.stderr);
    const json = JSON.parse(cli.stdout) as {
      maintenance: { pooler: { detected: string; hazards: unknown[] } };
    };
    assert.equal(json.maintenance.pooler.detected, "pgbouncer");
    assert.equal(json.maintenance.pooler.hazards.length, 3);
    const text = await runCli(["check", "--to", url, "--pooler", "pgbouncer"]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^ {2}pooler: pgbouncer, 3 transaction-pooling hazard\(s\)$/m);
    assert.match(
      text.stdout,
      /^ {2}- transaction pooling: a session holds 1 advisory lock\(s\) outside a transaction; use pg_advisory_xact_lock \(pid \d+, locker\)$/m,
    );
  });

  it("check refuses a bad --pooler or --dead-ratio with a usage error", async () => {
    const bad = await runCli(["check", "--to", db().url, "--pooler", "odyssey"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--pooler must be auto, pgbouncer or none, got "odyssey"/);
    const ratio = await runCli(["check", "--to", db().url, "--dead-ratio", "2"]);
    assert.equal(ratio.code, 2);
    assert.match(ratio.stderr, /--dead-ratio must be a number from 0 to 1, got "2"/);
  });
});

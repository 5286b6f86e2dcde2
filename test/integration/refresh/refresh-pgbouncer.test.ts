// Switch mode "pgbouncer": two databases behind one alias of a real PgBouncer 1.18 (transaction mode).
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import pg from "pg";
import {
  PgbouncerConfigDriftError,
  PgbouncerPauseTimeoutError,
  PgbouncerWaitCloseStuckError,
  type PgbouncerSwitch,
  pgbouncerRefreshStatus,
  RefreshFailedError,
  refreshViaPgbouncer,
  rollbackViaPgbouncer,
  singleTableDataset,
} from "../../../src/refresh/index.ts";
import { runCli } from "../../helpers/cli.ts";
import { createTestDatabase, serverUrl, type TestDatabase } from "../../helpers/database.ts";
import { writeTemp } from "../documents/fixtures.ts";
import { type AliasBouncer, startAliasBouncer } from "../../helpers/pgbouncer.ts";

const ndjson = (records: object[]) => `${records.map((r) => JSON.stringify(r)).join("\n")}\n`;
const records = (n: number, v: number) => Array.from({ length: n }, (_, i) => ({ id: `k${i}`, v }));

interface Setup {
  blue: TestDatabase;
  green: TestDatabase;
  bouncer: AliasBouncer;
  settings: (mode?: PgbouncerSwitch["mode"], pauseBudgetMs?: number) => PgbouncerSwitch;
  /** A query through the alias, as an application runs it. */
  viaAlias: (sql: string) => Promise<pg.QueryResultRow[]>;
  /** The CLI flags of `--switch pgbouncer` for these two databases and this PgBouncer. */
  switchFlags: string[];
}

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

async function setup(): Promise<Setup> {
  const blue = await createTestDatabase("pgb_blue");
  const green = await createTestDatabase("pgb_green");
  const bouncer = await startAliasBouncer(serverUrl(), "app", blue.name);
  cleanups.push(async () => {
    await bouncer.stop();
    await blue.drop();
    await green.drop();
  });
  const settings = (
    mode: PgbouncerSwitch["mode"] = "pgbouncer",
    pauseBudgetMs?: number,
  ): PgbouncerSwitch => ({
    mode,
    adminUrl: bouncer.adminUrl,
    alias: "app",
    configFile: bouncer.configFile,
    databases: { blue: blue.url, green: green.url },
    ...(pauseBudgetMs !== undefined ? { pauseBudgetMs } : {}),
  });
  const viaAlias = async (sql: string) => {
    const client = new pg.Client({ connectionString: bouncer.aliasUrl });
    await client.connect();
    try {
      return (await client.query(sql)).rows;
    } finally {
      await client.end();
    }
  };
  const switchFlags = [
    "--to",
    blue.url,
    "--switch",
    "pgbouncer",
    "--pgbouncer-admin",
    bouncer.adminUrl,
    "--pgbouncer-config",
    bouncer.configFile,
    "--pgbouncer-alias",
    "app",
    "--green",
    green.url,
  ];
  return { blue, green, bouncer, settings, viaAlias, switchFlags };
}

async function values(db: TestDatabase): Promise<string[]> {
  const { rows } = await db.pool.query(`select id, doc->>'v' as v from cat.items order by id`);
  return rows.map((r) => `${r.id}=${r.v}`);
}

test("a refresh through PgBouncer with 10 readers on the alias: 0 failed queries, readers see the new version, the old database keeps the old; rollback switches back", async (t) => {
  const { blue, green, bouncer, settings, viaAlias } = await setup();
  const path = await writeTemp("items.ndjson", ndjson(records(200, 1)));
  const dataset = singleTableDataset({ schema: "cat", table: "items", from: `ndjson:${path}`, key: "/id" });

  const first = await refreshViaPgbouncer({ dataset, switch: settings() });
  assert.equal(first.status, "switched");
  assert.deepEqual([first.version, first.previousLive, first.live], [1, "blue", "green"]);
  assert.deepEqual(await viaAlias("select current_database() as db"), [{ db: green.name }]);

  await writeFile(path, ndjson(records(300, 2)));
  const configBefore = await readFile(bouncer.configFile, "utf8");
  const second = await refreshViaPgbouncer({ dataset, switch: settings(), probe: 10, reason: "nightly" });
  assert.equal(second.status, "switched");
  assert.deepEqual([second.version, second.previousVersion, second.live], [2, 1, "blue"]);
  assert.ok(second.probe, "the probe ran");
  assert.equal(second.probe.skipped, undefined);
  assert.ok(second.probe.queries > 50, `readers ran queries (${second.probe.queries})`);
  assert.equal(second.probe.failed, 0, JSON.stringify(second.probe.failedBySqlstate));
  // blue answered until the PAUSE, green from the RESUME on: the two never answered at the same time (one
  // server, one clock)
  assert.equal(second.probe.versionsSeen, 2);
  assert.equal(second.probe.mixedWindowMs, 0);
  assert.equal(second.switch!.mode, "pgbouncer");
  assert.ok(second.switch!.pauseMs !== null && second.switch!.stallMs !== null);
  t.diagnostic(
    `pgbouncer switch: pause ${second.switch!.pauseMs!.toFixed(1)} ms, stall ${second.switch!.stallMs!.toFixed(1)} ms, reload ${second.switch!.reloadMs.toFixed(1)} ms; readers ${second.probe.queries} queries, p50 ${second.probe.p50Ms.toFixed(1)} ms, p99 ${second.probe.p99Ms.toFixed(1)} ms, max ${second.probe.maxMs.toFixed(1)} ms`,
  );

  // only the alias's line changed
  const configAfter = await readFile(bouncer.configFile, "utf8");
  const changed = configAfter.split("\n").filter((line, i) => line !== configBefore.split("\n")[i]);
  assert.equal(changed.length, 1);
  assert.match(changed[0]!, new RegExp(`^app = host=.* dbname=${blue.name} `));
  assert.equal(configAfter.split("\n").length, configBefore.split("\n").length);

  assert.deepEqual(await viaAlias("select current_database() as db, count(*)::int as n from cat.items"), [
    { db: blue.name, n: 300 },
  ]);
  assert.deepEqual(await viaAlias("select doc->>'v' as v from cat.items where id = 'k0'"), [{ v: "2" }]);
  assert.equal((await values(green)).length, 200, "green still holds version 1");
  assert.ok((await values(green)).every((v) => v.endsWith("=1")));

  const status = await pgbouncerRefreshStatus({ dataset: "cat", switch: settings() });
  assert.equal(status.liveDatabase, "blue");
  assert.equal(status.blue.live!.version, 2);
  assert.equal(status.blue.live!.reason, "nightly");
  assert.deepEqual(status.blue.live!.counts, { items: 300 });
  assert.equal(status.green.live, null);
  assert.equal(status.green.previous[0]!.version, 1);

  const rollback = await rollbackViaPgbouncer({ dataset: "cat", switch: settings() });
  assert.deepEqual([rollback.version, rollback.rolledBack, rollback.live], [1, 2, "green"]);
  assert.deepEqual(await viaAlias("select current_database() as db, count(*)::int as n from cat.items"), [
    { db: green.name, n: 200 },
  ]);
  const after = await pgbouncerRefreshStatus({ dataset: "cat", switch: settings() });
  assert.equal(after.liveDatabase, "green");
  assert.equal(after.green.live!.version, 1);
  assert.equal(after.blue.previous[0]!.version, 2);
  assert.equal(after.green.live!.reason, "rollback from version 2");
});

test("--delta with the pgbouncer switch is refused with a usage error", async () => {
  const { settings } = await setup();
  const path = await writeTemp("items.ndjson", ndjson(records(3, 1)));
  const dataset = singleTableDataset({ schema: "cat", table: "items", from: `ndjson:${path}`, key: "/id" });
  await assert.rejects(
    () => refreshViaPgbouncer({ dataset, switch: settings(), delta: true }),
    (error: Error & { code?: string }) => {
      assert.equal(error.code, "usage");
      assert.match(error.message, /use --switch schema/);
      return true;
    },
  );
});

test("PAUSE longer than the budget: the refresh fails naming the budget and the transaction; the alias stays on blue, clients keep working, the config is restored", async () => {
  const { blue, bouncer, settings, viaAlias } = await setup();
  const path = await writeTemp("items.ndjson", ndjson(records(20, 1)));
  const dataset = singleTableDataset({ schema: "cat", table: "items", from: `ndjson:${path}`, key: "/id" });
  const configBefore = await readFile(bouncer.configFile, "utf8");
  const holder = new pg.Client({ connectionString: bouncer.aliasUrl, application_name: "long-report" });
  await holder.connect();
  try {
    await holder.query("begin");
    await holder.query("select 1");
    await assert.rejects(
      () => refreshViaPgbouncer({ dataset, switch: settings("pgbouncer", 700) }),
      (error: unknown) => {
        assert.ok(error instanceof RefreshFailedError);
        assert.equal(error.step, "switch");
        assert.ok(error.cause instanceof PgbouncerPauseTimeoutError, String(error.cause));
        assert.match(error.message, /pause budget of 700 ms/);
        assert.match(error.message, /pid \d+.*in a transaction for [\d.]+ s/);
        assert.match(error.message, /live version is untouched/);
        assert.match(error.message, /left behind: schema "cat" in the green database \(verified, not live/);
        return true;
      },
    );
    assert.equal(await readFile(bouncer.configFile, "utf8"), configBefore, "config restored byte for byte");
    // RESUME was sent: a new client goes through at once, to blue
    assert.deepEqual(await viaAlias("select current_database() as db"), [{ db: blue.name }]);
    // the held transaction is still fine on blue
    assert.deepEqual((await holder.query("select current_database() as db")).rows, [{ db: blue.name }]);
    await holder.query("commit");
    const admin = new pg.Client({ connectionString: bouncer.adminUrl });
    await admin.connect();
    const { rows } = await admin.query("SHOW DATABASES");
    await admin.end();
    const app = rows.find((r) => r.name === "app");
    assert.equal(app.database, blue.name);
    assert.equal(Number(app.paused), 0);
    const status = await pgbouncerRefreshStatus({ dataset: "cat", switch: settings() });
    assert.equal(status.liveDatabase, "blue");
    assert.equal(status.green.versions[0]!.status, "failed");
  } finally {
    await holder.end().catch(() => undefined);
  }
});

test("the WAIT_CLOSE trap: after one WAIT_CLOSE, PAUSE answers WAIT_CLOSE at once; the refresh refuses, says to restart pgbouncer, live untouched", async () => {
  const { blue, bouncer, settings, viaAlias } = await setup();
  const path = await writeTemp("items.ndjson", ndjson(records(20, 1)));
  const dataset = singleTableDataset({ schema: "cat", table: "items", from: `ndjson:${path}`, key: "/id" });
  const admin = new pg.Client({ connectionString: bouncer.adminUrl });
  await admin.connect();
  await admin.query("WAIT_CLOSE app");
  await admin.end();
  const configBefore = await readFile(bouncer.configFile, "utf8");
  const holder = new pg.Client({ connectionString: bouncer.aliasUrl });
  await holder.connect();
  try {
    await holder.query("begin");
    await holder.query("select 1");
    await assert.rejects(
      () => refreshViaPgbouncer({ dataset, switch: settings() }),
      (error: unknown) => {
        assert.ok(error instanceof RefreshFailedError);
        assert.ok(error.cause instanceof PgbouncerWaitCloseStuckError, String(error.cause));
        assert.match(error.message, /answered "WAIT_CLOSE"/);
        assert.match(error.message, /restart pgbouncer/);
        return true;
      },
    );
    assert.equal(await readFile(bouncer.configFile, "utf8"), configBefore);
    assert.deepEqual(await viaAlias("select current_database() as db"), [{ db: blue.name }]);
    await holder.query("commit");
  } finally {
    await holder.end().catch(() => undefined);
  }
});

test("--switch pgbouncer-reload: new transactions go to green at once, one in flight finishes on blue", async () => {
  const { blue, green, bouncer, settings, viaAlias } = await setup();
  const path = await writeTemp("items.ndjson", ndjson(records(20, 1)));
  const dataset = singleTableDataset({ schema: "cat", table: "items", from: `ndjson:${path}`, key: "/id" });
  const holder = new pg.Client({ connectionString: bouncer.aliasUrl });
  await holder.connect();
  try {
    await holder.query("begin");
    assert.deepEqual((await holder.query("select current_database() as db")).rows, [{ db: blue.name }]);
    const result = await refreshViaPgbouncer({ dataset, switch: settings("pgbouncer-reload", 300) });
    assert.equal(result.status, "switched");
    assert.equal(result.live, "green");
    assert.equal(result.switch!.pauseMs, null, "no PAUSE in reload mode");
    assert.deepEqual(await viaAlias("select current_database() as db, count(*)::int as n from cat.items"), [
      { db: green.name, n: 20 },
    ]);
    // the mixed window: the transaction begun before the switch still runs on blue
    assert.deepEqual((await holder.query("select current_database() as db")).rows, [{ db: blue.name }]);
    await holder.query("commit");
    assert.deepEqual((await holder.query("select current_database() as db")).rows, [{ db: green.name }]);
  } finally {
    await holder.end().catch(() => undefined);
  }
});

test("pgshift refresh run / status / rollback --switch pgbouncer as a user runs them", async () => {
  const { blue, viaAlias, switchFlags } = await setup();
  const path = await writeTemp("items.ndjson", ndjson(records(5, 1)));
  const run = (...extra: string[]) =>
    runCli([
      "refresh",
      "run",
      `ndjson:${path}`,
      "--schema",
      "cat",
      "--table",
      "items",
      "--key",
      "/id",
      ...switchFlags,
      ...extra,
    ]);
  const first = await run("--pause-budget", "2s");
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /version 1 is live in the green database/);
  assert.match(first.stdout, /PAUSE took [\d.]+ ms, clients stalled [\d.]+ ms/);
  await writeFile(path, ndjson(records(7, 2)));
  const reportFile = join(await mkdtemp(join(tmpdir(), "pgb-report-")), "refresh.json");
  process.env.PGB_TEST_REPORT_KEY = "a-secret-for-the-report";
  const second = await run("--probe", "3", "--report", reportFile, "--hmac-key-env", "PGB_TEST_REPORT_KEY");
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stdout, /version 2 is live in the blue database .* keeps version 1 for rollback/);
  assert.match(second.stdout, /report: .*refresh\.json \(signed, hmac-sha256\)/);
  const report = JSON.parse(await readFile(reportFile, "utf8"));
  assert.equal(report.kind, "pgshift-refresh-report");
  assert.equal(report.version, 2);
  assert.equal(report.live, "blue");
  assert.equal(report.signature.algorithm, "hmac-sha256");
  const recorded = await blue.pool.query(
    "select report->>'path' as path, report->>'sha256' as sha from pgshift.refresh_versions where dataset = 'cat' and version = 2",
  );
  assert.equal(recorded.rows[0].path, reportFile);
  assert.equal(
    recorded.rows[0].sha,
    createHash("sha256")
      .update(await readFile(reportFile))
      .digest("hex"),
  );
  assert.match(second.stdout, /probe \(through PgBouncer\): \d+ queries, 0 failed/);
  assert.deepEqual(await viaAlias("select count(*)::int as n from cat.items"), [{ n: 7 }]);

  const delta = await run("--delta");
  assert.equal(delta.code, 2, delta.stderr);
  assert.match(delta.stderr, /use --switch schema/);
  const keep = await run("--keep", "1");
  assert.equal(keep.code, 2, keep.stderr);
  assert.match(
    keep.stderr,
    /--keep work with --switch schema only: in the PgBouncer modes the idle database holds the one previous version/,
  );
  const missing = await runCli(["refresh", "status", "cat", "--to", blue.url, "--switch", "pgbouncer"]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /needs --pgbouncer-admin, --pgbouncer-config, --pgbouncer-alias, --green/);

  const status = await runCli(["refresh", "status", "cat", ...switchFlags, "--json"]);
  assert.equal(status.code, 0, status.stderr);
  const parsed = JSON.parse(status.stdout);
  assert.equal(parsed.liveDatabase, "blue");
  assert.equal(parsed.blue.live.version, 2);
  const rollback = await runCli(["refresh", "rollback", "cat", ...switchFlags]);
  assert.equal(rollback.code, 0, rollback.stderr);
  assert.match(rollback.stdout, /version 1 is live again in the green database/);
  assert.deepEqual(await viaAlias("select count(*)::int as n from cat.items"), [{ n: 5 }]);
  const text = await runCli(["refresh", "status", "cat", ...switchFlags]);
  assert.match(text.stdout, /alias app points at the green database/);
});

test("verification fails: nothing switches, the built schema is dropped, the alias stays", async () => {
  const { blue, green, bouncer, settings, viaAlias } = await setup();
  const path = await writeTemp("items.ndjson", ndjson(records(4, 1)));
  const dataset = singleTableDataset({
    schema: "cat",
    table: "items",
    from: `ndjson:${path}`,
    key: "/id",
    checks: ["select count(*) > 100 from items"],
  });
  const configBefore = await readFile(bouncer.configFile, "utf8");
  const result = await refreshViaPgbouncer({ dataset, switch: settings() });
  assert.equal(result.status, "verification_failed");
  assert.equal(result.live, "blue");
  assert.equal(result.switch, null);
  assert.equal(result.checks[0]!.ok, false);
  assert.equal(await readFile(bouncer.configFile, "utf8"), configBefore);
  assert.deepEqual(await viaAlias("select current_database() as db"), [{ db: blue.name }]);
  const { rows } = await green.pool.query(
    "select count(*)::int as n from pg_namespace where nspname = 'cat'",
  );
  assert.equal(rows[0].n, 0);
  const status = await pgbouncerRefreshStatus({ dataset: "cat", switch: settings() });
  assert.equal(status.green.versions[0]!.status, "failed");
});

test("a switch killed between the config rewrite and RELOAD is detected: refresh and status refuse to guess which database is live", async () => {
  const { blue, green, bouncer, settings, viaAlias, switchFlags } = await setup();
  const path = await writeTemp("items.ndjson", ndjson(records(5, 1)));
  const dataset = singleTableDataset({ schema: "cat", table: "items", from: `ndjson:${path}`, key: "/id" });
  // what the interrupted switch leaves: the file names green, the running PgBouncer still serves blue
  const configBefore = await readFile(bouncer.configFile, "utf8");
  await writeFile(bouncer.configFile, configBefore.replace(`dbname=${blue.name}`, `dbname=${green.name}`));
  await assert.rejects(
    refreshViaPgbouncer({ dataset, switch: settings() }),
    (error: unknown) =>
      error instanceof PgbouncerConfigDriftError &&
      error.configured === green.name &&
      error.served === blue.name &&
      /switch was probably interrupted between the config rewrite and RELOAD/.test(error.message),
  );
  await assert.rejects(
    pgbouncerRefreshStatus({ dataset: "cat", switch: settings() }),
    PgbouncerConfigDriftError,
  );
  // nothing was built into blue, which applications still reach
  const { rows } = await blue.pool.query("select count(*)::int as n from pg_namespace where nspname = 'cat'");
  assert.equal(rows[0].n, 0);
  assert.deepEqual(await viaAlias("select current_database() as db"), [{ db: blue.name }]);
  // the CLI says the same, with exit 1
  const cli = await runCli(["refresh", "status", "cat", ...switchFlags]);
  assert.equal(cli.code, 1, cli.stderr);
  assert.match(cli.stderr, /running PgBouncer serves/);
  // once the file agrees with PgBouncer again, refresh runs
  await writeFile(bouncer.configFile, configBefore);
  const result = await refreshViaPgbouncer({ dataset, switch: settings() });
  assert.equal(result.live, "green");
});

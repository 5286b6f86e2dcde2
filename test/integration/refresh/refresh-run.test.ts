import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { test } from "node:test";
import pg from "pg";
import { LockBusyError } from "../../../src/pg/advisory-lock.ts";
import {
  OldSnapshotError,
  pruneDataset,
  RefreshFailedError,
  refreshDataset,
  refreshLockKey,
  refreshStatus,
  rollbackDataset,
  singleTableDataset,
} from "../../../src/refresh/index.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import { writeTemp } from "../documents/fixtures.ts";

const db = useTestDatabase("refresh_run");

const ndjson = (records: object[]) => `${records.map((r) => JSON.stringify(r)).join("\n")}\n`;
const records = (n: number, v: number) => Array.from({ length: n }, (_, i) => ({ id: `k${i}`, v }));

async function schemas(prefix: string): Promise<string[]> {
  const { rows } = await db().pool.query(
    "select nspname from pg_namespace where nspname like $1 || '%' order by nspname",
    [prefix],
  );
  return rows.map((r) => r.nspname);
}

async function values(schema: string): Promise<string[]> {
  const { rows } = await db().pool.query(`select id, doc->>'v' as v from "${schema}".items order by id`);
  return rows.map((r) => `${r.id}=${r.v}`);
}

test("run builds, verifies and swaps; the old version is kept; rollback and prune", async () => {
  const path = await writeTemp("items.ndjson", ndjson(records(3, 1)));
  const dataset = singleTableDataset({ schema: "cat", table: "items", from: `ndjson:${path}`, key: "/id" });
  const first = await refreshDataset({ pool: db().pool, dataset, reason: "first load", by: "tester" });
  assert.equal(first.status, "switched");
  assert.equal(first.version, 1);
  assert.equal(first.previousVersion, null);
  assert.deepEqual(await values("cat"), ["k0=1", "k1=1", "k2=1"]);
  assert.deepEqual(await schemas("cat"), ["cat"]);
  assert.equal(first.tables[0]!.check!.identical, true);
  assert.equal(first.tables[0]!.check!.rows, 3);

  await writeFile(path, ndjson(records(4, 2)));
  const second = await refreshDataset({ pool: db().pool, dataset });
  assert.equal(second.status, "switched");
  assert.deepEqual([second.version, second.previousVersion, second.previousSchema], [2, 1, "cat__prev_1"]);
  assert.equal(second.swap!.attempts, 1);
  assert.deepEqual(await values("cat"), ["k0=2", "k1=2", "k2=2", "k3=2"]);
  assert.deepEqual(await values("cat__prev_1"), ["k0=1", "k1=1", "k2=1"]);
  assert.deepEqual(await schemas("cat"), ["cat", "cat__prev_1"]);

  const status = await refreshStatus({ pool: db().pool, dataset: "cat" });
  assert.equal(status.live!.version, 2);
  assert.deepEqual(status.live!.counts, { items: 4 });
  assert.deepEqual(
    status.previous.map((v) => [v.version, v.schemaName]),
    [[1, "cat__prev_1"]],
  );
  assert.equal(status.versions.find((v) => v.version === 1)!.switchedBy, "tester");
  assert.equal(status.versions.find((v) => v.version === 1)!.reason, "first load");
  assert.equal((status.live!.sources[0] as { table: string }).table, "items");

  const back = await rollbackDataset({ pool: db().pool, dataset: "cat", reason: "bad data" });
  assert.deepEqual([back.version, back.rolledBack], [1, 2]);
  assert.deepEqual(await values("cat"), ["k0=1", "k1=1", "k2=1"]);
  assert.deepEqual(await values("cat__prev_2"), ["k0=2", "k1=2", "k2=2", "k3=2"]);
  const afterRollback = await refreshStatus({ pool: db().pool, dataset: "cat" });
  assert.equal(afterRollback.live!.version, 1);
  assert.equal(afterRollback.live!.reason, "bad data");

  // a new run after the rollback keeps version 1 as previous; prune keeps the newest one
  await writeFile(path, ndjson(records(2, 3)));
  const third = await refreshDataset({ pool: db().pool, dataset });
  assert.deepEqual([third.version, third.previousSchema], [3, "cat__prev_1"]);
  assert.deepEqual(await schemas("cat"), ["cat", "cat__prev_1", "cat__prev_2"]);
  const pruned = await pruneDataset({ pool: db().pool, dataset: "cat", keep: 1 });
  assert.deepEqual(pruned.kept, [2]);
  assert.deepEqual(pruned.pruned, [{ version: 1, schema: "cat__prev_1" }]);
  assert.deepEqual(await schemas("cat"), ["cat", "cat__prev_2"]);
  const final = await refreshStatus({ pool: db().pool, dataset: "cat" });
  assert.deepEqual(
    final.versions.map((v) => [v.version, v.status]),
    [
      [3, "live"],
      [2, "previous"],
      [1, "pruned"],
    ],
  );
});

test("a failing --check or a bad source leaves live untouched and drops the next schema", async () => {
  const path = await writeTemp("items.ndjson", ndjson(records(2, 1)));
  const dataset = singleTableDataset({ schema: "chk", table: "items", from: `ndjson:${path}`, key: "/id" });
  await refreshDataset({ pool: db().pool, dataset });

  await writeFile(path, ndjson(records(5, 2)));
  const checked = await refreshDataset({
    pool: db().pool,
    dataset: { ...dataset, checks: ["select count(*) < 3 from items", "select count(*) = 5 from items"] },
  });
  assert.equal(checked.status, "verification_failed");
  assert.deepEqual(
    checked.checks.map((c) => c.ok),
    [false, true],
  );
  assert.match(checked.checks[0]!.error!, /returned false/);
  assert.deepEqual(await values("chk"), ["k0=1", "k1=1"]);
  assert.deepEqual(await schemas("chk"), ["chk"]);

  await writeFile(path, `${JSON.stringify({ id: "k0", v: 3 })}\n{"id": "k1", broken\n`);
  await assert.rejects(refreshDataset({ pool: db().pool, dataset }), (error: unknown) => {
    assert.ok(error instanceof RefreshFailedError, String(error));
    assert.equal(error.step, "build");
    assert.equal(error.leftBehind, null);
    return true;
  });
  assert.deepEqual(await values("chk"), ["k0=1", "k1=1"]);
  assert.deepEqual(await schemas("chk"), ["chk"]);
  const status = await refreshStatus({ pool: db().pool, dataset: "chk" });
  assert.deepEqual(
    status.versions.map((v) => [v.version, v.status]),
    [
      [3, "failed"],
      [2, "failed"],
      [1, "live"],
    ],
  );
  assert.equal((status.versions[0]!.error as { step: string }).step, "build");
});

test("a failing swap (the previous name taken meanwhile) rolls back: live untouched, next dropped", async () => {
  const path = await writeTemp("items.ndjson", ndjson(records(2, 1)));
  const dataset = singleTableDataset({ schema: "swp", table: "items", from: `ndjson:${path}`, key: "/id" });
  await refreshDataset({ pool: db().pool, dataset });
  await writeFile(path, ndjson(records(3, 2)));
  await assert.rejects(
    refreshDataset({
      pool: db().pool,
      dataset,
      onStep: async (step) => {
        if (step === "swap") await db().pool.query("create schema swp__prev_1");
      },
    }),
    (error: unknown) => {
      assert.ok(error instanceof RefreshFailedError, String(error));
      assert.equal(error.step, "swap");
      assert.equal((error.cause as { sqlstate?: string }).sqlstate, "42P06");
      return true;
    },
  );
  assert.deepEqual(await values("swp"), ["k0=1", "k1=1"]);
  assert.deepEqual(await schemas("swp"), ["swp", "swp__prev_1"]);
  const status = await refreshStatus({ pool: db().pool, dataset: "swp" });
  assert.deepEqual(
    status.versions.map((v) => [v.version, v.status]),
    [
      [2, "failed"],
      [1, "live"],
    ],
  );
});

test("a second refresh of the same dataset is refused, naming the holder", async () => {
  const path = await writeTemp("items.ndjson", ndjson(records(2, 1)));
  const dataset = singleTableDataset({ schema: "busy", table: "items", from: `ndjson:${path}`, key: "/id" });
  const holder = new pg.Client({ connectionString: db().url, application_name: "other-refresh" });
  await holder.connect();
  try {
    await holder.query("select pg_advisory_lock($1::bigint)", [refreshLockKey("busy").toString()]);
    await assert.rejects(refreshDataset({ pool: db().pool, dataset }), (error: unknown) => {
      assert.ok(error instanceof LockBusyError, String(error));
      assert.equal(error.holders[0]!.applicationName, "other-refresh");
      assert.match(error.message, /dataset "busy"/);
      return true;
    });
    assert.deepEqual(await schemas("busy"), []);
  } finally {
    await holder.end();
  }
  // a run that died mid-build left its row "building" and its next schema: the next run cleans both
  await db().pool.query(
    "insert into pgshift.refresh_versions (dataset, version, schema_name, status) values ('busy', 1, 'busy__next', 'building')",
  );
  await db().pool.query("create schema busy__next; create table busy__next.junk (x int)");
  const result = await refreshDataset({ pool: db().pool, dataset });
  assert.equal(result.version, 2);
  const status = await refreshStatus({ pool: db().pool, dataset: "busy" });
  assert.deepEqual(
    status.versions.map((v) => [v.version, v.status]),
    [
      [2, "live"],
      [1, "failed"],
    ],
  );
  assert.deepEqual(await schemas("busy"), ["busy"]);
});

test("a REPEATABLE READ reader older than the load is named, or waited out", async () => {
  const path = await writeTemp("items.ndjson", ndjson(records(2, 1)));
  const dataset = singleTableDataset({ schema: "snap", table: "items", from: `ndjson:${path}`, key: "/id" });
  await refreshDataset({ pool: db().pool, dataset });
  await writeFile(path, ndjson(records(3, 2)));

  const reader = new pg.Client({ connectionString: db().url, application_name: "long-report" });
  await reader.connect();
  try {
    await reader.query("begin isolation level repeatable read");
    await reader.query("select count(*) from snap.items");
    const { rows } = await reader.query("select pg_backend_pid() as pid");
    await assert.rejects(
      refreshDataset({ pool: db().pool, dataset, snapshotWaitMs: 300 }),
      (error: unknown) => {
        assert.ok(error instanceof RefreshFailedError, String(error));
        assert.equal(error.step, "snapshot-guard");
        const cause = error.cause as OldSnapshotError;
        assert.ok(cause instanceof OldSnapshotError);
        assert.deepEqual(
          cause.sessions.map((s) => [s.pid, s.applicationName]),
          [[rows[0].pid, "long-report"]],
        );
        return true;
      },
    );
    assert.deepEqual(await values("snap"), ["k0=1", "k1=1"]);
    assert.deepEqual(await schemas("snap"), ["snap"]);

    // the same reader ends while the refresh waits: the swap goes ahead after it
    await reader.query("rollback");
    await reader.query("begin isolation level repeatable read");
    await reader.query("select count(*) from snap.items");
    const ending = new Promise((resolve) => setTimeout(resolve, 1500)).then(() => reader.query("commit"));
    const waited = await refreshDataset({ pool: db().pool, dataset, snapshotWaitMs: 30_000 });
    await ending;
    assert.equal(waited.status, "switched");
    assert.ok(waited.snapshotWaitMs > 0, `waited ${waited.snapshotWaitMs} ms`);
    assert.deepEqual(await values("snap"), ["k0=2", "k1=2", "k2=2"]);
  } finally {
    await reader.end();
  }
});

test("--delta: next = live + upserted changes - tombstones, with a delta report", async () => {
  const path = await writeTemp("items.ndjson", ndjson(records(4, 1)));
  const dataset = singleTableDataset({
    schema: "dlt",
    table: "items",
    from: `ndjson:${path}`,
    key: "/id",
    gin: true,
  });
  await refreshDataset({ pool: db().pool, dataset });
  await writeFile(
    path,
    ndjson([
      { id: "k0", v: 1 },
      { id: "k1", v: 9 },
      { id: "k9", v: 9 },
    ]),
  );
  const tombstones = await writeTemp("deleted.txt", "k3\nnot-there\n");
  const delta = await refreshDataset({ pool: db().pool, dataset, delta: true, deletedKeysFile: tombstones });
  assert.equal(delta.status, "switched");
  assert.equal(delta.mode, "delta");
  const t = delta.tables[0]!;
  assert.deepEqual([t.inserted, t.updated, t.unchanged, t.deleted], [1, 1, 1, 1]);
  assert.equal(t.check!.rows, 4);
  assert.deepEqual(await values("dlt"), ["k0=1", "k1=9", "k2=1", "k9=9"]);
  assert.deepEqual(await values("dlt__prev_1"), ["k0=1", "k1=1", "k2=1", "k3=1"]);
  const status = await refreshStatus({ pool: db().pool, dataset: "dlt" });
  assert.deepEqual(status.live!.delta, {
    items: {
      inserted: 1,
      updated: 1,
      unchanged: 1,
      deleted: 1,
      conflicts: { policy: "fail", localChanges: 0, conflicts: 0, keys: [], recorded: true },
    },
  });
  // the delta version has the indexes a full build makes, once each
  const indexes = async (schema: string) =>
    (
      await db().pool.query("select indexname from pg_indexes where schemaname = $1 order by 1", [schema])
    ).rows.map((r) => r.indexname);
  assert.deepEqual(await indexes("dlt"), await indexes("dlt__prev_1"));
  assert.deepEqual(await indexes("dlt"), ["items_doc_gin", "items_pkey"]);
  // verified from what the delta touched: the staged records, and the untouched rows against live's
  assert.equal(t.check!.identical, true, JSON.stringify(t.check));
  assert.deepEqual(t.check!.untouched, { rows: 1, identical: true });
  assert.equal(t.check!.sourceRows, 3);
  assert.deepEqual(
    await db()
      .pool.query("select * from pg_tables where schemaname = 'dlt'")
      .then((r) => r.rows.map((x) => x.tablename)),
    ["items"],
  );
});

test("--delta verification catches a next version that differs from live + delta; live untouched", async () => {
  const path = await writeTemp("items.ndjson", ndjson(records(5, 1)));
  const dataset = singleTableDataset({ schema: "dvf", table: "items", from: `ndjson:${path}`, key: "/id" });
  await refreshDataset({ pool: db().pool, dataset });
  await writeFile(path, ndjson([{ id: "k1", v: 2 }]));
  const corrupt = (sql: string) => async (step: string) => {
    if (step === "verify") await db().pool.query(sql);
  };
  // a row the delta did not touch, changed in next before verification
  const untouched = await refreshDataset({
    pool: db().pool,
    dataset,
    delta: true,
    onStep: corrupt(`update dvf__next.items set doc = '{"id": "k3", "v": 7}' where id = 'k3'`),
  });
  assert.equal(untouched.status, "verification_failed");
  assert.deepEqual(untouched.tables[0]!.check!.untouched, { rows: 4, identical: false });
  assert.match(untouched.tables[0]!.check!.problems.join(";"), /did not touch differ from live/);
  // a delta record changed in next
  const applied = await refreshDataset({
    pool: db().pool,
    dataset,
    delta: true,
    onStep: corrupt(`update dvf__next.items set doc = '{"id": "k1", "v": 3}' where id = 'k1'`),
  });
  assert.equal(applied.status, "verification_failed");
  assert.match(applied.tables[0]!.check!.problems.join(";"), /1 delta record\(s\) differ/);
  // a row lost from next: the count and the untouched checksum both say so
  const lost = await refreshDataset({
    pool: db().pool,
    dataset,
    delta: true,
    onStep: corrupt("delete from dvf__next.items where id = 'k4'"),
  });
  assert.equal(lost.status, "verification_failed");
  assert.match(lost.tables[0]!.check!.problems.join(";"), /holds 4 rows, expected 5/);
  assert.deepEqual(await values("dvf"), ["k0=1", "k1=1", "k2=1", "k3=1", "k4=1"]);
  assert.deepEqual(await schemas("dvf"), ["dvf"]);
  const { rows } = await db().pool.query(
    "select count(*)::int as n from pgshift.refresh_row_hashes where dataset = 'dvf' and version > 1",
  );
  assert.equal(rows[0].n, 0);
  // and without corruption the same delta goes live
  const ok = await refreshDataset({ pool: db().pool, dataset, delta: true });
  assert.equal(ok.status, "switched", JSON.stringify(ok.tables[0]!.check));
  assert.deepEqual(await values("dvf"), ["k0=1", "k1=2", "k2=1", "k3=1", "k4=1"]);
});

test("readers during build and swap see 0 failed queries, and each statement one version", async () => {
  const path = await writeTemp("items.ndjson", ndjson(records(200, 1)));
  const dataset = singleTableDataset({
    schema: "rd",
    table: "items",
    from: `ndjson:${path}`,
    key: "/id",
    gin: true,
  });
  await refreshDataset({ pool: db().pool, dataset });
  await writeFile(path, ndjson(records(200, 2)));
  const readers = new pg.Pool({ connectionString: db().url, max: 4 });
  let running = true;
  const failures: string[] = [];
  const seen = new Set<string>();
  let reads = 0;
  const loop = async (n: number) => {
    while (running) {
      try {
        const { rows } = await readers.query(
          "select count(*)::int as n, min(doc->>'v') as lo, max(doc->>'v') as hi from rd.items where id = any($1)",
          [[`k${n}`, `k${n + 50}`, `k${n + 100}`]],
        );
        reads++;
        if (rows[0].n !== 3 || rows[0].lo !== rows[0].hi)
          failures.push(`mixed or missing: ${JSON.stringify(rows[0])}`);
        seen.add(rows[0].lo);
      } catch (error) {
        failures.push(`${(error as { code?: string }).code}: ${(error as Error).message}`);
      }
    }
  };
  const loops = [0, 1, 2, 3].map(loop);
  let probed: Awaited<ReturnType<typeof refreshDataset>> | undefined;
  try {
    const result = await refreshDataset({ pool: db().pool, dataset, probe: 3 });
    probed = result;
    assert.equal(result.status, "switched");
    await new Promise((resolve) => setTimeout(resolve, 200));
  } finally {
    running = false;
    await Promise.all(loops);
    await readers.end();
  }
  assert.deepEqual(failures, []);
  assert.ok(reads > 0);
  assert.equal(probed!.probe!.failed, 0);
  assert.deepEqual(probed!.probe!.failedBySqlstate, {});
  assert.ok(probed!.probe!.queries > 0);
  // key lookups and, the table having a GIN index on doc, containment queries
  const byKind = probed!.probe!.byKind!;
  assert.ok(byKind.key > 0 && byKind.containment > 0, JSON.stringify(byKind));
  assert.equal(byKind.key + byKind.containment, probed!.probe!.queries);
  assert.ok(probed!.probe!.maxMs >= probed!.probe!.p99Ms && probed!.probe!.p99Ms >= probed!.probe!.p50Ms);
  // the readers were answered by the version live at the start and, before the probe stopped, by the new one
  assert.equal(probed!.probe!.versionsSeen, 2);
  const window = probed!.probe!.mixedWindowMs!;
  assert.ok(Number.isFinite(window) && window >= 0 && window < 60_000, `mixed-version window ${window} ms`);
  assert.ok(seen.has("2"), `versions seen: ${[...seen]}`);
});

test("--delta conflicts: rows changed locally and by the delta fail, or follow source-wins / keep-local", async () => {
  const path = await writeTemp("items.ndjson", ndjson(records(3, 1)));
  const dataset = singleTableDataset({ schema: "cfl", table: "items", from: `ndjson:${path}`, key: "/id" });
  await refreshDataset({ pool: db().pool, dataset });
  // local edits since the refresh: k0 (the delta changes it too) and k2 (the delta leaves it)
  await db().pool.query(`update cfl.items set doc = '{"id": "k0", "v": "local"}' where id = 'k0'`);
  await db().pool.query(`update cfl.items set doc = '{"id": "k2", "v": "local"}' where id = 'k2'`);
  await writeFile(
    path,
    ndjson([
      { id: "k0", v: 5 },
      { id: "k1", v: 5 },
    ]),
  );
  await assert.rejects(refreshDataset({ pool: db().pool, dataset, delta: true }), (error: unknown) => {
    assert.ok(error instanceof RefreshFailedError, String(error));
    assert.equal((error.cause as { code: string }).code, "refresh_conflict");
    assert.deepEqual((error.cause as { keys: string[] }).keys, ["k0"]);
    return true;
  });
  assert.deepEqual(await schemas("cfl"), ["cfl"]);

  const kept = await refreshDataset({ pool: db().pool, dataset, delta: true, onConflict: "keep-local" });
  assert.equal(kept.status, "switched", JSON.stringify(kept.tables[0]!.check));
  assert.deepEqual(
    [
      kept.tables[0]!.conflicts!.localChanges,
      kept.tables[0]!.conflicts!.conflicts,
      kept.tables[0]!.conflicts!.keys,
    ],
    [2, 1, ["k0"]],
  );
  assert.deepEqual(await values("cfl"), ["k0=local", "k1=5", "k2=local"]);

  // the kept local rows are recorded with version 3: a source-wins delta sees them as the baseline
  await db().pool.query(`update cfl.items set doc = '{"id": "k1", "v": "again"}' where id = 'k1'`);
  await writeFile(path, ndjson([{ id: "k1", v: 6 }]));
  const wins = await refreshDataset({ pool: db().pool, dataset, delta: true, onConflict: "source-wins" });
  assert.equal(wins.status, "switched");
  assert.deepEqual(wins.tables[0]!.conflicts!.keys, ["k1"]);
  assert.deepEqual(await values("cfl"), ["k0=local", "k1=6", "k2=local"]);
});

test("run --keep N prunes older previous versions after the switch", async () => {
  const path = await writeTemp("items.ndjson", ndjson(records(1, 1)));
  const dataset = singleTableDataset({ schema: "kp", table: "items", from: `ndjson:${path}`, key: "/id" });
  await refreshDataset({ pool: db().pool, dataset, keep: 1 });
  await refreshDataset({ pool: db().pool, dataset, keep: 1 });
  const third = await refreshDataset({ pool: db().pool, dataset, keep: 1 });
  assert.deepEqual(third.prune, { dataset: "kp", kept: [2], pruned: [{ version: 1, schema: "kp__prev_1" }] });
  assert.deepEqual(await schemas("kp"), ["kp", "kp__prev_2"]);
  await assert.rejects(
    refreshDataset({ pool: db().pool, dataset, keep: -1 }),
    /--keep must be a whole number/,
  );
});

test("a schema that existed before the first refresh is kept as S__prev_0, and rollback returns to it", async () => {
  await db().pool.query(
    "create schema adopt; create table adopt.items (id text primary key, doc jsonb); insert into adopt.items values ('old', '{\"v\": 0}')",
  );
  const path = await writeTemp("items.ndjson", ndjson(records(1, 1)));
  const dataset = singleTableDataset({ schema: "adopt", table: "items", from: `ndjson:${path}`, key: "/id" });
  const result = await refreshDataset({ pool: db().pool, dataset });
  assert.deepEqual([result.version, result.previousVersion, result.previousSchema], [1, 0, "adopt__prev_0"]);
  assert.deepEqual(await values("adopt"), ["k0=1"]);
  const back = await rollbackDataset({ pool: db().pool, dataset: "adopt" });
  assert.deepEqual([back.version, back.rolledBack], [0, 1]);
  assert.deepEqual(await values("adopt"), ["old=0"]);
  assert.deepEqual(await schemas("adopt"), ["adopt", "adopt__prev_1"]);
});

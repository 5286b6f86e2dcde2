import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { runCli, stderrText } from "../../helpers/cli.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import { tempDir, writeTemp } from "../documents/fixtures.ts";

const db = useTestDatabase("refresh_cli");

const ndjson = (records: object[]) => `${records.map((r) => JSON.stringify(r)).join("\n")}\n`;

test("pgshift refresh run / status / rollback / prune as a user runs them, with exit codes", async () => {
  const path = await writeTemp("items.ndjson", ndjson([{ id: "a", v: 1 }]));
  const run = (...extra: string[]) =>
    runCli([
      "refresh",
      "run",
      `ndjson:${path}`,
      "--to",
      db().url,
      "--schema",
      "shop",
      "--table",
      "items",
      "--key",
      "/id",
      ...extra,
    ]);

  const first = await run("--json", "--reason", "initial");
  assert.equal(first.code, 0, first.stderr);
  const firstResult = JSON.parse(first.stdout);
  assert.deepEqual([firstResult.status, firstResult.version], ["switched", 1]);

  await writeFile(
    path,
    ndjson([
      { id: "a", v: 2 },
      { id: "b", v: 2 },
    ]),
  );
  const failed = await run("--check", "select count(*) = 99 from items");
  assert.equal(failed.code, 3, failed.stderr);
  assert.match(failed.stdout, /FAILED verification; live is untouched/);
  assert.match(failed.stdout, /check FAILED \(returned false, not true\)/);

  const second = await run("--probe", "2");
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stdout, /version 3 is live in schema shop \(version 1 kept as shop__prev_1\)/);
  assert.match(second.stdout, /probe: \d+ queries, 0 failed/);

  const status = await runCli(["refresh", "status", "shop", "--to", db().url, "--json"]);
  assert.equal(status.code, 0, status.stderr);
  const versions = JSON.parse(status.stdout);
  assert.equal(versions.live.version, 3);
  assert.deepEqual(versions.live.counts, { items: 2 });
  assert.deepEqual(
    versions.versions.map((v: { version: number; status: string }) => [v.version, v.status]),
    [
      [3, "live"],
      [2, "failed"],
      [1, "previous"],
    ],
  );

  const rollback = await runCli(["refresh", "rollback", "shop", "--to", db().url, "--reason", "bad"]);
  assert.equal(rollback.code, 0, rollback.stderr);
  assert.match(rollback.stdout, /version 1 is live again; version 3 kept as previous/);
  const { rows } = await db().pool.query("select id, doc->>'v' as v from shop.items order by id");
  assert.deepEqual(rows, [{ id: "a", v: "1" }]);

  const prune = await runCli(["refresh", "prune", "shop", "--keep", "0", "--to", db().url]);
  assert.equal(prune.code, 0, prune.stderr);
  assert.match(prune.stdout, /dropped shop__prev_3/);
});

test("a dataset file; usage errors exit 2; a bad source exits 1 with live untouched", async () => {
  const dir = await tempDir();
  await writeFile(join(dir, "a.ndjson"), ndjson([{ id: 1, x: "one" }]));
  await writeFile(join(dir, "b.ndjson"), ndjson([{ code: "z", y: true }]));
  const file = join(dir, "dataset.json");
  await writeFile(
    file,
    JSON.stringify({
      schema: "multi",
      tables: [
        { table: "a", from: "ndjson:a.ndjson", key: "/id:bigint" },
        { table: "b", from: "ndjson:b.ndjson", key: "/code" },
      ],
      checks: ["select (select count(*) from a) = 1"],
    }),
  );
  const ok = await runCli(["refresh", "run", "--dataset", file, "--to", db().url, "--json"]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual(
    JSON.parse(ok.stdout).tables.map((t: { table: string; check: { rows: number } }) => [
      t.table,
      t.check.rows,
    ]),
    [
      ["a", 1],
      ["b", 1],
    ],
  );

  const usage = await runCli(["refresh", "run", "ndjson:x", "--to", db().url]);
  assert.equal(usage.code, 2);
  assert.match(stderrText(usage.stderr), /--schema S --table T/);
  await writeFile(file, JSON.stringify({ schema: "multi", tables: [], extra: 1 }));
  const badFile = await runCli(["refresh", "run", "--dataset", file, "--to", db().url]);
  assert.equal(badFile.code, 2);
  assert.match(stderrText(badFile.stderr), /unknown key "extra"/);

  await writeFile(join(dir, "b.ndjson"), '{"code": "z", broken\n');
  await writeFile(
    file,
    JSON.stringify({
      schema: "multi",
      tables: [
        { table: "a", from: "ndjson:a.ndjson", key: "/id:bigint" },
        { table: "b", from: "ndjson:b.ndjson", key: "/code" },
      ],
    }),
  );
  const bad = await runCli(["refresh", "run", "--dataset", file, "--to", db().url]);
  assert.equal(bad.code, 1, bad.stderr);
  assert.match(
    stderrText(bad.stderr),
    /refresh failed at build \(version 2\).*the live version is untouched/s,
  );
  const { rows } = await db().pool.query(
    "select nspname from pg_namespace where nspname like 'multi%' order by 1",
  );
  assert.deepEqual(
    rows.map((r) => r.nspname),
    ["multi"],
  );
  const { rows: b } = await db().pool.query("select code from multi.b");
  assert.deepEqual(b, [{ code: "z" }]);
});

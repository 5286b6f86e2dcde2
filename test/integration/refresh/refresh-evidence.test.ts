import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import {
  type Dataset,
  pruneDataset,
  readDatasetFile,
  refreshDataset,
  refreshStatus,
  singleTableDataset,
} from "../../../src/refresh/index.ts";
import { checkReportSignature } from "../../../src/verify/report.ts";
import { runCli } from "../../helpers/cli.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import { tempDir, writeTemp } from "../documents/fixtures.ts";

const db = useTestDatabase("refresh_evidence");

const ndjson = (records: object[]) => `${records.map((r) => JSON.stringify(r)).join("\n")}\n`;

async function schemas(prefix: string): Promise<string[]> {
  const { rows } = await db().pool.query(
    "select nspname from pg_namespace where nspname like $1 || '%' order by nspname",
    [prefix],
  );
  return rows.map((r) => r.nspname);
}

test("foreign keys between the dataset's tables: orphans per key, named; live untouched until they hold", async () => {
  const dir = await tempDir("pgshift-refresh-fk-");
  await writeFile(join(dir, "device.ndjson"), ndjson([{ k: "D1" }, { k: "D2" }]));
  await writeFile(
    join(dir, "recall.ndjson"),
    ndjson([
      { id: 1, device: { k: "D1" } },
      { id: 2, device: { k: "D9" } },
      { id: 3, device: { k: "D8" } },
      { id: 4, device: { k: "D9" } },
      { id: 5 },
    ]),
  );
  const file = join(dir, "fk.dataset.json");
  await writeFile(
    file,
    JSON.stringify({
      schema: "fk",
      tables: [
        { table: "device", from: "ndjson:device.ndjson", key: "/k" },
        { table: "recall", from: "ndjson:recall.ndjson", key: "/id:bigint" },
      ],
      foreignKeys: [{ from: "recall", pointer: "/device/k", to: "device" }],
    }),
  );
  const dataset = await readDatasetFile(file);
  const failed = await refreshDataset({ pool: db().pool, dataset });
  assert.equal(failed.status, "verification_failed");
  assert.deepEqual(failed.foreignKeys, [
    {
      name: "recall/device/k -> device",
      from: "recall",
      to: "device",
      orphans: 3,
      sample: ["D8", "D9"],
      ok: false,
    },
  ]);
  assert.deepEqual(await schemas("fk"), []);
  const status = await refreshStatus({ pool: db().pool, dataset: "fk" });
  assert.equal((status.versions[0]!.verification as { foreignKeysHold: boolean }).foreignKeysHold, false);

  await writeFile(join(dir, "device.ndjson"), ndjson([{ k: "D1" }, { k: "D8" }, { k: "D9" }]));
  const ok = await refreshDataset({ pool: db().pool, dataset });
  assert.equal(ok.status, "switched");
  assert.deepEqual(
    ok.foreignKeys.map((f) => [f.name, f.orphans, f.ok]),
    [["recall/device/k -> device", 0, true]],
  );

  // a foreign key must name tables of the dataset, with a pointer or a column
  await writeFile(
    file,
    JSON.stringify({
      schema: "fk",
      tables: [{ table: "device", from: "ndjson:device.ndjson", key: "/k" }],
      foreignKeys: [{ from: "recall", to: "device", extra: 1 }],
    }),
  );
  await assert.rejects(readDatasetFile(file), /foreignKeys\[0\]: unknown key "extra"/);
  const bad: Dataset = { ...dataset, foreignKeys: [{ from: "nope", to: "device" }] };
  assert.throws(
    () => singleTableDataset({ ...bad.tables[0]!, schema: "fk", foreignKeys: bad.foreignKeys! }),
    /"from" must name a table of the dataset[\s\S]*give either "pointer" or "column"/,
  );
});

test("--keep-for keeps previous versions retired less long ago; with --keep either keeps", async () => {
  const path = await writeTemp("kf.ndjson", ndjson([{ id: "a", v: 0 }]));
  const dataset = singleTableDataset({ schema: "kf", table: "items", from: `ndjson:${path}`, key: "/id" });
  for (let v = 1; v <= 4; v++) {
    await writeFile(path, ndjson([{ id: "a", v }]));
    await refreshDataset({ pool: db().pool, dataset });
  }
  assert.deepEqual(await schemas("kf"), ["kf", "kf__prev_1", "kf__prev_2", "kf__prev_3"]);
  // versions 1 and 2 retired two days ago, version 3 just now
  await db().pool.query(
    "update pgshift.refresh_versions set retired_at = now() - interval '2 days' where dataset = 'kf' and version in (1, 2)",
  );
  const status = await refreshStatus({ pool: db().pool, dataset: "kf" });
  assert.ok(status.previous.every((v) => v.retiredAt !== null));
  assert.equal(status.live!.retiredAt, null);

  const both = await pruneDataset({ pool: db().pool, dataset: "kf", keep: 2, keepFor: "24h" });
  assert.deepEqual(both.kept, [3, 2]);
  assert.deepEqual(both.pruned, [{ version: 1, schema: "kf__prev_1" }]);

  // a run's --keep-for prunes after its switch: version 4 is retired now, 2 is old
  await writeFile(path, ndjson([{ id: "a", v: 5 }]));
  const run = await refreshDataset({ pool: db().pool, dataset, keepFor: "24h" });
  assert.deepEqual(run.prune, {
    dataset: "kf",
    kept: [4, 3],
    pruned: [{ version: 2, schema: "kf__prev_2" }],
  });
  assert.deepEqual(await schemas("kf"), ["kf", "kf__prev_3", "kf__prev_4"]);
  await assert.rejects(pruneDataset({ pool: db().pool, dataset: "kf" }), /--keep N.*--keep-for/);
  await assert.rejects(
    pruneDataset({ pool: db().pool, dataset: "kf", keepFor: "soon" }),
    /--keep-for "soon": expected a positive duration/,
  );
});

test("the refresh report: written, signed with a key, recorded with the version; the CLI checks it", async () => {
  const dir = await tempDir("pgshift-refresh-report-");
  const path = join(dir, "r.ndjson");
  await writeFile(path, ndjson([{ id: "a", v: 1 }]));
  const secret = Buffer.from("a refresh report secret of some length");
  const reportPath = join(dir, "report.json");
  const dataset = singleTableDataset({ schema: "rep", table: "items", from: `ndjson:${path}`, key: "/id" });
  const result = await refreshDataset({
    pool: db().pool,
    dataset,
    report: { path: reportPath, key: { algorithm: "hmac-sha256", secret } },
    reason: "signed run",
  });
  assert.equal(result.report!.path, reportPath);
  assert.equal(result.report!.signed, "hmac-sha256");
  const report = JSON.parse(await readFile(reportPath, "utf8"));
  assert.deepEqual([report.kind, report.status, report.version], ["pgshift-refresh-report", "switched", 1]);
  assert.deepEqual(checkReportSignature(report, { algorithm: "hmac-sha256", secret }), {
    valid: true,
    algorithm: "hmac-sha256",
  });
  const tampered = { ...report, status: "verification_failed" };
  assert.equal(checkReportSignature(tampered, { algorithm: "hmac-sha256", secret }).valid, false);
  const status = await refreshStatus({ pool: db().pool, dataset: "rep" });
  assert.deepEqual(status.live!.report, result.report);
  assert.equal(status.live!.reason, "signed run");

  // a report that cannot be written does not undo the switch; the result says why
  await writeFile(path, ndjson([{ id: "a", v: 3 }]));
  const unwritable = await refreshDataset({
    pool: db().pool,
    dataset,
    report: { path: join(reportPath, "under-a-file.json") },
  });
  assert.equal(unwritable.status, "switched");
  assert.equal(unwritable.report, undefined);
  assert.match(unwritable.reportError!, /ENOTDIR|EEXIST/);
  assert.equal((await refreshStatus({ pool: db().pool, dataset: "rep" })).live!.version, 2);

  // CLI: --report with --hmac-key-env; status shows when, by whom and why; verify-report checks it
  const env = { REFRESH_KEY: secret.toString() };
  const cliReport = join(dir, "cli-report.json");
  await writeFile(path, ndjson([{ id: "a", v: 4 }]));
  const run = await runCli(
    [
      "refresh",
      "run",
      `ndjson:${path}`,
      "--to",
      db().url,
      "--schema",
      "rep",
      "--table",
      "items",
      "--key",
      "/id",
    ].concat(["--report", cliReport, "--hmac-key-env", "REFRESH_KEY", "--reason", "nightly"]),
    { env },
  );
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /report: .*cli-report\.json \(signed, hmac-sha256\)/);
  assert.equal(JSON.parse(await readFile(cliReport, "utf8")).reason, "nightly");
  assert.doesNotMatch(run.stdout + run.stderr, /a refresh report secret/);
  const checked = await runCli(["verify-report", cliReport, "--hmac-key-env", "REFRESH_KEY"], { env });
  assert.equal(checked.code, 0, checked.stderr + checked.stdout);
  await writeFile(
    cliReport,
    (await readFile(cliReport, "utf8")).replace('"reason": "nightly"', '"reason": "other"'),
  );
  const broken = await runCli(["verify-report", cliReport, "--hmac-key-env", "REFRESH_KEY"], { env });
  assert.equal(broken.code, 3);
  const shown = await runCli(["refresh", "status", "rep", "--to", db().url]);
  assert.equal(shown.code, 0, shown.stderr);
  const liveLine = shown.stdout.split("\n").find((line) => /^\s*3\s/.test(line)) ?? "";
  assert.match(liveLine, /live.*\d{4}-\d\d-\d\dT[\d:.]+Z.*nightly/);
});

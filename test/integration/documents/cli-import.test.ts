import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { runCli } from "../../helpers/cli.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import { tempDir, writeTemp } from "./fixtures.ts";

const db = useTestDatabase("docs_cli");

test("pgshift import ndjson:FILE --key --json: loads, prints the result, writes the report, exit 0", async () => {
  const path = await writeTemp(
    "enforcement.ndjson",
    [
      '{"recall_number":"Z-1","status":"Ongoing","report_date":"20240105"}',
      '{"recall_number":"Z-2","status":"Completed"}',
    ].join("\n"),
  );
  const cwd = await tempDir();
  const result = await runCli(
    [
      "import",
      `ndjson:${path}`,
      "--to",
      db().url,
      "--key",
      "/recall_number",
      "--column",
      "report_date=/report_date:date",
      "--gin",
      "--json",
    ],
    { cwd },
  );
  assert.equal(result.code, 0, result.stderr);
  const output = JSON.parse(result.stdout);
  assert.equal(output.ok, true);
  assert.equal(output.inserted, 2);
  assert.equal(output.target.table, "enforcement");
  const report = JSON.parse(await readFile(output.report, "utf8"));
  assert.equal(report.kind, "import-documents");
  assert.equal(report.recordsRead, 2);
  assert.ok(output.report.startsWith(join(cwd, ".pgshift/reports")));
  const { rows } = await db().pool.query(
    "select recall_number, report_date::text as d from enforcement order by 1",
  );
  assert.deepEqual(rows, [
    { recall_number: "Z-1", d: "2024-01-05" },
    { recall_number: "Z-2", d: null },
  ]);
});

test("pgshift import with quarantined records: summary on stdout, notice, exit 1; bad flags exit 2", async () => {
  const path = await writeTemp("mixed.ndjson", '{"id":1}\n{"id":\n{"id":3}\n');
  const cwd = await tempDir();
  const result = await runCli(
    [
      "import",
      `ndjson:${path}`,
      "--to",
      db().url,
      "--key",
      "/id",
      "--on-bad-value",
      "quarantine",
      "--mode",
      "upsert",
    ],
    { cwd },
  );
  assert.equal(result.code, 1, result.stderr);
  assert.match(result.stdout, /records read\s+3/);
  assert.match(result.stdout, /quarantined\s+1/);
  assert.match(result.stdout, /inserted\s+2/);
  assert.match(result.stdout, /mixed\.ndjson:2: |malformed JSON on line 2/);
  assert.match(
    result.stderr,
    /1 record\(s\) quarantined: select \* from pgshift\.quarantine where run_id = '/,
  );

  const failed = await runCli(["import", `ndjson:${path}`, "--to", db().url, "--key", "/id"], { cwd });
  assert.equal(failed.code, 1);
  assert.match(failed.stderr, /malformed JSON on line 2.*--on-bad-value quarantine/);

  const usage = await runCli(["import", `ndjson:${path}`, "--to", db().url, "--mode", "merge"], { cwd });
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /--mode must be one of insert, upsert, replace/);
});

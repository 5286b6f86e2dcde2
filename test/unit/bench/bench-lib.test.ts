import assert from "node:assert/strict";
import { test } from "node:test";
import { parseBenchArgs } from "../../../bench/lib/args.ts";
import { rowsForSize } from "../../../bench/lib/backup-data.ts";
import { pairedRatio } from "../../../bench/scenarios/backup.ts";
import { documentImportArgs, importedTable } from "../../../bench/lib/documents.ts";
import { median, percentile } from "../../../bench/lib/measure.ts";
import { parsePgloaderSummary, pgloaderCommand, pgloaderDurationMs } from "../../../bench/lib/pgloader.ts";
import { parseJsonResult } from "../../../bench/lib/pgshift.ts";
import { findPhaseMs } from "../../../bench/lib/phases.ts";
import { rawDdl, rawMapping } from "../../../bench/lib/raw-copy.ts";
import { jsonContains } from "../../../bench/lib/scan.ts";

test("percentile uses the nearest rank; median is p50", () => {
  const values = [5, 1, 4, 2, 3, 10, 9, 8, 7, 6];
  assert.equal(percentile(values, 50), 5);
  assert.equal(percentile(values, 99), 10);
  assert.equal(percentile(values, 10), 1);
  assert.equal(median([3, 1, 2]), 2);
  assert.ok(Number.isNaN(percentile([], 50)));
});

test("bench flags: quick, scenarios, sizes; unknown ones are refused", () => {
  assert.deepEqual(
    parseBenchArgs(["--quick", "--scenario", "sqlite,verify", "--rows=1_000", "--docs", "50"]),
    {
      quick: true,
      scenarios: ["sqlite", "verify"],
      keep: false,
      rows: 1000,
      docs: 50,
    },
  );
  assert.throws(() => parseBenchArgs(["--scenario", "nope"]), /unknown scenario "nope"/);
  assert.throws(() => parseBenchArgs(["--rows", "-3"]), /--rows needs a positive integer/);
  assert.throws(() => parseBenchArgs(["--fast"]), /unknown flag --fast/);
  assert.deepEqual(parseBenchArgs(["--scenario", "backup", "--backup-mb=256"]), {
    quick: false,
    scenarios: ["backup"],
    keep: false,
    backupMb: 256,
  });
  assert.throws(() => parseBenchArgs(["--backup-mb", "0"]), /--backup-mb needs a positive integer/);
});

test("backup dataset: large-table rows for a target size, never below the calibration load", () => {
  const mib = 1024 * 1024;
  // 1 GiB with 8 MiB of small tables at 180 bytes per row (indexes included)
  assert.equal(rowsForSize(1024 * mib, 8 * mib, 180), Math.round((1016 * mib) / 180));
  assert.equal(rowsForSize(mib, 8 * mib, 180), 200_000);
});

const PGLOADER_OUTPUT = `
2026-11-22T06:06:36.940000Z ERROR PostgreSQL Database error 23503: insert or update on table "attachments"
             table name     errors       rows      bytes      total time
-----------------------  ---------  ---------  ---------  --------------
                  tasks          0     120000    13.9 MB          3.896s
COPY Threads Completion          0          4                     6.840s
         Create Indexes          0         29                     3.232s
      Total import time          ✓     600000    95.7 MB         11.052s
`;

test("pgloader's summary: data phase, index phase, rows, errors", () => {
  assert.deepEqual(parsePgloaderSummary(PGLOADER_OUTPUT), {
    dataMs: 6840,
    indexMs: 3232,
    errors: 1,
    rowsReported: 600000,
  });
  const failed = parsePgloaderSummary(
    "      Total import time          9      75220    27.9 MB          6.860s\n",
  );
  assert.equal(failed.errors, 9);
  assert.equal(failed.rowsReported, 75220);
  assert.equal(failed.dataMs, undefined);
});

test("pgloader load command: the source, the target and the one cast", () => {
  const command = pgloaderCommand("/tmp/a.db", "postgres://u@h:5/d");
  assert.match(command, /^load database\n {2}from sqlite:\/\/\/tmp\/a\.db\n {2}into postgres:\/\/u@h:5\/d\n/);
  assert.match(command, /cast type datetime to bigint drop typemod\n;\n$/);
});

test("pgloader durations with minutes and hours", () => {
  assert.equal(
    pgloaderDurationMs("COPY Threads Completion          0          4                   1m1.324s"),
    61_324,
  );
  assert.equal(pgloaderDurationMs("x 1h2m3.5s"), 3_723_500);
  assert.equal(pgloaderDurationMs("x 0.528s"), 528);
  assert.equal(pgloaderDurationMs("no duration"), undefined);
  assert.match(
    pgloaderCommand("/a.db", "postgres://u@h/d", 10_000),
    /with include drop, create tables, create indexes, reset sequences, foreign keys, prefetch rows = 10000\n/,
  );
});

test("phase timings are found in pgshift's report shapes, in ms", () => {
  assert.equal(findPhaseMs({ seconds: 3, phases: { plan: 0.1, data: 1.25 } }, "data"), 1250);
  assert.equal(findPhaseMs({ phases: [{ name: "data", durationMs: 42 }] }, "data"), 42);
  assert.equal(findPhaseMs({ result: { timings: { dataMs: 7, dataSeconds: 1 } } }, "data"), 7);
  assert.equal(findPhaseMs({ phases: { copy: 1 } }, "data"), undefined);
});

test("a --json result is parsed whole, or from its last JSON line", () => {
  assert.deepEqual(parseJsonResult('{\n  "ok": true\n}\n'), { ok: true });
  assert.deepEqual(parseJsonResult('progress\n{"ok":false}\n'), { ok: false });
  assert.equal(parseJsonResult(""), undefined);
});

test("raw pipeline mapping: declared SQLite types to target types and sqlite3 expressions", () => {
  assert.deepEqual(rawMapping("id", "INTEGER"), { pgType: "bigint", select: '"id"' });
  assert.equal(rawMapping("slug", "varchar(80)").pgType, "varchar(80)");
  assert.equal(rawMapping("total", "real").pgType, "double precision");
  assert.equal(rawMapping("settings", "json").pgType, "jsonb");
  assert.equal(
    rawMapping("avatar", "blob").select,
    `case when "avatar" is null then null else '\\x' || hex("avatar") end`,
  );
  assert.match(
    rawMapping("created_at", "datetime").select,
    /strftime\('%Y-%m-%dT%H:%M:%fZ', "created_at" \/ 1000\.0/,
  );
  assert.equal(
    rawDdl({
      name: 'odd "name"',
      rows: 0,
      columns: [{ name: "a", declared: "text", pgType: "text", select: '"a"', pk: 1 }],
    }),
    'create table "odd ""name""" ("a" text)',
  );
});

test("JSON containment follows jsonb @> semantics", () => {
  const doc = { a: 1, b: { c: "x", d: [1, 2, 3] }, e: null };
  assert.equal(jsonContains(doc, { a: 1 }), true);
  assert.equal(jsonContains(doc, { b: { c: "x" } }), true);
  assert.equal(jsonContains(doc, { b: { d: [3, 1] } }), true);
  assert.equal(jsonContains(doc, { b: { d: [4] } }), false);
  assert.equal(jsonContains(doc, { e: null }), true);
  assert.equal(jsonContains(doc, { a: "1" }), false);
  assert.equal(jsonContains(doc, { z: 1 }), false);
});

test("document import arguments use only the flags the build's help lists", () => {
  const help =
    "Options:\n  --table <name>  t\n  --key <pointers>  k\n  --records <pointer>\n  --gin  g\n  --trgm <pointer>\n";
  assert.deepEqual(
    documentImportArgs(help, {
      source: "json:/d",
      url: "postgres://x",
      table: "t",
      jobs: 2,
      records: "/results",
      searchPath: "/device_name",
    }),
    [
      "import",
      "json:/d",
      "--to",
      "postgres://x",
      "--json",
      "--table",
      "t",
      "--key",
      "/k_number",
      "--records",
      "/results",
      "--gin",
      "--trgm",
      "/device_name",
    ],
  );
  assert.deepEqual(
    documentImportArgs("Options:\n  --no-gin\n", { source: "ndjson:/f", url: "u", table: "t", jobs: 2 }),
    ["import", "ndjson:/f", "--to", "u", "--json"],
  );
  assert.deepEqual(
    documentImportArgs("Options:\n  --key <p>\n  --no-verify  skip\n", {
      source: "ndjson:/f",
      url: "u",
      table: "t",
      jobs: 2,
    }),
    ["import", "ndjson:/f", "--to", "u", "--json", "--key", "/k_number", "--no-verify"],
  );
  // The default command (issue 15): verification stays on, and another key can be named.
  assert.deepEqual(
    documentImportArgs("Options:\n  --key <p>\n  --no-verify  skip\n", {
      source: "ndjson:/f",
      url: "u",
      table: "t",
      jobs: 2,
      key: "/id",
      verify: true,
    }),
    ["import", "ndjson:/f", "--to", "u", "--json", "--key", "/id"],
  );
  assert.equal(importedTable({ target: { table: "docs" } }, "asked"), "docs");
  assert.equal(importedTable(undefined, "asked"), "asked");
});

test("backup ratios: the median of the rounds' own ratios, none when a side failed or rounds differ", () => {
  const runs = (wallMs: number[], ok = true) => ({ wallMs, ok, details: [] });
  // the machine slowed down in round 2: both sides moved, the pair's ratio did not
  assert.equal(pairedRatio(runs([11, 30, 12]), runs([10, 25, 10])), 1.2);
  assert.equal(pairedRatio(runs([11, 30]), runs([10, 25], false)), null);
  assert.equal(pairedRatio(runs([11, 30]), runs([10])), null);
  assert.equal(pairedRatio(runs([]), runs([])), null);
  assert.equal(pairedRatio(undefined, runs([1])), null);
});

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { completeRatios, EXPECTED_RATIOS } from "../../../bench/lib/keys.ts";
import {
  formatNumber,
  markdownTable,
  renderMarkdown,
  renderSvg,
  targetMargin,
} from "../../../bench/lib/report.ts";
import { type BenchResult, emptyScenario, ratio } from "../../../bench/lib/result.ts";

test("ratio(): met follows the target's direction; no value or no target gives null", () => {
  assert.equal(ratio("a", 0.4, { op: "<=", value: 0.5 }).met, true);
  assert.equal(ratio("a", 0.6, { op: "<=", value: 0.5 }).met, false);
  assert.equal(ratio("a", 250, { op: ">=", value: 200 }).met, true);
  assert.equal(ratio("a", 2, { op: "<", value: 2 }).met, false);
  assert.equal(ratio("a", null, { op: "<", value: 2 }).met, null);
  assert.equal(ratio("a", Number.NaN, { op: "<", value: 2 }).value, null);
  assert.equal(ratio("a", 3, null).met, null);
});

test("target margin: how far past the target, whatever its direction", () => {
  assert.equal(targetMargin(ratio("a", 0.25, { op: "<=", value: 0.5 })), 2);
  assert.equal(targetMargin(ratio("a", 400, { op: ">=", value: 200 })), 2);
  assert.equal(targetMargin(ratio("a", null, { op: ">=", value: 200 })), null);
});

test("numbers are shown with sensible precision", () => {
  assert.equal(formatNumber(1234.5), "1,235");
  assert.equal(formatNumber(123.4), "123");
  assert.equal(formatNumber(12.34), "12.3");
  assert.equal(formatNumber(1.234), "1.23");
  assert.equal(formatNumber(0.01234), "0.012");
  assert.equal(formatNumber(null), "n/a");
});

test("markdown tables escape pipes", () => {
  assert.equal(markdownTable(["a", "b"], [["x|y", 2]]), "| a | b |\n| --- | --- |\n| x\\|y | 2.00 |");
});

function sample(): BenchResult {
  const scenario = emptyScenario("sqlite", "SQLite -> PostgreSQL.");
  scenario.ratios.pgshift_vs_pgloader_wall = ratio("pgshift / pgloader", 0.4, { op: "<=", value: 0.5 });
  scenario.ratios.missing = ratio("not measured", null, { op: ">=", value: 2 });
  scenario.tables.push({ title: "figures", headers: ["tool", "s"], rows: [["pgshift", 1.5]] });
  scenario.notes.push("a note");
  return {
    resultVersion: 1,
    mode: "quick",
    startedAt: "2026-11-22T07:00:00.000Z",
    finishedAt: "2026-11-22T07:01:00.000Z",
    durationS: 60,
    argv: ["--quick"],
    machine: {
      hostname: "h",
      os: "Debian",
      kernel: "6",
      cpuModel: "CPU",
      cpus: 2,
      memoryGb: 24,
      loadAvgStart: [1, 1, 1],
      node: "20",
      postgres: "15.20",
      postgresSettings: {},
      tools: { pgloader: "3.6" },
      pgshiftVersion: "0.1.0",
      gitCommit: "abc",
    },
    scenarios: { sqlite: scenario },
  };
}

test("the Markdown report starts with the headline table and embeds the chart", () => {
  const markdown = renderMarkdown(sample());
  assert.match(markdown, /^## Benchmark results \(quick run, 2026-11-22T07:00:00.000Z\)/);
  assert.ok(
    markdown.includes(
      "| sqlite | `pgshift_vs_pgloader_wall` | pgshift / pgloader | 0.40 | <= 0.5 | yes |\n| sqlite | `missing` | not measured | n/a | >= 2 | not measured |",
    ),
  );
  assert.ok(markdown.includes("![headline ratios](latest.svg)"));
  assert.ok(markdown.includes("**figures**\n\n| tool | s |\n| --- | --- |\n| pgshift | 1.50 |"));
  assert.ok(markdown.includes("- a note"));
});

test("the SVG chart has one labelled row per targeted ratio, green when met", () => {
  const svg = renderSvg(sample());
  assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.ok(svg.includes(">sqlite: pgshift_vs_pgloader_wall</text>"));
  assert.ok(svg.includes('fill="#2e7d32">0.40 (target &#60;= 0.5)</text>'));
  assert.ok(svg.includes(">sqlite: missing</text>"));
  assert.ok(svg.includes(">not measured</text>"));
  assert.equal((svg.match(/<rect /g) ?? []).length, 2);
  assert.ok(svg.trimEnd().endsWith("</svg>"));
});

test("every stable ratio key is documented in bench/README.md, and a failed scenario still carries them", () => {
  const readme = readFileSync(new URL("../../../bench/README.md", import.meta.url), "utf8");
  for (const [scenario, keys] of Object.entries(EXPECTED_RATIOS)) {
    for (const { key } of keys) assert.ok(readme.includes(`\`${key}\``), `${scenario}.${key} in the README`);
  }
  const failed = emptyScenario("queries", "failed");
  failed.ratios.extra = ratio("extra", 1, null);
  completeRatios("queries", failed);
  assert.deepEqual(Object.keys(failed.ratios), [
    "key_lookup_speedup",
    "containment_speedup",
    "trigram_speedup",
    "key_lookup_p99_ms_20_clients",
    "key_lookup_p99_ms_20_threads",
    "key_lookup_p99_ms_pgbench_20_clients",
    "key_lookup_p99_ms_20_clients_open_loop",
    "extra",
  ]);
  assert.equal(failed.ratios.key_lookup_speedup!.value, null);
  assert.deepEqual(failed.ratios.key_lookup_p99_ms_20_clients!.target, { op: "<", value: 2 });
});

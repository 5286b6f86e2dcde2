#!/usr/bin/env node
// Reports the V8 coverage a `run-tests.mjs --coverage` run collected: c8's summary of src/ (line and
// branch figures mapped onto the TypeScript sources), a table per area (src/load, src/verify, ...), and
// c8's check against the floors in .c8rc.json. `--write-docs` also writes the table to docs/coverage.md.
//
//   node scripts/coverage-report.mjs COVERAGE_DIR [--no-check] [--write-docs]
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative, sep } from "node:path";

const [dir, ...flags] = process.argv.slice(2);
if (!dir) {
  console.error("usage: node scripts/coverage-report.mjs COVERAGE_DIR [--no-check] [--write-docs]");
  process.exit(2);
}
const require = createRequire(import.meta.url);
const c8 = join(dirname(require.resolve("c8/package.json")), "bin", "c8.js");

function runC8(command) {
  return (
    spawnSync(process.execPath, [c8, command, "--temp-directory", dir], { stdio: "inherit" }).status ?? 1
  );
}

if (runC8("report") !== 0) process.exit(1);

const config = JSON.parse(readFileSync(".c8rc.json", "utf8"));
const summary = JSON.parse(readFileSync(join(config["reports-dir"], "coverage-summary.json"), "utf8"));
const areas = new Map();
for (const [file, figures] of Object.entries(summary)) {
  if (file === "total") continue;
  const parts = relative("src", file).split(sep);
  const area = parts.length > 1 ? `src/${parts[0]}` : "src (top level)";
  const sums = areas.get(area) ?? { files: 0, lines: [0, 0], branches: [0, 0] };
  sums.files += 1;
  sums.lines[0] += figures.lines.covered;
  sums.lines[1] += figures.lines.total;
  sums.branches[0] += figures.branches.covered;
  sums.branches[1] += figures.branches.total;
  areas.set(area, sums);
}

const percent = ([covered, total]) => (total === 0 ? "100.0" : ((100 * covered) / total).toFixed(1));
const rows = [...areas.entries()].sort(([a], [b]) => a.localeCompare(b));
const total = summary.total;
const table = [
  "| area | files | lines | branches |",
  "|---|---:|---:|---:|",
  ...rows.map(
    ([area, s]) =>
      `| ${area} | ${s.files} | ${percent(s.lines)} % (${s.lines[0]}/${s.lines[1]}) | ${percent(s.branches)} % (${s.branches[0]}/${s.branches[1]}) |`,
  ),
  `| **all of src/** | ${rows.reduce((n, [, s]) => n + s.files, 0)} | **${total.lines.pct.toFixed(1)} %** (${total.lines.covered}/${total.lines.total}) | **${total.branches.pct.toFixed(1)} %** (${total.branches.covered}/${total.branches.total}) |`,
].join("\n");
console.log(`\ncoverage by area (unit and integration tests together)\n${table}\n`);

if (flags.includes("--write-docs")) {
  const doc = readFileSync("docs/coverage.md", "utf8");
  const marker = /<!-- coverage-table -->[\s\S]*<!-- \/coverage-table -->/;
  const stamped = `<!-- coverage-table -->\nMeasured ${new Date().toISOString().slice(0, 10)} by \`npm run coverage\`.\n\n${table}\n<!-- /coverage-table -->`;
  writeFileSync("docs/coverage.md", doc.replace(marker, stamped));
}

if (!flags.includes("--no-check")) {
  const status = runC8("check-coverage");
  if (status !== 0) {
    console.error(
      `coverage is below the floor in .c8rc.json (lines ${config.lines} %, branches ${config.branches} %): add tests, or remove dead code`,
    );
    process.exit(status);
  }
  console.log(`coverage floors met: lines >= ${config.lines} %, branches >= ${config.branches} %`);
}

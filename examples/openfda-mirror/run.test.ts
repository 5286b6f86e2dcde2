// Runs the openFDA mirror example as a user would (`node bin/run-ts.js examples/openfda-mirror/run.ts`):
// its own private PostgreSQL (stopped halfway by the example) and fake API; checks every step's log line.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { testBinariesEnv } from "../../test/helpers/binaries.ts";

const root = fileURLToPath(new URL("../../", import.meta.url));

function runExample(env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["bin/run-ts.js", "examples/openfda-mirror/run.ts"], {
      cwd: root,
      env,
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 240_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, stdout, stderr });
    });
  });
}

test("the example pulls, refreshes, verifies and reads with fallback while PostgreSQL is stopped", async () => {
  const result = await runExample({ ...process.env, ...testBinariesEnv(), MIRROR_RECORDS: "1500" });
  assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
  const log = result.stdout;
  for (const endpoint of ["510k", "classification", "event", "recall", "enforcement", "pma", "udi"])
    assert.match(log, new RegExp(`pull ${endpoint}: 1500 records in 2 pages`));
  assert.match(
    log,
    /refresh: version 1 switched in schema openfda; tables 510k=1500 identical, classification=1500 identical, event=1500 identical, recall=1500 identical, enforcement=1500 identical, udi=1500 identical/,
  );
  for (const endpoint of ["510k", "classification", "event", "recall", "enforcement", "udi"])
    assert.match(log, new RegExp(`verify ${endpoint}: 1500 rows, fingerprint identical`));
  assert.match(
    log,
    /status: 510k fresh, classification fresh, event fresh, recall fresh, enforcement fresh, pma fresh, udi fresh/,
  );
  assert.match(log, /read from postgres \(1700 reads\)/);
  assert.match(log, /containment: postgres 500 rows in [\d.]+ ms, cache scan 500 rows/);
  assert.match(log, /postgres stopped/);
  // the breaker opens after 2 failed connects; on a slow machine its 5 s cool-down may pass during the 300
  // reads, each time costing one probe
  const down =
    /read with postgres down: 300 from the cache, .* breaker open, (\d+) failed connects, (\d+) reads skipped postgres/.exec(
      log,
    );
  assert.ok(down, log);
  assert.ok(Number(down[1]) >= 2 && Number(down[1]) <= 6, down[0]);
  assert.equal(Number(down[1]) + Number(down[2]), 300, down[0]);
  assert.match(
    log,
    /removed K000000 from the cache: served by api \(postgres: not connecting to .*; cache: miss\), then by cache/,
  );
  assert.match(log, /API failing \(503\): K000001 served by cache, stale=true/);
  assert.match(log, /mirror flow complete: every step checked/);
});

// Runs the cutover example as a user would (`node bin/run-ts.js examples/cutover/run.ts`) against a
// fresh database, then checks its log and what it left in PostgreSQL.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { useTestDatabase } from "../../test/helpers/database.ts";

const db = useTestDatabase("cutover_example");
const root = fileURLToPath(new URL("../../", import.meta.url));

function runExample(env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["bin/run-ts.js", "examples/cutover/run.ts"], { cwd: root, env });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, stdout, stderr });
    });
  });
}

test("the example migrates both stores through every phase while serving, and verifies them", async () => {
  const env: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL: db().url };
  for (const key of [
    "PGHOST",
    "PGDATABASE",
    "PGUSER",
    "PGPASSWORD",
    "PGPORT",
    "PGSHIFT_TO",
    "PGSHIFT_DATABASE_URL",
  ])
    delete env[key];
  const result = await runExample(env);
  assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
  const log = result.stdout;
  for (const phase of ["dual-write", "shadow", "ramp:10", "ramp:50", "ramp:100", "next-primary", "next-only"])
    assert.ok(log.includes(`phase -> ${phase} `), phase);
  // The status endpoint reports per store the phase, write/read targets and the pool's state.
  assert.match(log, /\/status tasks phase=shadow +writes=legacy\* -> next reads=legacy 100%/);
  assert.match(log, /\/status graph phase=ramp:50 +writes=legacy\* -> next reads=legacy 50%, next 50%/);
  assert.match(log, /\/status tasks phase=next-primary writes=next\* -> legacy reads=next 100%/);
  assert.match(
    log,
    /\/status graph phase=next-only +writes=next\* +reads=next 100% .* pool total=\d+ idle=\d+ waiting=\d+/,
  );
  assert.match(log, /rollback drill/);
  assert.match(log, /backfill done: 2000 tasks in 4 batches, 120 projects in 3 batches/);
  assert.match(log, /repair\(\): [1-9]\d* closed, 0 pending/);
  assert.match(log, /verify tasks in next-primary: 2000 keys, 0 divergent/);
  assert.match(log, /verify graph in next-primary: 120 keys, 0 divergent/);
  assert.match(log, /, 0 errors; PostgreSQL holds 2000 tasks, 120 projects, 234 edges/);
  assert.match(log, /migration complete: every store verified consistent/);

  const { rows } = await db().pool.query("select name, phase from pgshift.cutovers order by name");
  assert.deepEqual(rows, [
    { name: "graph", phase: "next-only" },
    { name: "tasks", phase: "next-only" },
  ]);
  const pending = await db().pool.query(
    "select count(*)::int as n from pgshift.cutover_repairs where status = 'pending'",
  );
  assert.equal(pending.rows[0].n, 0);
  const task = await db().pool.query("select doc from tasks where id = 't00001'");
  assert.deepEqual(Object.keys(task.rows[0].doc).sort(), ["id", "progress", "project", "status", "title"]);
});

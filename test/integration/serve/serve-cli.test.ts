import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";
import { PGSHIFT_BIN, runCli } from "../../helpers/cli.ts";
import { serverUrl, useTestDatabase } from "../../helpers/database.ts";

const db = useTestDatabase("servecli");

function startServe(args: readonly string[]) {
  return spawn(process.execPath, [PGSHIFT_BIN, "serve", "--port", "0", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
}

it("pgshift serve answers /livez, /readyz and /metrics for --to, and stops with exit 0 on SIGTERM", async () => {
  const child = startServe(["--to", serverUrl()]);
  let stderr = "";
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no serving line: ${stderr}`)), 30_000);
    child.stderr.on("data", (d) => {
      stderr += d;
      const match = /serving (http:\/\/[^/\s]+)\/livez/.exec(stderr);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
  });
  try {
    assert.equal((await fetch(`${url}/livez`)).status, 200);
    const ready = await fetch(`${url}/readyz`);
    assert.equal(ready.status, 200);
    assert.equal(((await ready.json()) as { status: string }).status, "pass");
    const metrics = await (await fetch(`${url}/metrics`)).text();
    assert.match(metrics, /^pg_up 1$/m);
    assert.doesNotMatch(metrics, /pgshift_backup_/, "backup metrics only with --backup-repo");
    assert.ok(!stderr.includes(new URL(serverUrl()).password || "\u0000"), "the password is never printed");
  } finally {
    child.kill("SIGTERM");
  }
  const [code] = await once(child, "close");
  assert.equal(code, 0, stderr);
});

it("pgshift serve --expect-migrations: /readyz 503 naming the unapplied migration; lag thresholds pass when not configured", async () => {
  const dir = mkdtempSync(join(tmpdir(), "pgshift-serve-migrations-"));
  writeFileSync(join(dir, "20250101000000_first.sql"), "-- migrate:up\ncreate table t (id int);\n");
  const child = startServe([
    "--to",
    db().url,
    "--expect-migrations",
    dir,
    "--max-archive-lag",
    "5m",
    "--max-replication-lag",
    "30s",
  ]);
  let stderr = "";
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no serving line: ${stderr}`)), 30_000);
      child.stderr.on("data", (d) => {
        stderr += d;
        const match = /serving (http:\/\/[^/\s]+)\/livez/.exec(stderr);
        if (match) {
          clearTimeout(timer);
          resolve(match[1]!);
        }
      });
    });
    assert.match(
      stderr,
      /readiness: database:responseTime, migrations:applied, archiver:lag, replication:lag/,
    );
    const ready = await fetch(`${url}/readyz`);
    assert.equal(ready.status, 503);
    const body = (await ready.json()) as {
      failing: { name: string; output: string }[];
      checks: Record<string, { status: string; observedValue: unknown }[]>;
    };
    assert.deepEqual(body.failing, [
      {
        name: "migrations:applied",
        output: 'missing migrations: 20250101000000_first; run "pgshift migrate up"',
      },
    ]);
    assert.equal(body.checks["archiver:lag"]![0]!.observedValue, "not configured");
    assert.equal(body.checks["replication:lag"]![0]!.observedValue, "no replicas");
  } finally {
    child.kill("SIGTERM");
    rmSync(dir, { recursive: true, force: true });
  }
  const [code] = await once(child, "close");
  assert.equal(code, 0, stderr);
});

it("pgshift serve refuses a bad --max-archive-lag with a usage error (exit 2)", async () => {
  const result = await runCli(["serve", "--to", serverUrl(), "--max-archive-lag", "soon"]);
  assert.equal(result.code, 2, result.stderr);
  assert.match(result.stderr, /--max-archive-lag "soon": expected a positive duration/);
});

it("pgshift serve refuses a --backup-repo that does not exist (exit 2)", async () => {
  const result = await runCli(["serve", "--to", serverUrl(), "--backup-repo", "/nonexistent/backups"]);
  assert.equal(result.code, 2, result.stderr);
  assert.match(result.stderr, /--backup-repo \/nonexistent\/backups: no such directory/);
});

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { PGSHIFT_BIN } from "../../helpers/cli.ts";
import { createTestDatabase } from "../../helpers/database.ts";
import { verifySqlite } from "../../../src/verify/verify-import.ts";
import { type Fixture, makeFixture } from "./fixture.ts";

export interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the real CLI; unlike runCli it keeps the signal, so a test can tell a SIGKILL from a failure. */
export function spawnCli(
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 120_000,
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
    for (const key of [
      "DATABASE_URL",
      "PGHOST",
      "PGDATABASE",
      "PGUSER",
      "PGPASSWORD",
      "PGPORT",
      "PGSHIFT_TEST_KILL_AT",
    ]) {
      if (!(key in env)) delete childEnv[key];
    }
    const child = spawn(process.execPath, [PGSHIFT_BIN, ...args], {
      env: childEnv,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

export function tail(text: string, lines = 8): string {
  return text.trim().split("\n").slice(-lines).join("\n");
}

export const FIXTURE_ROWS = { items: 1600, pairs: 200, loose: 100, orders: 1600 };

/** Import arguments: small chunks so that the data phase has several checkpoints to crash between. */
export function importArgs(path: string, url: string, extra: string[] = []): string[] {
  return ["import", path, "--to", url, "--chunk-rows", "300", "--jobs", "2", "--json", ...extra];
}

/**
 * For each crash point: a fresh database, an import killed (SIGKILL) at that point, `import --resume`,
 * then an independent verification: identical, with every source row exactly once.
 */
export function crashPointSuite(title: string, points: readonly string[]): void {
  let fixture: Fixture;
  before(() => {
    fixture = makeFixture({ items: FIXTURE_ROWS.items, relations: true });
  });
  after(() => fixture?.cleanup());

  describe(title, { concurrency: 3 }, () => {
    for (const point of points) {
      it(`killed at ${point}, resumed, verified identical`, async () => {
        const database = await createTestDatabase("vres");
        try {
          const killed = await spawnCli(importArgs(fixture.path, database.url), {
            PGSHIFT_TEST_KILL_AT: point,
          });
          assert.equal(
            killed.signal,
            "SIGKILL",
            `the import was not killed at ${point} (exit ${killed.code}):\n${tail(killed.stderr)}`,
          );
          const resumed = await spawnCli(importArgs(fixture.path, database.url, ["--resume"]));
          if (point === "run:after-complete") {
            assert.equal(resumed.code, 2, tail(resumed.stderr));
            assert.match(resumed.stderr, /no unfinished import|already completed/);
          } else {
            assert.equal(
              resumed.code,
              0,
              `resume after ${point} failed:\n${tail(resumed.stderr)}\n${tail(resumed.stdout)}`,
            );
            const result = JSON.parse(resumed.stdout) as {
              resumed: boolean;
              verification?: { identical: boolean };
            };
            assert.equal(result.resumed, true);
            assert.equal(result.verification?.identical, true, "the resumed import's own verification");
          }
          const verified = await verifySqlite({ sourcePath: fixture.path, pool: database.pool });
          assert.equal(
            verified.status,
            "identical",
            JSON.stringify(verified.tables.filter((t) => t.status !== "identical")),
          );
          assert.equal(verified.plan.from, "import-run");
          assert.deepEqual(
            Object.fromEntries(verified.tables.map((t) => [t.table, [t.sourceRows, t.targetRows]])),
            Object.fromEntries(Object.entries(FIXTURE_ROWS).map(([t, n]) => [t, [n, n]])),
          );
        } finally {
          await database.drop();
        }
      });
    }
  });
}

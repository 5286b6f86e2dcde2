import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import {
  destroyLocalInstance,
  localInstanceStatus,
  localInstanceUrl,
  startLocalInstance,
} from "../../../src/local/instance.ts";
import { chooseRunAs, runAsUser } from "../../../src/local/run-as.ts";
import { createPool } from "../../../src/pg/pool.ts";
import { verifySqlite } from "../../../src/verify/verify-import.ts";
import { testBinaries } from "../../helpers/binaries.ts";
import { PGSHIFT_BIN } from "../../helpers/cli.ts";
import { withDatabase } from "../../helpers/database.ts";
import { type Fixture, makeFixture } from "./fixture.ts";
import { importArgs, spawnCli, tail } from "./resume-helpers.ts";

/**
 * The PostgreSQL server dies (pg_ctl stop -m immediate: no shutdown checkpoint, like a crash) while
 * the import is in the middle of a COPY; after the server is started again, `import --resume`
 * completes the job and verification finds the target identical to the source.
 */
const instance = {
  name: `vrestart-${process.pid}`,
  baseDir: join(tmpdir(), "pgshift-verify-restart"),
  // Durable settings, as users get: this test crashes the server (pg_ctl -m immediate), and with the
  // test runs' synchronous_commit = off the commits of the last few hundred ms would vanish with it.
  ephemeral: false,
  binaries: testBinaries(),
};
const ITEMS = 40_000;
let fixture: Fixture;
let url: string;

async function activeCopies(adminUrl: string): Promise<number> {
  const client = new pg.Client({ connectionString: adminUrl });
  try {
    await client.connect();
    const { rows } = await client.query(
      "select count(*)::int as n from pg_stat_activity where state = 'active' and query ilike 'copy %'",
    );
    return rows[0].n;
  } catch {
    return 0;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function stopImmediately(): Promise<void> {
  const status = await localInstanceStatus(instance);
  const result = await runAsUser(
    chooseRunAs(),
    join(status.binDir!, "pg_ctl"),
    ["stop", "-w", "-m", "immediate", "-D", status.dataDir],
    status.dir,
  );
  assert.equal(result.code, 0, result.stderr);
}

describe("server restart in the middle of a COPY", () => {
  before(async () => {
    await startLocalInstance(instance);
    const adminUrl = localInstanceUrl(instance);
    const client = new pg.Client({ connectionString: adminUrl });
    await client.connect();
    await client.query("create database restart_target");
    await client.end();
    url = withDatabase(adminUrl, "restart_target");
    fixture = makeFixture({ items: ITEMS, relations: true });
  });

  after(async () => {
    fixture?.cleanup();
    await destroyLocalInstance(instance).catch(() => undefined);
    rmSync(instance.baseDir, { recursive: true, force: true });
  });

  it("resumes after the server comes back and verifies identical", async () => {
    const adminUrl = localInstanceUrl(instance);
    const child = spawn(
      process.execPath,
      [PGSHIFT_BIN, ...importArgs(fixture.path, url, ["--chunk-rows", "2000"])],
      {
        env: { ...process.env, PGSHIFT_TEST_KILL_AT: "" },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    child.stdout.resume();
    const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
    let sawCopy = false;
    const deadline = Date.now() + 90_000;
    while (Date.now() < deadline && child.exitCode === null) {
      if ((await activeCopies(adminUrl)) > 0) {
        sawCopy = true;
        break;
      }
      await sleep(25);
    }
    assert.ok(sawCopy, `never saw the import's COPY running:\n${tail(stderr)}`);
    await stopImmediately();
    const code = await exited;
    assert.notEqual(code, 0, "the import cannot have succeeded with its server gone");

    await startLocalInstance(instance);
    const pool = createPool({ url, max: 4 });
    try {
      const { rows } = await pool.query(
        "select count(*) filter (where status = 'done')::int as done, count(*)::int as total from pgshift.import_chunks",
      );
      assert.ok(
        rows[0].done < rows[0].total,
        `crashed mid-import: ${rows[0].done} of ${rows[0].total} chunks done`,
      );

      const resumed = await spawnCli(importArgs(fixture.path, url, ["--resume"]));
      assert.equal(resumed.code, 0, `resume failed:\n${tail(resumed.stderr)}\n${tail(resumed.stdout)}`);
      const result = JSON.parse(resumed.stdout) as { verification?: { identical: boolean } };
      assert.equal(result.verification?.identical, true);

      const verified = await verifySqlite({ sourcePath: fixture.path, pool });
      assert.equal(
        verified.status,
        "identical",
        JSON.stringify(verified.tables.filter((t) => t.status !== "identical")),
      );
      const items = verified.tables.find((t) => t.table === "items")!;
      assert.equal(items.sourceRows, ITEMS);
      assert.equal(items.targetRows, ITEMS);
    } finally {
      await pool.end();
    }
  });
});

import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";
import pg from "pg";
import { destroyLocalInstance, localInstanceUrl, startLocalInstance } from "../../../src/local/instance.ts";
import { testBinaries } from "../../helpers/binaries.ts";
import { runCli } from "../../helpers/cli.ts";

/** A private managed instance: tune --apply rewrites its postgresql.auto.conf and restarts it. */
const instance = {
  name: `tune-${process.pid}`,
  baseDir: join(tmpdir(), "pgshift-tune"),
  ephemeral: true,
  binaries: testBinaries(),
};

before(async () => {
  await startLocalInstance(instance);
});

after(async () => {
  await destroyLocalInstance(instance).catch(() => undefined);
  rmSync(instance.baseDir, { recursive: true, force: true });
});

async function show(names: string[]): Promise<Record<string, string>> {
  const client = new pg.Client({ connectionString: localInstanceUrl(instance) });
  await client.connect();
  try {
    const { rows } = await client.query<{ name: string; value: string }>(
      "select name, current_setting(name) as value from unnest($1::text[]) as name",
      [names],
    );
    return Object.fromEntries(rows.map((r) => [r.name, r.value]));
  } finally {
    await client.end();
  }
}

it("tune --apply --restart sets the managed instance's settings, restarting it for max_connections", async () => {
  const env = { PGSHIFT_LOCAL_NAME: instance.name, PGSHIFT_LOCAL_DIR: instance.baseDir };
  const result = await runCli(
    ["tune", "--apply", "--restart", "--memory", "512MB", "--cpus", "2", "--connections", "50", "--json"],
    { env },
  );
  assert.equal(result.code, 0, result.stderr);
  const answer = JSON.parse(result.stdout);
  assert.equal(answer.restarted, true);
  assert.ok(answer.pendingRestart.includes("max_connections"), JSON.stringify(answer.pendingRestart));
  const now = await show(["max_connections", "shared_buffers", "work_mem", "random_page_cost", "jit"]);
  assert.deepEqual(now, {
    max_connections: "50",
    shared_buffers: "128MB",
    work_mem: "4MB",
    random_page_cost: "1.1",
    jit: "off",
  });
});

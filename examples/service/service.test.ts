// The service example, end to end against a private PostgreSQL: least-privilege roles, migrations as the
// migrator, a refused start while a migration is missing, tenants isolated by row-level security, and
// /readyz following the database down (503 within 2 s) and back up (200 within 2 s).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import {
  destroyLocalInstance,
  localInstanceUrl,
  startLocalInstance,
  stopLocalInstance,
} from "../../src/local/instance.ts";
import { migrate } from "../../src/migrate/index.ts";
import { createPool, poolMetricsOf } from "../../src/pg/pool.ts";
import { quoteIdent } from "../../src/pg/quote.ts";
import { provisionRoles, readPgpassPassword } from "../../src/provision/index.ts";
import { testBinaries } from "../../test/helpers/binaries.ts";
import { MIGRATIONS_DIR, type Service, startService } from "./service.ts";

const instance = {
  name: `service-${process.pid}`,
  baseDir: join(tmpdir(), "pgshift-service"),
  ephemeral: true,
  binaries: testBinaries(),
};
const app = `notes${randomBytes(3).toString("hex")}`;
const secrets = mkdtempSync(join(tmpdir(), "pgshift-service-pw-"));
const passwordFile = join(secrets, "notes.pgpass");

function roleUrl(role: string): string {
  const url = new URL(localInstanceUrl(instance));
  url.username = role;
  url.password = readPgpassPassword(passwordFile, role)!;
  return url.toString();
}

async function status(url: string): Promise<number> {
  return (await fetch(url)).status;
}

/** Polls `url` until it answers `expected`; the milliseconds that took. */
async function becomes(url: string, expected: number, withinMs: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    const answer = await status(url);
    if (answer === expected) return Date.now() - started;
    if (Date.now() - started > withinMs) assert.fail(`${url} still ${answer} after ${withinMs} ms`);
    await sleep(25);
  }
}

describe("examples/service: a notes service with createPool, migrations, health server and RLS", () => {
  let service: Service | undefined;
  before(async () => {
    await startLocalInstance(instance);
    const admin = createPool({ url: localInstanceUrl(instance), max: 1 });
    try {
      await provisionRoles({ pool: admin, app, passwordFile });
    } finally {
      await admin.end();
    }
  });
  after(async () => {
    await service?.close().catch(() => undefined);
    await destroyLocalInstance(instance).catch(() => undefined);
    rmSync(instance.baseDir, { recursive: true, force: true });
    rmSync(secrets, { recursive: true, force: true });
  });

  it("refuses to start before migrate up, naming the missing migration", async () => {
    await assert.rejects(startService({ databaseUrl: roleUrl(`${app}_app`) }), (error: Error) => {
      assert.match(error.message, /missing: 20250201090000_create_notes\. Run "pgshift migrate up"/);
      return true;
    });
  });

  it("starts once migrated; each tenant sees only its rows; the app role cannot drop the table", async () => {
    const migrator = createPool({ url: roleUrl(`${app}_migrator`), max: 1 });
    try {
      assert.equal((await migrate({ pool: migrator, dir: MIGRATIONS_DIR })).applied, 1);
      // the app role reads the migration history for its start-up check (provision does not grant it)
      await migrator.query(
        `grant usage on schema pgshift to ${quoteIdent(`${app}_app`)}; grant select on pgshift.migrations to ${quoteIdent(`${app}_app`)}`,
      );
    } finally {
      await migrator.end();
    }
    service = await startService({ databaseUrl: roleUrl(`${app}_app`) });
    assert.equal(await status(`${service.healthUrl}/readyz`), 200);
    assert.equal(await status(`${service.healthUrl}/livez`), 200);

    const post = (tenant: string, body: string) =>
      fetch(`${service!.url}/notes`, {
        method: "POST",
        headers: { "x-tenant": tenant, "content-type": "application/json" },
        body: JSON.stringify({ body }),
      });
    for (const [tenant, body] of [
      ["acme", "acme 1"],
      ["acme", "acme 2"],
      ["globex", "globex 1"],
    ])
      assert.equal((await post(tenant, body)).status, 201);
    const list = async (tenant: string) => {
      const response = await fetch(`${service!.url}/notes`, { headers: { "x-tenant": tenant } });
      assert.equal(response.status, 200);
      return ((await response.json()) as { notes: { body: string }[] }).notes.map((n) => n.body);
    };
    assert.deepEqual(await list("acme"), ["acme 1", "acme 2"]);
    assert.deepEqual(await list("globex"), ["globex 1"]);
    assert.deepEqual(await list("initech"), []);
    assert.equal((await fetch(`${service.url}/notes`)).status, 400, "no tenant, no answer");

    // outside a transaction with the tenant set, the app role sees nothing
    const { rows } = await service.pool.query("select count(*)::int as n from notes");
    assert.equal(rows[0].n, 0);
    await assert.rejects(service.pool.query("drop table notes"), /must be owner/);
    await assert.rejects(service.pool.query("truncate notes"), /permission denied/);

    const metrics = await (await fetch(`${service.healthUrl}/metrics`)).text();
    assert.match(
      metrics,
      /^db_client_operation_duration_seconds_count\{operation="add_note",outcome="ok"\} 3$/m,
    );
    assert.match(
      metrics,
      /^db_client_operation_duration_seconds_count\{operation="list_notes",outcome="ok"\} 3$/m,
    );
  });

  it("/readyz is 503 within 2 s of the database stopping, requests fail fast, and 200 within 2 s of its return", async () => {
    assert.ok(service, "the service runs");
    const readyz = `${service.healthUrl}/readyz`;
    await stopLocalInstance(instance);
    const downMs = await becomes(readyz, 503, 2_000);
    assert.equal(await status(`${service.healthUrl}/livez`), 200);

    // an outage of a few seconds: requests answer 503 without hanging, and the breaker spares the server
    const attemptsBefore = poolMetricsOf(service.pool)!.connectAttempts;
    const outageStarted = Date.now();
    let slowest = 0;
    while (Date.now() - outageStarted < 3_000) {
      const started = Date.now();
      const response = await fetch(`${service.url}/notes`, { headers: { "x-tenant": "acme" } });
      slowest = Math.max(slowest, Date.now() - started);
      assert.equal(response.status, 503);
      await sleep(20);
    }
    const attemptsPerSecond =
      (poolMetricsOf(service.pool)!.connectAttempts - attemptsBefore) / ((Date.now() - outageStarted) / 1000);
    assert.ok(
      attemptsPerSecond < 10,
      `${attemptsPerSecond} connection attempts per second during the outage`,
    );
    assert.ok(slowest < 1_500, `a request took ${slowest} ms during the outage (connect timeout 1 s)`);

    await startLocalInstance(instance);
    const upMs = await becomes(readyz, 200, 2_000);
    const response = await fetch(`${service.url}/notes`, { headers: { "x-tenant": "acme" } });
    assert.equal(response.status, 200);
    process.stdout.write(
      `# service: /readyz 503 after ${downMs} ms, 200 after ${upMs} ms; ${attemptsPerSecond.toFixed(1)} connection attempts/s during the outage; slowest request ${slowest} ms\n`,
    );
  });
});

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";
import pg from "pg";
import {
  destroyLocalInstance,
  localInstanceUrl,
  localPgbouncerUrl,
  startLocalInstance,
} from "../../../src/local/instance.ts";
import { createPool } from "../../../src/pg/pool.ts";
import { provisionRls, provisionRoles, readPgpassPassword } from "../../../src/provision/index.ts";
import { testBinaries } from "../../helpers/binaries.ts";

const instance = {
  name: `bouncer-${process.pid}`,
  baseDir: join(tmpdir(), "pgshift-bouncer"),
  ephemeral: true,
  binaries: testBinaries(),
};
const app = `b${randomBytes(3).toString("hex")}`;
const dir = mkdtempSync(join(tmpdir(), "pgshift-bouncer-pw-"));
const passwordFile = join(dir, "pw.pgpass");

before(async () => {
  const started = await startLocalInstance({ ...instance, pgbouncer: true });
  assert.ok(started.status.pgbouncerPort, "the status names PgBouncer port");
});

after(async () => {
  await destroyLocalInstance(instance).catch(() => undefined);
  rmSync(instance.baseDir, { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
});

it("through PgBouncer in transaction mode: 20 concurrent clients, and RLS isolates tenants with SET LOCAL", async () => {
  const admin = createPool({ url: localInstanceUrl(instance), max: 2 });
  try {
    await provisionRoles({ pool: admin, app, passwordFile });
    await admin.query("create table notes (id serial primary key, tenant_id int not null, body text)");
    await admin.query(`alter table notes owner to "${app}_owner"`);
    await admin.query(`grant select, insert, update, delete on notes to "${app}_app"`);
    await admin.query(`grant usage on sequence notes_id_seq to "${app}_app"`);
    await provisionRls({ pool: admin, table: "notes" });
  } finally {
    await admin.end();
  }

  const url = new URL(localPgbouncerUrl(instance));
  assert.notEqual(url.port, new URL(localInstanceUrl(instance)).port);
  url.username = `${app}_app`;
  url.password = readPgpassPassword(passwordFile, `${app}_app`)!;
  const pool = new pg.Pool({ connectionString: url.toString(), max: 20 });
  try {
    const checkouts: number[] = [];
    await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const tenant = String((i % 4) + 1);
        const started = performance.now();
        const client = await pool.connect();
        checkouts.push(performance.now() - started);
        try {
          await client.query("begin");
          await client.query("select set_config('app.tenant', $1, true)", [tenant]);
          await client.query("insert into notes (tenant_id, body) values ($1, $2)", [tenant, `n${i}`]);
          await client.query("commit");
        } finally {
          client.release();
        }
      }),
    );
    const { rows: server } = await pool.query("select current_setting('port') as port");
    assert.equal(
      server[0].port,
      new URL(localInstanceUrl(instance)).port,
      "queries reach the server through PgBouncer",
    );
    for (const tenant of ["1", "2", "3", "4"]) {
      const client = await pool.connect();
      try {
        await client.query("begin");
        await client.query("set local app.tenant = " + `'${tenant}'`);
        const { rows } = await client.query("select distinct tenant_id from notes");
        const { rows: count } = await client.query("select count(*)::int as n from notes");
        await client.query("commit");
        assert.deepEqual(rows, [{ tenant_id: Number(tenant) }]);
        assert.equal(count[0].n, 5);
      } finally {
        client.release();
      }
    }
    // outside a transaction with SET LOCAL no tenant is set, whichever server connection PgBouncer picks
    const { rows: none } = await pool.query("select count(*)::int as n from notes");
    assert.equal(none[0].n, 0);
    checkouts.sort((a, b) => a - b);
    process.stdout.write(`# 20 clients through pgbouncer: checkout p99 ${checkouts[19]!.toFixed(1)} ms\n`);
  } finally {
    await pool.end();
  }
});

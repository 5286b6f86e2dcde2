import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { migrate } from "../../../src/migrate/index.ts";
import { createPool } from "../../../src/pg/pool.ts";
import { provisionRls, provisionRoles, readPgpassPassword } from "../../../src/provision/index.ts";
import { createTestDatabase, serverUrl, type TestDatabase } from "../../helpers/database.ts";

const app = `t${randomBytes(4).toString("hex")}`;
const roles = {
  owner: `${app}_owner`,
  migrator: `${app}_migrator`,
  app: `${app}_app`,
  readonly: `${app}_readonly`,
};
let db: TestDatabase;
let dir: string;
let passwordFile: string;

function connectAs(role: string): pg.Client {
  const url = new URL(db.url);
  url.username = role;
  url.password = readPgpassPassword(passwordFile, role) ?? "";
  return new pg.Client({ connectionString: url.toString() });
}

async function as<T>(role: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = connectAs(role);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function sqlstate(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    return (error as { code?: string }).code;
  }
}

/** Everything provisioning decides, read back from the catalogs: a second run must leave it equal. */
async function privilegeSnapshot(): Promise<unknown> {
  const { rows } = await db.pool.query(
    `select
       (select json_agg(json_build_object('r', a.rolname, 'login', a.rolcanlogin, 'pw', a.rolpassword,
               'conf', r.rolconfig) order by a.rolname)
          from pg_authid a join pg_roles r on r.oid = a.oid where a.rolname like $1) as roles,
       (select datacl::text from pg_database where datname = current_database()) as database_acl,
       (select nspacl::text from pg_namespace where nspname = 'public') as schema_acl,
       (select json_agg(defaclacl::text order by defaclobjtype) from pg_default_acl) as default_acl,
       (select json_agg(relacl::text order by relname) from pg_class where relnamespace = 'public'::regnamespace) as table_acl,
       (select json_agg(roleid::regrole::text || '>' || member::regrole::text) from pg_auth_members
         where member::regrole::text like $1) as members`,
    [`${app}\\_%`],
  );
  return rows[0];
}

describe("provision: least-privilege roles for an application database", () => {
  before(async () => {
    db = await createTestDatabase("prov");
    dir = mkdtempSync(join(tmpdir(), "pgshift-provision-"));
    passwordFile = join(dir, "passwords.pgpass");
  });

  after(async () => {
    await db?.drop();
    const admin = new pg.Client({ connectionString: serverUrl() });
    await admin.connect();
    for (const role of [roles.readonly, roles.app, roles.migrator, roles.owner])
      await admin.query(`drop role if exists "${role}"`);
    await admin.end();
    rmSync(dir, { recursive: true, force: true });
  });

  it("--dry-run plans the SQL without passwords and changes nothing", async () => {
    const plan = await provisionRoles({ pool: db.pool, app, dryRun: true });
    assert.deepEqual(plan.created, Object.values(roles));
    const text = plan.statements.map((s) => s.display).join("\n");
    assert.match(text, new RegExp(`CREATE ROLE "${roles.owner}" NOLOGIN`));
    assert.match(text, new RegExp(`CREATE ROLE "${roles.app}" LOGIN .* PASSWORD '\\*{8}'`));
    assert.doesNotMatch(text, /SCRAM-SHA-256/);
    assert.match(text, /REVOKE ALL ON SCHEMA "public" FROM PUBLIC/);
    const { rows } = await db.pool.query("select count(*)::int as n from pg_roles where rolname like $1", [
      `${app}\\_%`,
    ]);
    assert.equal(rows[0].n, 0);
  });

  it("creates the roles, writes passwords to a 0600 file, and the migrator's tables belong to the owner", async () => {
    const result = await provisionRoles({ pool: db.pool, app, passwordFile });
    assert.deepEqual(result.created, Object.values(roles));
    assert.deepEqual(result.passwordsWritten, [roles.migrator, roles.app, roles.readonly]);
    assert.equal(statSync(passwordFile).mode & 0o777, 0o600);
    const file = readFileSync(passwordFile, "utf8");
    assert.equal(file.trim().split("\n").length, 3);
    assert.doesNotMatch(JSON.stringify(result), new RegExp(readPgpassPassword(passwordFile, roles.app)!));

    await as(roles.migrator, async (client) => {
      await client.query("create table items (id serial primary key, tenant_id int not null, name text)");
    });
    const { rows } = await db.pool.query("select tableowner from pg_tables where tablename = 'items'");
    assert.equal(rows[0].tableowner, roles.owner);
    const { rows: settings } = await db.pool.query("select rolconfig from pg_roles where rolname = $1", [
      roles.app,
    ]);
    assert.deepEqual(settings[0].rolconfig, [
      "statement_timeout=30000",
      "idle_in_transaction_session_timeout=10000",
    ]);
  });

  it("app does DML only: no create, drop or truncate", async () => {
    await as(roles.app, async (client) => {
      await client.query("insert into items (tenant_id, name) values (1, 'a'), (2, 'b')");
      await client.query("update items set name = 'a2' where name = 'a'");
      await client.query("delete from items where name = 'b'");
      const { rows } = await client.query("select name from items order by id");
      assert.deepEqual(rows, [{ name: "a2" }]);
      const { rows: timeout } = await client.query("show statement_timeout");
      assert.equal(timeout[0].statement_timeout, "30s");
      assert.equal(await sqlstate(client.query("create table evil (x int)")), "42501");
      assert.equal(await sqlstate(client.query("drop table items")), "42501");
      assert.equal(await sqlstate(client.query("truncate items")), "42501");
      assert.equal(await sqlstate(client.query("alter table items add column x int")), "42501");
    });
  });

  it("readonly reads and cannot write", async () => {
    await as(roles.readonly, async (client) => {
      const { rows } = await client.query("select count(*)::int as n from items");
      assert.equal(rows[0].n, 1);
      assert.equal(
        await sqlstate(client.query("insert into items (tenant_id, name) values (1, 'x')")),
        "42501",
      );
      assert.equal(await sqlstate(client.query("delete from items")), "42501");
    });
  });

  it("running it again is a no-op: same catalogs, same password file", async () => {
    const before = await privilegeSnapshot();
    const fileBefore = readFileSync(passwordFile, "utf8");
    const again = await provisionRoles({ pool: db.pool, app, passwordFile });
    assert.deepEqual(again.created, []);
    assert.deepEqual(again.passwordsWritten, []);
    assert.deepEqual(await privilegeSnapshot(), before);
    assert.equal(readFileSync(passwordFile, "utf8"), fileBefore);
  });

  it("after the first migrate, provision again lets app and readonly read pgshift.migrations, and nothing else of pgshift", async () => {
    assert.equal((await provisionRoles({ pool: db.pool, app, passwordFile })).migrationsReadable, false);
    const migrations = join(dir, "migrations");
    mkdirSync(migrations);
    writeFileSync(
      join(migrations, "20260101000000_notes.sql"),
      "-- migrate:up\ncreate table notes (id int primary key);\n-- migrate:down\ndrop table notes;\n",
    );
    const url = new URL(db.url);
    url.username = roles.migrator;
    url.password = readPgpassPassword(passwordFile, roles.migrator) ?? "";
    const migrator = createPool({ url: url.toString(), max: 1 });
    try {
      const applied = await migrate({ pool: migrator, dir: migrations });
      assert.equal(applied.ok, true);
    } finally {
      await migrator.end();
    }
    const again = await provisionRoles({ pool: db.pool, app, passwordFile });
    assert.equal(again.migrationsReadable, true);
    for (const role of [roles.app, roles.readonly])
      await as(role, async (client) => {
        const { rows } = await client.query("select version from pgshift.migrations");
        assert.deepEqual(rows, [{ version: "20260101000000" }]);
        assert.equal(await sqlstate(client.query("delete from pgshift.migrations")), "42501");
        assert.equal(await sqlstate(client.query("select * from pgshift.migration_log")), "42501");
      });
  });

  it("rls: FORCEd policy on app.tenant isolates tenants set per transaction with SET LOCAL", async () => {
    const first = await provisionRls({ pool: db.pool, table: "items", column: "tenant_id" });
    assert.equal(first.changed, true);
    assert.equal(first.statements.length, 3);
    const second = await provisionRls({ pool: db.pool, table: "items", column: "tenant_id" });
    assert.equal(second.changed, false);
    assert.deepEqual(second.statements, []);

    await as(roles.app, async (client) => {
      for (const tenant of ["1", "2"]) {
        await client.query("begin");
        await client.query("select set_config('app.tenant', $1, true)", [tenant]);
        await client.query("insert into items (tenant_id, name) values ($1, $2)", [tenant, `t${tenant}`]);
        await client.query("commit");
      }
      await client.query("begin");
      await client.query("set local app.tenant = '2'");
      const { rows } = await client.query("select tenant_id, name from items order by id");
      assert.deepEqual(rows, [{ tenant_id: 2, name: "t2" }]);
      assert.equal(
        await sqlstate(client.query("insert into items (tenant_id, name) values (1, 'sneak')")),
        "42501",
      );
      await client.query("rollback");
      // after the transaction the setting is gone: no tenant, no rows
      const { rows: none } = await client.query("select count(*)::int as n from items");
      assert.equal(none[0].n, 0);
    });
    // the migrator works as the owner, and FORCE binds the owner too
    await as(roles.migrator, async (client) => {
      const { rows } = await client.query("select count(*)::int as n from items");
      assert.equal(rows[0].n, 0);
    });
    const { rows: all } = await db.pool.query("select count(*)::int as n from items");
    assert.equal(all[0].n, 3, "the superuser bypasses RLS and sees every tenant");
  });
});

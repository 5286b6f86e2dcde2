import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import pg from "pg";
import { readPgpassPassword } from "../../../src/provision/index.ts";
import { runCli } from "../../helpers/cli.ts";
import { serverUrl, useTestDatabase } from "../../helpers/database.ts";

const app = `c${randomBytes(4).toString("hex")}`;
const dir = mkdtempSync(join(tmpdir(), "pgshift-provision-cli-"));
const passwordFile = join(dir, "secrets.pgpass");
const db = useTestDatabase("provcli");

describe("pgshift provision (CLI)", () => {
  after(async () => {
    await db().drop();
    const admin = new pg.Client({ connectionString: serverUrl() });
    await admin.connect();
    for (const kind of ["readonly", "app", "migrator", "owner"])
      await admin.query(`drop role if exists "${app}_${kind}"`);
    await admin.end();
    rmSync(dir, { recursive: true, force: true });
  });

  it("--dry-run prints quoted SQL with masked passwords; a real run prints no password; a second creates nothing", async () => {
    const dry = await runCli(["provision", "--to", db().url, "--app", app, "--dry-run"]);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, new RegExp(`^CREATE ROLE "${app}_owner" NOLOGIN;$`, "m"));
    assert.match(dry.stdout, new RegExp(`^GRANT "${app}_owner" TO "${app}_migrator";$`, "m"));
    assert.match(dry.stdout, /PASSWORD '\*{8}' -- generated/);
    assert.doesNotMatch(dry.stdout, /SCRAM/);

    const run = await runCli(["provision", "--to", db().url, "--app", app, "--password-file", passwordFile]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(
      run.stdout,
      new RegExp(`created: ${app}_owner, ${app}_migrator, ${app}_app, ${app}_readonly`),
    );
    assert.equal(statSync(passwordFile).mode & 0o777, 0o600);
    for (const kind of ["migrator", "app", "readonly"]) {
      const password = readPgpassPassword(passwordFile, `${app}_${kind}`);
      assert.ok(password && password.length >= 32);
      assert.ok(!run.stdout.includes(password) && !run.stderr.includes(password));
    }
    const again = await runCli([
      "provision",
      "--to",
      db().url,
      "--app",
      app,
      "--password-file",
      passwordFile,
      "--json",
    ]);
    assert.equal(again.code, 0, again.stderr);
    const answer = JSON.parse(again.stdout);
    assert.deepEqual(answer.created, []);
    assert.deepEqual(answer.passwordsWritten, []);
    assert.equal(readFileSync(passwordFile, "utf8").trim().split("\n").length, 3);

    await db().pool.query("create table orders (id int primary key, tenant_id int not null)");
    const rls = await runCli(["provision", "rls", "--to", db().url, "--table", "orders", "--dry-run"]);
    assert.equal(rls.code, 0, rls.stderr);
    assert.equal(
      rls.stdout.trim(),
      [
        `ALTER TABLE "public"."orders" ENABLE ROW LEVEL SECURITY;`,
        `ALTER TABLE "public"."orders" FORCE ROW LEVEL SECURITY;`,
        `CREATE POLICY "pgshift_tenant_isolation" ON "public"."orders" USING ("tenant_id" = nullif(current_setting('app.tenant', true), '')::integer) WITH CHECK ("tenant_id" = nullif(current_setting('app.tenant', true), '')::integer);`,
      ].join("\n"),
    );
  });
});

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, it } from "node:test";
import pg from "pg";
import { chooseRunAs, giveTo, runAsUser } from "../../../src/local/run-as.ts";
import { runCli } from "../../helpers/cli.ts";
import { serverUrl } from "../../helpers/database.ts";

const role = `pgb_${randomBytes(3).toString("hex")}`;
const password = randomBytes(12).toString("hex");
const dir = mkdtempSync(join(tmpdir(), "pgshift-pgb-config-"));
let pid: number | undefined;

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl() });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

after(async () => {
  if (pid) process.kill(pid, "SIGINT");
  await sleep(200);
  await admin(`drop role if exists "${role}"`);
  rmSync(dir, { recursive: true, force: true });
});

it("pgbouncer config writes an ini and a 0600 auth file with which a real PgBouncer lets the role in", async () => {
  await admin(`create role "${role}" login password '${password}'`);
  const port = await freePort();
  const out = join(dir, "pgb");
  const result = await runCli([
    "pgbouncer",
    "config",
    "--to",
    serverUrl(),
    "--users",
    role,
    "--out",
    out,
    "--listen-port",
    String(port),
  ]);
  assert.equal(result.code, 0, result.stderr);
  const authFile = join(out, "userlist.txt");
  assert.equal(statSync(authFile).mode & 0o777, 0o600);
  assert.match(readFileSync(authFile, "utf8"), new RegExp(`^"${role}" "SCRAM-SHA-256\\$4096:`));
  assert.ok(!readFileSync(authFile, "utf8").includes(password));
  assert.match(readFileSync(join(out, "pgbouncer.ini"), "utf8"), /^pool_mode = transaction$/m);

  const runAs = chooseRunAs();
  giveTo(runAs, dir);
  const started = await runAsUser(
    runAs,
    "/usr/sbin/pgbouncer",
    ["-d", "-q", join(out, "pgbouncer.ini")],
    out,
  );
  assert.equal(started.code, 0, started.stderr);
  for (let i = 0; i < 50 && pid === undefined; i++) {
    try {
      pid = Number(readFileSync(join(out, "pgbouncer.pid"), "utf8").trim()) || undefined;
    } catch {
      await sleep(100);
    }
  }
  const url = new URL(serverUrl());
  url.username = role;
  url.password = password;
  url.port = String(port);
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    const { rows } = await client.query("select current_user as who, current_setting('port') as port");
    assert.deepEqual(rows, [{ who: role, port: new URL(serverUrl()).port }]);
  } finally {
    await client.end();
  }
});

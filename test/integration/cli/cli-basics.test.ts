import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { testBinariesEnv } from "../../helpers/binaries.ts";
import { runCli } from "../../helpers/cli.ts";
import { useTestDatabase } from "../../helpers/database.ts";

const db = useTestDatabase("cli");
const cwd = mkdtempSync(join(tmpdir(), "pgshift-cli-"));
chmodSync(cwd, 0o755);
const env = testBinariesEnv();

after(async () => {
  await runCli(["local", "destroy"], { cwd, env });
});

test("--help, --version and usage errors", async () => {
  const pkg = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8"));
  const version = await runCli(["--version"], { cwd });
  assert.equal(version.code, 0);
  assert.equal(version.stdout.trim(), pkg.version);
  const help = await runCli(["--help"], { cwd });
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Exit codes: 0 ok, 1 failure, 2 usage/);
  assert.match(help.stdout, /local/);
  const unknown = await runCli(["frobnicate"], { cwd });
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command 'frobnicate'/);
  const badOption = await runCli(["local", "start", "--nope"], { cwd });
  assert.equal(badOption.code, 2);
});

test("with --json, a usage error is a JSON line on stderr and a JSON answer on stdout", async () => {
  const result = await runCli(["--json", "import", "app.db", "--xyzzy"], { cwd });
  assert.equal(result.code, 2);
  const lines = result.stderr.split("\n").filter(Boolean);
  assert.deepEqual(
    lines.map((line) => JSON.parse(line) as unknown),
    [{ event: "error", error: "usage", message: "error: unknown option '--xyzzy'" }],
  );
  assert.deepEqual(JSON.parse(result.stdout), {
    ok: false,
    error: "usage",
    message: "unknown option '--xyzzy'",
  });
});

test("local start / url / status / stop, as the README shows", async () => {
  const start = await runCli(["local", "start"], { cwd, env });
  assert.equal(start.code, 0, start.stderr);
  assert.match(start.stdout, /created and started/);
  assert.match(start.stdout, /url: {2}postgres:\/\/postgres:\*{8}@127\.0\.0\.1:\d+\/postgres/);

  const url = await runCli(["local", "url"], { cwd, env });
  assert.equal(url.code, 0);
  const full = url.stdout.trim();
  assert.match(full, /^postgres:\/\/postgres:[0-9a-f]{36}@127\.0\.0\.1:\d+\/postgres$/);
  const psql = execFileSync("psql", [full, "-Atc", "select 40 + 2"], { encoding: "utf8" });
  assert.equal(psql.trim(), "42");

  const status = await runCli(["local", "status", "--json"], { cwd, env });
  assert.equal(status.code, 0);
  const parsed = JSON.parse(status.stdout);
  assert.equal(parsed.state, "running");
  assert.ok(
    !status.stdout.includes(full.split(":")[2]!.split("@")[0]!),
    "status must not print the password",
  );

  const check = await runCli(["check"], { cwd, env });
  assert.equal(check.code, 0, check.stderr);
  assert.match(check.stderr, /no target given: using managed local PostgreSQL "default"/);
  assert.match(check.stdout, /extensions: pgcrypto \w+, pg_trgm \w+/);

  const stop = await runCli(["local", "stop"], { cwd, env });
  assert.equal(stop.code, 0);
  const stopped = await runCli(["local", "status"], { cwd, env });
  assert.equal(stopped.code, 1);
  assert.match(stopped.stdout, /instance default: stopped/);
});

test("bad settings: one clear message each, no password, exit 2 or 1", async () => {
  const secret = "Sup3rSecretPw";
  const malformed = await runCli(["check", "--to", `mysql://root:${secret}@h/db`], { cwd });
  assert.equal(malformed.code, 2);
  assert.match(malformed.stderr, /is not a PostgreSQL URL/);

  const dir = mkdtempSync(join(tmpdir(), "pgshift-cfg-"));
  writeFileSync(join(dir, "pgshift.config.json"), JSON.stringify({ to: db().url, jobz: 4 }));
  const unknownKey = await runCli(["check"], { cwd: dir });
  assert.equal(unknownKey.code, 2);
  assert.match(unknownKey.stderr, /unknown setting "jobz"/);

  const unreachable = await runCli(["check", "--to", `postgres://app:${secret}@127.0.0.1:1/app`], { cwd });
  assert.equal(unreachable.code, 1);
  assert.match(unreachable.stderr, /could not connect to 127\.0\.0\.1:1\/app as app/);

  const wrong = new URL(db().url);
  wrong.password = secret;
  const wrongPassword = await runCli(["check", "--json"], { cwd, env: { DATABASE_URL: wrong.toString() } });
  assert.equal(wrongPassword.code, 1);
  assert.match(wrongPassword.stderr, /password authentication failed/);
  assert.equal(JSON.parse(wrongPassword.stdout).error, "connection_failed");

  for (const result of [malformed, unknownKey, unreachable, wrongPassword]) {
    assert.ok(!(result.stdout + result.stderr).includes(secret), "a password leaked into output");
  }
});

test("check against an explicit target, JSON output", async () => {
  const result = await runCli(["check", "--json"], { cwd, env: { DATABASE_URL: db().url } });
  assert.equal(result.code, 0, result.stderr);
  const parsed = JSON.parse(result.stdout);
  assert.equal(parsed.database, db().name);
  assert.match(parsed.target.url, /\*{8}/);
  assert.equal(result.stderr, "");
});

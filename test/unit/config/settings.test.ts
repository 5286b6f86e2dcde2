import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { loadSettings, urlFromLibpqEnv } from "../../../src/config/settings.ts";
import { SettingsError } from "../../../src/errors.ts";

function dirWithConfig(config?: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), "pgshift-settings-"));
  if (config !== undefined)
    writeFileSync(
      join(dir, "pgshift.config.json"),
      typeof config === "string" ? config : JSON.stringify(config),
    );
  return dir;
}

test("defaults apply when nothing is set", () => {
  const { settings, sources } = loadSettings({ env: {}, cwd: dirWithConfig() });
  assert.equal(settings.to, undefined);
  assert.equal(settings.schema, "public");
  assert.equal(settings.lockTimeoutMs, 5000);
  assert.equal(settings.localName, "default");
  assert.deepEqual(sources, {});
});

test("precedence: flags > env > file > defaults", () => {
  const cwd = dirWithConfig({ schema: "from_file", jobs: 3, lockTimeoutMs: 100 });
  const env = { PGSHIFT_SCHEMA: "from_env", PGSHIFT_JOBS: "5" };
  const { settings, sources } = loadSettings({ env, cwd, flags: { schema: "from_flag" } });
  assert.equal(settings.schema, "from_flag");
  assert.equal(settings.jobs, 5);
  assert.equal(settings.lockTimeoutMs, 100);
  assert.deepEqual(sources, { schema: "flag", jobs: "env", lockTimeoutMs: "file" });
});

test("DATABASE_URL beats PG* variables, and PG* variables build a URL", () => {
  const pgEnv = {
    PGHOST: "db.internal",
    PGPORT: "6543",
    PGUSER: "app",
    PGPASSWORD: "p@ss",
    PGDATABASE: "prod",
  };
  assert.equal(urlFromLibpqEnv(pgEnv), "postgres://app:p%40ss@db.internal:6543/prod");
  const cwd = dirWithConfig();
  assert.equal(loadSettings({ env: pgEnv, cwd }).settings.to, "postgres://app:p%40ss@db.internal:6543/prod");
  const both = { ...pgEnv, DATABASE_URL: "postgres://x@other/db" };
  assert.equal(loadSettings({ env: both, cwd }).settings.to, "postgres://x@other/db");
  const flag = loadSettings({ env: both, cwd, flags: { to: "postgres://flag@h/db" } });
  assert.equal(flag.settings.to, "postgres://flag@h/db");
  assert.equal(flag.sources.to, "flag");
});

test("every problem is reported at once, unknown keys rejected, passwords redacted", () => {
  const cwd = dirWithConfig({ schema: "", jobs: 0, colour: "blue", to: "mysql://root:topsecret@h/db" });
  const env = { PGSHIFT_JOBZ: "3" };
  let caught: unknown;
  try {
    loadSettings({ env, cwd });
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof SettingsError);
  const problems = caught.problems.join("\n");
  assert.equal(caught.problems.length, 5, problems);
  assert.match(problems, /unknown setting "colour"/);
  assert.match(problems, /PGSHIFT_JOBZ is not a pgshift setting/);
  assert.match(problems, /^to = .*is not a PostgreSQL URL/m);
  assert.match(problems, /^jobs = 0/m);
  assert.match(problems, /^schema = ""/m);
  assert.ok(!caught.message.includes("topsecret"), caught.message);
  assert.equal(caught.exitCode, 2);
});

test("a malformed config file is one clear problem", () => {
  const cwd = dirWithConfig("{ not json");
  assert.throws(
    () => loadSettings({ env: {}, cwd }),
    (error: unknown) => {
      assert.ok(error instanceof SettingsError);
      assert.match(error.problems[0]!, /pgshift\.config\.json: is not valid JSON/);
      return true;
    },
  );
});

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { promisify } from "node:util";
import { PGSHIFT_BIN, runCli } from "../../helpers/cli.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import { fixtureDir, makeSqlite } from "../import/sqlite-fixtures.ts";

const db = useTestDatabase("careless");
const dir = fixtureDir();
const ESC = "\u001b";
const ANSI_TABLE = `evil${ESC}[31mred${ESC}[0m`;
const ANSI_COLUMN = `c${ESC}]0;title\u0007`;

/** Runs the CLI on a pseudo-terminal (util-linux `script`), as a user at a terminal sees it. */
async function runOnTerminal(args: string[]): Promise<string> {
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const command = [process.execPath, PGSHIFT_BIN, ...args].map(quote).join(" ");
  const { stdout } = await promisify(execFile)("script", ["-qec", command, "/dev/null"], {
    cwd: dir,
    env: { ...process.env, TERM: "dumb" },
  });
  return stdout;
}

describe("careless input gets a clear answer", () => {
  it("--resume with other --naming or --tables than the run it resumes is refused, showing the stored ones", async () => {
    const source = makeSqlite(
      join(dir, "resume-options.db"),
      `CREATE TABLE Alpha (Id INTEGER PRIMARY KEY, v TEXT);
       CREATE TABLE Beta (Id INTEGER PRIMARY KEY, v TEXT);`,
      (d) => {
        for (let i = 1; i <= 300; i++) d.prepare("insert into Alpha values (?, ?)").run(i, `a${i}`);
        for (let i = 1; i <= 10; i++) d.prepare("insert into Beta values (?, ?)").run(i, `b${i}`);
      },
    );
    const base = ["import", source, "--to", db().url, "--schema", "resumed", "--chunk-rows", "100"];
    const killed = await runCli([...base, "--naming", "snake", "--tables", "Alpha"], {
      cwd: dir,
      env: { PGSHIFT_TEST_KILL_AT: "data:after-commit" },
    });
    assert.notEqual(killed.code, 0, killed.stdout);
    for (const changed of [
      ["--naming", "keep"],
      ["--tables", "Alpha,Beta"],
      ["--tables", "Beta"],
      ["--exclude", "Alpha"],
    ]) {
      const refused = await runCli(["--json", ...base, "--resume", ...changed], { cwd: dir });
      assert.equal(refused.code, 2, refused.stderr + refused.stdout);
      const payload = JSON.parse(refused.stdout);
      assert.equal(payload.error, "resume_options_differ");
      assert.equal(payload.stored, "--naming snake --tables Alpha");
      assert.match(
        refused.stderr,
        /was started with --naming snake --tables Alpha; this command asks for --/,
      );
    }
    // the same options, or none: the stored plan goes on
    const resumed = await runCli([...base, "--resume", "--naming", "snake", "--tables", "alpha"], {
      cwd: dir,
    });
    assert.equal(resumed.code, 0, resumed.stderr + resumed.stdout);
    const { rows } = await db().pool.query("select count(*)::int as n from resumed.alpha");
    assert.equal(rows[0].n, 300);
  });

  it('a SQLite table or column named "" is an error that names it', async () => {
    const table = makeSqlite(
      join(dir, "empty-table.db"),
      `CREATE TABLE "" (id INTEGER PRIMARY KEY, v TEXT);`,
    );
    const column = makeSqlite(
      join(dir, "empty-column.db"),
      `CREATE TABLE t (id INTEGER PRIMARY KEY, "" TEXT);`,
    );
    for (const [source, named] of [
      [table, 'table #1 (columns "id", "v") has an empty name ("")'],
      [column, 'column #2 of table "t" has an empty name ("")'],
    ] as const) {
      const result = await runCli(["--json", "import", source, "--to", db().url, "--schema", "empty"], {
        cwd: dir,
      });
      assert.equal(result.code, 1, result.stderr);
      const answer = JSON.parse(result.stdout) as { error: string; message: string };
      assert.equal(answer.error, "empty_identifier");
      assert.ok(answer.message.includes(named), answer.message);
      // with --json, stderr carries the same error as a JSON line
      const errorLine = result.stderr
        .split("\n")
        .filter(Boolean)
        .map((line) => JSON.parse(line) as { event: string; message?: string })
        .find((event) => event.event === "error");
      assert.ok(errorLine?.message?.includes(named), result.stderr);
    }
  });

  it("escape sequences in names are shown escaped on a terminal and on stderr, kept exact in piped DDL", async () => {
    const source = makeSqlite(
      join(dir, "ansi.db"),
      `CREATE TABLE "${ANSI_TABLE}" (id INTEGER PRIMARY KEY, "${ANSI_COLUMN}" TEXT);
       INSERT INTO "${ANSI_TABLE}" VALUES (1, 'a');`,
    );
    const args = ["import", source, "--to", db().url, "--schema", "ansi"];
    const terminal = await runOnTerminal([...args, "--dry-run"]);
    assert.ok(terminal.includes(`create table "ansi"."evil\\x1b[31mred\\x1b[0m"`), terminal);
    assert.ok(terminal.includes(`"c\\x1b]0;title\\x07" text`), terminal);
    assert.ok(!terminal.includes(ESC) && !terminal.includes("\u0007"), JSON.stringify(terminal));
    // piped: the DDL is exact, for psql
    const piped = await runCli([...args, "--dry-run"], { cwd: dir });
    assert.equal(piped.code, 0, piped.stderr);
    assert.ok(piped.stdout.includes(`create table "ansi"."${ANSI_TABLE}"`));
    // imported, then imported again: the error on stderr names the table, escaped
    assert.equal((await runCli(args, { cwd: dir })).code, 0);
    const again = await runCli(args, { cwd: dir });
    assert.equal(again.code, 2, again.stderr);
    assert.ok(again.stderr.includes("evil\\x1b[31mred\\x1b[0m"), again.stderr);
    assert.ok(!again.stderr.includes(ESC), JSON.stringify(again.stderr));
    const { rows } = await db().pool.query(
      "select relname from pg_class c join pg_namespace n on n.oid = c.relnamespace where nspname = 'ansi' and relkind = 'r'",
    );
    assert.deepEqual(rows, [{ relname: ANSI_TABLE }]);
  });

  it("local destroy of an instance that does not exist: exit 1 with a message", async () => {
    const localDir = mkdtempSync(join(tmpdir(), "pgshift-local-"));
    const result = await runCli(["local", "destroy", "--name", "nosuch"], {
      cwd: dir,
      env: { PGSHIFT_LOCAL_DIR: localDir },
    });
    assert.equal(result.code, 1, result.stdout);
    assert.match(result.stderr, /no local instance "nosuch" under .*nosuch; nothing was destroyed/);
    assert.equal(result.stdout, "");
  });
});

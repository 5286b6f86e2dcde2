import assert from "node:assert/strict";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { runCli } from "../../helpers/cli.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import { fixtureDir, makeSqlite } from "../import/sqlite-fixtures.ts";

const db = useTestDatabase("progout");
const dir = fixtureDir();
let source: string;

before(() => {
  source = makeSqlite(
    join(dir, "shop.db"),
    `CREATE TABLE customer (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
     CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customer(id), total REAL CHECK (total >= 0));
     CREATE INDEX orders_customer ON orders (customer_id);
     CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 100;
     CREATE VIEW order_kinds AS SELECT id, typeof(total) AS kind FROM orders;
     CREATE TRIGGER orders_touch AFTER UPDATE ON orders BEGIN SELECT 1; END;`,
    (d) => {
      for (let i = 1; i <= 300; i++) d.prepare("insert into customer values (?, ?)").run(i, `c${i}`);
      for (let i = 1; i <= 2000; i++)
        d.prepare("insert into orders values (?, ?, ?)").run(i, 1 + (i % 300), i / 3);
    },
  );
});

describe("import output without a terminal", () => {
  it("without --json: progress is plain text lines on stderr, the summary counts the schema objects", async () => {
    const result = await runCli(["import", source, "--to", db().url, "--schema", "plain"], { cwd: dir });
    assert.equal(result.code, 0, result.stderr + result.stdout);
    const lines = result.stderr.trim().split("\n");
    assert.ok(lines.length >= 4, result.stderr);
    for (const line of lines)
      assert.match(line, /^\[\d+:\d\d\] [^{]+$/, `not a plain progress line: ${line}`);
    assert.ok(
      lines.some((l) => /\] orders: 2,000 rows; done/.test(l)),
      result.stderr,
    );
    assert.ok(
      lines.some((l) => /\] verify customer: 300 rows; done/.test(l)),
      result.stderr,
    );
    assert.match(
      result.stdout,
      /^schema: primary keys 2\/2, indexes 1\/1, foreign keys 1\/1, checks 1\/1, views 1\/2, triggers 0\/1$/m,
    );
    assert.match(result.stdout, /^views: 1 of 2 not created\n {2}view "order_kinds": .+$/m);
    assert.doesNotMatch(result.stdout, /CREATE VIEW/);
  });

  it("--verbose prints the SQLite SQL of what was not created", async () => {
    const result = await runCli(
      ["import", source, "--to", db().url, "--schema", "verbose", "--verbose", "--no-verify"],
      { cwd: dir },
    );
    assert.equal(result.code, 0, result.stderr + result.stdout);
    assert.match(
      result.stdout,
      /view "order_kinds": .+\n {6}CREATE VIEW order_kinds AS SELECT id, typeof\(total\)/,
    );
  });

  it("with --json: progress and errors on stderr are JSON lines", async () => {
    const ok = await runCli(["import", source, "--to", db().url, "--schema", "json1", "--json"], {
      cwd: dir,
    });
    assert.equal(ok.code, 0, ok.stderr);
    const events = ok.stderr
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { event: string; scope?: string; phase?: string });
    assert.ok(events.every((e) => e.event === "progress" || e.event === "notice"));
    assert.ok(events.some((e) => e.scope === "job" && e.phase === "data"));
    assert.equal(JSON.parse(ok.stdout).objects.counts.length, 6);

    // The same import again: the tables exist, exit 2; stderr still parses line by line.
    const refused = await runCli(["import", source, "--to", db().url, "--schema", "json1", "--json"], {
      cwd: dir,
    });
    assert.equal(refused.code, 2, refused.stderr);
    const lines = refused.stderr
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const error = lines.find((l) => l.event === "error");
    assert.equal(error?.error, "target_exists");
    assert.match(String(error?.message), /already in schema json1/);
    assert.equal(JSON.parse(refused.stdout).ok, false);
  });
});

import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, test } from "node:test";
import {
  loadMigrations,
  newMigration,
  parseMigrationFileName,
  parseMigrationSource,
  versionAt,
} from "../../../src/migrate/migration-file.ts";
import { loadSqlParser, splitStatements } from "../../../src/migrate/sql-statements.ts";

before(() => loadSqlParser());

test("file names: 14-digit UTC version and a lower-case name", () => {
  assert.deepEqual(parseMigrationFileName("20240131120000_add_users.sql"), {
    version: "20240131120000",
    name: "add_users",
  });
  assert.equal(parseMigrationFileName("2024_add_users.sql"), undefined);
  assert.equal(parseMigrationFileName("20240131120000-add-users.sql"), undefined);
  assert.equal(versionAt(new Date("2024-01-31T12:34:56.789Z")), "20240131123456");
});

test("sections: markers found by the SQL scanner, not inside strings or function bodies", () => {
  const text = [
    "-- header comment",
    "-- migrate:up",
    "create function f() returns text language sql as $$ select '-- migrate:down' $$;",
    "select 'a;b', $tag$ ; -- migrate:down $tag$;",
    "-- migrate:down",
    "drop function f();",
    "",
  ].join("\n");
  const { up, down } = parseMigrationSource(text, "x.sql");
  assert.equal(up.statements.length, 2);
  assert.equal(up.statements[0]!.line, 3);
  assert.equal(up.statements[1]!.line, 4);
  assert.equal(up.statements[1]!.text, "select 'a;b', $tag$ ; -- migrate:down $tag$");
  assert.equal(up.transaction, true);
  assert.deepEqual(
    down?.statements.map((s) => [s.line, s.text]),
    [[6, "drop function f()"]],
  );
});

test("sections: a missing down section is allowed; no-transaction applies to the section it is in", () => {
  const noDown = parseMigrationSource("-- migrate:up\nselect 1;\n", "x.sql");
  assert.equal(noDown.down, null);
  const both = parseMigrationSource(
    "-- migrate:no-transaction\n-- migrate:up\ncreate index concurrently i on t (a);\n-- migrate:down\ndrop index concurrently i;\n",
    "x.sql",
  );
  assert.equal(both.up.transaction, false);
  assert.equal(both.down?.transaction, false);
  const upOnly = parseMigrationSource(
    "-- migrate:up\n-- migrate:no-transaction\ncreate index concurrently i on t (a);\n-- migrate:down\ndrop index i;\n",
    "x.sql",
  );
  assert.equal(upOnly.up.transaction, false);
  assert.equal(upOnly.down?.transaction, true);
});

test("sections: precise errors for what cannot run", () => {
  assert.throws(
    () => parseMigrationSource("select 1;\n", "a.sql"),
    /a\.sql: has no "-- migrate:up" section marker/,
  );
  assert.throws(
    () => parseMigrationSource("select 1;\n-- migrate:up\nselect 2;\n", "b.sql"),
    /b\.sql:1: SQL before the first section marker/,
  );
  assert.throws(
    () => parseMigrationSource("-- migrate:up\nselect 1;\n\nselec 2;\n", "c.sql"),
    /c\.sql:4: syntax error at or near "selec"/,
  );
  assert.throws(
    () => parseMigrationSource("-- migrate:up\ncreate index concurrently i on t (a);\n", "d.sql"),
    /d\.sql:2: CREATE INDEX CONCURRENTLY cannot run inside a transaction; add "-- migrate:no-transaction"/,
  );
  assert.throws(
    () => parseMigrationSource("-- migrate:up\n-- migrate:upp\n", "e.sql"),
    /e\.sql:2: unknown marker/,
  );
  assert.throws(
    () => parseMigrationSource("-- migrate:up\nbegin;\ncreate table t (id int);\ncommit;\n", "g.sql"),
    /g\.sql:2: remove transaction control/,
  );
  assert.throws(
    () => parseMigrationSource("-- migrate:up\nselect 1;\n-- migrate:up\n", "f.sql"),
    /f\.sql:3: "-- migrate:up" appears twice/,
  );
});

test("statements: split by the parser, with multi-byte text and comments kept in place", () => {
  const statements = splitStatements(
    "-- lead\ninsert into t values ('é;ü');\n/* c */ select 1;\nselect 2",
    10,
  );
  assert.deepEqual(
    statements.map((s) => [s.line, s.text, s.leadingComments]),
    [
      [11, "insert into t values ('é;ü')", ["lead"]],
      [12, "select 1", ["c"]],
      [13, "select 2", []],
    ],
  );
});

test("loadMigrations orders by version, rejects duplicate versions, ignores non-SQL files; new creates a template", async () => {
  const dir = mkdtempSync(join(tmpdir(), "pgshift-files-"));
  try {
    writeFileSync(join(dir, "README.md"), "notes");
    const first = newMigration({ dir, name: "Create Users", now: new Date("2024-05-01T10:00:00Z") });
    const second = newMigration({
      dir,
      name: "add-index",
      now: new Date("2024-05-01T10:00:00Z"),
      noTransaction: true,
    });
    assert.equal(first.version, "20240501100000");
    assert.equal(second.version, "20240501100001", "a clash takes the next second");
    assert.match(readFileSync(second.file, "utf8"), /^-- migrate:no-transaction\n-- migrate:up\n/);
    assert.throws(() => newMigration({ dir, name: "bad name!" }), /must be letters, digits and underscores/);
    const migrations = await loadMigrations(dir);
    assert.deepEqual(
      migrations.map((m) => `${m.version}_${m.name}`),
      ["20240501100000_create_users", "20240501100001_add_index"],
    );
    assert.match(migrations[0]!.sha256, /^[0-9a-f]{64}$/);
    writeFileSync(join(dir, "20240501100000_other.sql"), "-- migrate:up\n");
    await assert.rejects(() => loadMigrations(dir), /same version 20240501100000/);
    rmSync(join(dir, "20240501100000_other.sql"));
    writeFileSync(join(dir, "2024_typo.sql"), "-- migrate:up\n");
    await assert.rejects(
      () => loadMigrations(dir),
      /2024_typo\.sql: is not named <YYYYMMDDHHMMSS>_<name>\.sql/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { loadSqlParser } from "../../../src/schema/expression.ts";
import type { SqlRelation } from "../../../src/schema/sql-names.ts";
import { translateTrigger } from "../../../src/schema/trigger-translation.ts";
import type { Affinity, Conversion } from "../../../src/schema/type-mapping.ts";

before(loadSqlParser);

const column = (target: string, pgType: string, conversion: Conversion, affinity: Affinity) =>
  [target.toLowerCase(), { target, pgType, conversion, affinity }] as const;

const items: SqlRelation = {
  target: "Items",
  columns: new Map([
    column("Id", "bigint", "integer", "integer"),
    column("name", "text", "text", "text"),
    column("updated_at", "timestamp", "timestamp", "numeric"),
    column("active", "boolean", "boolean", "numeric"),
  ]),
};
const audit: SqlRelation = {
  target: "audit",
  columns: new Map([
    column("item_id", "bigint", "integer", "integer"),
    column("action", "text", "text", "text"),
    column("at", "text", "text", "text"),
  ]),
};
const relations = new Map([
  ["items", items],
  ["audit", audit],
]);
const context = (name: string) => ({ schema: "app", relations, table: items, name });

describe("translateTrigger", () => {
  it("touch updated_at: a PL/pgSQL function that does not run inside itself", () => {
    const result = translateTrigger(
      "CREATE TRIGGER touch AFTER UPDATE ON items FOR EACH ROW BEGIN UPDATE items SET updated_at = CURRENT_TIMESTAMP, active = 1 WHERE id = NEW.id; END",
      context("touch"),
    );
    assert.ok(result.ok, JSON.stringify(result));
    const guard = /current_setting\('(pgshift\.trigger_[0-9a-f]{16})'/.exec(result.sql.functionSql)?.[1];
    assert.ok(guard);
    assert.equal(
      result.sql.functionSql,
      [
        `create or replace function "app"."touch"() returns trigger language plpgsql set search_path = "app" as $pgshift$`,
        "begin",
        `  if current_setting('${guard}', true) = 'on' then return null; end if;`,
        `  perform set_config('${guard}', 'on', true);`,
        `  UPDATE "Items" SET "updated_at" = date_trunc('second', current_timestamp at time zone 'UTC'), "active" = true WHERE "Id" = NEW."Id";`,
        `  perform set_config('${guard}', 'off', true);`,
        "  return null;",
        "end",
        "$pgshift$",
      ].join("\n"),
    );
    assert.equal(
      result.sql.triggerSql,
      `create trigger "touch" after update on "app"."Items" for each row execute function "app"."touch"()`,
    );
    assert.deepEqual(result.sql.checkSql, [
      `UPDATE "Items" SET "updated_at" = date_trunc('second', current_timestamp at time zone 'UTC'), "active" = true WHERE "Id" = (null::"app"."Items")."Id"`,
    ]);
  });

  it("an audit insert with WHEN, UPDATE OF and SQLite's clock as text", () => {
    const result = translateTrigger(
      "CREATE TRIGGER log_name AFTER UPDATE OF name ON items WHEN NEW.name <> OLD.name BEGIN\n  INSERT INTO audit(item_id, action, at) VALUES (NEW.id, 'renamed ' || OLD.name, datetime('now'));\nEND;",
      context("log_name"),
    );
    assert.ok(result.ok, JSON.stringify(result));
    const lines = result.sql.functionSql.split("\n");
    assert.equal(lines[3], `  if not coalesce((NEW."name" <> OLD."name"), false) then return null; end if;`);
    assert.equal(
      lines[5],
      `  INSERT INTO "audit"("item_id", "action", "at") VALUES (NEW."Id", 'renamed ' || OLD."name", to_char((current_timestamp at time zone 'UTC'), 'YYYY-MM-DD HH24:MI:SS'));`,
    );
    assert.equal(
      result.sql.triggerSql,
      `create trigger "log_name" after update of "name" on "app"."Items" for each row execute function "app"."log_name"()`,
    );
    assert.deepEqual(result.sql.checkSql, [
      `INSERT INTO "audit"("item_id", "action", "at") VALUES ((null::"app"."Items")."Id", 'renamed ' || (null::"app"."Items")."name", to_char((current_timestamp at time zone 'UTC'), 'YYYY-MM-DD HH24:MI:SS'))`,
      `select case when ((null::"app"."Items")."name" <> (null::"app"."Items")."name") then 1 end`,
    ]);
  });

  it("SELECT RAISE(...) validations: an exception, or (IGNORE) the row skipped", () => {
    const result = translateTrigger(
      "CREATE TRIGGER checked BEFORE UPDATE ON items BEGIN SELECT CASE WHEN NEW.name = '' THEN RAISE(ABORT, 'name must not be empty') WHEN NEW.active = 0 THEN RAISE(IGNORE) END; END",
      context("checked"),
    );
    assert.ok(result.ok, JSON.stringify(result));
    const lines = result.sql.functionSql.split("\n");
    const guard = /'(pgshift\.trigger_[0-9a-f]{16})'/.exec(lines[2]!)?.[1];
    assert.deepEqual(lines.slice(4, 6), [
      `  if (NEW."name" = '') then raise exception using message = 'name must not be empty'; end if;`,
      `  if (NEW."active" = false) then perform set_config('${guard}', 'off', true); return null; end if;`,
    ]);
    assert.deepEqual(result.sql.checkSql, [
      `select case when ((null::"app"."Items")."name" = '') then 1 end, case when ((null::"app"."Items")."active" = false) then 1 end`,
    ]);
  });

  it("a BEFORE trigger returns the row; reports the forms it does not translate", () => {
    const before = translateTrigger(
      "CREATE TRIGGER keep BEFORE DELETE ON items BEGIN DELETE FROM audit WHERE item_id = OLD.id; END",
      context("keep"),
    );
    assert.ok(before.ok);
    assert.match(before.sql.functionSql, /\n {2}return old;\nend\n/);
    assert.deepEqual(
      translateTrigger(
        "CREATE TRIGGER no AFTER DELETE ON items BEGIN SELECT RAISE(IGNORE); END",
        context("no"),
      ),
      { ok: false, reason: "RAISE(IGNORE) outside a BEFORE or INSTEAD OF trigger" },
    );
    assert.deepEqual(
      translateTrigger(
        "CREATE TRIGGER no AFTER DELETE ON items BEGIN SELECT name FROM items; END",
        context("no"),
      ),
      {
        ok: false,
        reason:
          "a SELECT in the trigger body (only INSERT, UPDATE, DELETE and SELECT RAISE(...) are translated)",
      },
    );
    assert.deepEqual(
      translateTrigger(
        "CREATE TRIGGER r AFTER INSERT ON items BEGIN INSERT OR REPLACE INTO audit(item_id) VALUES (NEW.id); END",
        context("r"),
      ).ok,
      false,
    );
    assert.deepEqual(
      translateTrigger(
        "CREATE TRIGGER x AFTER INSERT ON items BEGIN UPDATE audit SET at = NEW.nope; END",
        context("x"),
      ),
      { ok: false, reason: "new.nope is not a column of the trigger's table" },
    );
  });
});

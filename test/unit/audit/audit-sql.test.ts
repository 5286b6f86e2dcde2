import assert from "node:assert/strict";
import { test } from "node:test";
import { auditTriggerSql } from "../../../src/audit/enable-audit.ts";
import { parseTableName } from "../../../src/audit/table-name.ts";

test("auditTriggerSql: row trigger with reason flag and key columns, truncate guard, enable always", () => {
  assert.deepEqual(
    auditTriggerSql({ schema: "app", name: 'Order "x"', keyColumns: ["tenant", "id"], requireReason: true }),
    [
      `create or replace trigger pgshift_audit after update or delete on "app"."Order ""x""" for each row execute function pgshift.audit_row('t', 'tenant', 'id')`,
      `create or replace trigger pgshift_audit_insert after insert on "app"."Order ""x""" referencing new table as pgshift_new_rows for each statement execute function pgshift.audit_insert('t', 'tenant', 'id')`,
      `create or replace trigger pgshift_audit_truncate before truncate on "app"."Order ""x""" for each statement execute function pgshift.audit_refuse_truncate()`,
      `alter table "app"."Order ""x""" enable always trigger pgshift_audit, enable always trigger pgshift_audit_insert, enable always trigger pgshift_audit_truncate`,
    ],
  );
  assert.match(
    auditTriggerSql({ schema: "public", name: "t", keyColumns: ["it's"], requireReason: false })[0]!,
    /audit_row\('f', 'it''s'\)$/,
  );
});

test("parseTableName: table, schema.table, and refusals", () => {
  assert.deepEqual(parseTableName("orders"), { schema: "public", name: "orders" });
  assert.deepEqual(parseTableName("app.orders"), { schema: "app", name: "orders" });
  assert.deepEqual(parseTableName("orders", "app"), { schema: "app", name: "orders" });
  assert.throws(() => parseTableName("a.b.c"), /not a table name/);
  assert.throws(() => parseTableName("a."), /not a table name/);
});

import assert from "node:assert/strict";
import { test } from "node:test";
import {
  auditLog,
  auditStatus,
  disableAudit,
  enableAudit,
  verifyAudit,
  withAuditContext,
} from "../../../src/audit/index.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import { sealAll } from "./seal-all.ts";

const db = useTestDatabase("audit");

test("enable writes one audit row per changed row, with who, why, old and new values", async () => {
  const { pool } = db();
  await pool.query("create table public.orders (id int primary key, status text, qty int)");
  const enabled = await enableAudit({ pool, tables: ["orders"] });
  assert.deepEqual(enabled.tables, [
    { schema: "public", name: "orders", keyColumns: ["id"], requireReason: false },
  ]);
  assert.equal(enabled.eventTrigger, "created");

  await withAuditContext(pool, { actor: "u-42", reason: "ticket 981" }, async (client) => {
    await client.query("insert into orders values (1, 'new', 3), (2, 'new', 1)");
    await client.query("update orders set status = 'shipped' where id = 1");
  });
  await pool.query("delete from orders where id = 2");
  // The context ends with its transaction: the next one on a reused connection has no actor.
  const { rows } = await pool.query(
    "select op, row_key, old_row, new_row, actor, reason, db_user, txid from pgshift.audit_log where kind = 'row' order by id",
  );
  assert.deepEqual(
    rows.map((r) => [r.op, r.row_key, r.actor, r.reason]),
    [
      ["insert", { id: 1 }, "u-42", "ticket 981"],
      ["insert", { id: 2 }, "u-42", "ticket 981"],
      ["update", { id: 1 }, "u-42", "ticket 981"],
      ["delete", { id: 2 }, null, null],
    ],
  );
  assert.deepEqual(rows[2].old_row, { id: 1, status: "new", qty: 3 });
  assert.deepEqual(rows[2].new_row, { id: 1, status: "shipped", qty: 3 });
  assert.equal(rows[0].txid, rows[2].txid, "same transaction");
  assert.notEqual(rows[0].txid, rows[3].txid);
  assert.equal(rows[0].db_user, (await pool.query("select session_user as u")).rows[0].u);

  const history = await auditLog({ pool, table: "orders", key: "1" });
  assert.deepEqual(
    history.map((e) => [e.op, e.actor, e.changes]),
    [
      [
        "insert",
        "u-42",
        [
          { column: "id", old: null, new: 1 },
          { column: "qty", old: null, new: 3 },
          { column: "status", old: null, new: "new" },
        ],
      ],
      ["update", "u-42", [{ column: "status", old: "new", new: "shipped" }]],
    ],
  );

  await sealAll(pool);
  const status = await auditStatus(pool);
  assert.equal(status.tables[0]?.triggersOk, true);
  assert.equal(status.eventTrigger, true);
  assert.equal(status.unsealedRows, 0);
  const verified = await verifyAudit({ pool });
  assert.deepEqual(verified.problems, []);
  assert.equal(verified.rowsChecked, status.sealedRows);

  await disableAudit({ pool, tables: ["orders"] });
  await pool.query("insert into orders values (3, 'new', 1)");
  const after = await auditLog({ pool, table: "orders", key: "3" });
  assert.deepEqual(after, []);
});

test("--require-reason refuses UPDATE and DELETE without a reason, accepts them with one", async () => {
  const { pool } = db();
  await pool.query("create table public.samples (id int primary key, result text)");
  await enableAudit({ pool, tables: ["public.samples"], requireReason: true });
  await pool.query("insert into samples values (1, 'pass')");
  await assert.rejects(pool.query("update samples set result = 'fail' where id = 1"), /needs a reason/);
  await assert.rejects(pool.query("delete from samples where id = 1"), /needs a reason/);
  await assert.rejects(
    withAuditContext(pool, { actor: "qa" }, (c) => c.query("update samples set result = 'fail'")),
    /needs a reason/,
  );
  await withAuditContext(pool, { actor: "qa", reason: "retest" }, (c) =>
    c.query("update samples set result = 'fail' where id = 1"),
  );
  assert.equal((await pool.query("select result from samples")).rows[0].result, "fail");
  await assert.rejects(pool.query("truncate samples"), /TRUNCATE of audited table/);
});

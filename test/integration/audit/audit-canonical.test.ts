import assert from "node:assert/strict";
import { test } from "node:test";
import { enableAudit, recordAuditEvent, verifyAudit, withAuditContext } from "../../../src/audit/index.ts";
import { createTestDatabase } from "../../helpers/database.ts";
import { sealAll } from "./seal-all.ts";

/** The canonical text as the first schema steps defined it (jsonb), which chains sealed before must keep. */
const JSONB_CANONICAL = `pg_catalog.jsonb_build_array(
  a.id, a.txid, pg_catalog.int8(pg_catalog."extract"('epoch', a.at) operator(pg_catalog.*) 1000000),
  a.kind, a.table_schema, a.table_name, a.op, a.row_key, a.old_row, a.new_row, a.db_user,
  a.session_user_name, a.application_name, a.client_addr, a.actor, a.reason, a.detail)::text`;

const AWKWARD_TEXT = [
  "",
  'say "hi"',
  "back\\slash \\u0041 \\n",
  "tab\tnew\nline\rcarriage\u0001\u001f\u007f",
  "é ü ß 中文 😀 \u2028 \u2029 \ufeff",
  "  leading and trailing  ",
  "null",
  "[1, 2]",
  '{"k": 1}',
];

test("the canonical text built as json is byte for byte the jsonb one, on awkward values", async () => {
  const db = await createTestDatabase("audcanon");
  try {
    const { pool } = db;
    await pool.query(
      `create table public."odd ""table""" (id int primary key, t text, n numeric, f double precision,
         j jsonb, b bytea, ts timestamptz, arr text[], flag boolean)`,
    );
    await enableAudit({ pool, tables: ['public.odd "table"'] });
    let id = 0;
    for (const text of AWKWARD_TEXT) {
      id++;
      await withAuditContext(pool, { actor: text || "someone", reason: `${text} reason` }, async (client) => {
        await client.query(`insert into "odd ""table""" values ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, [
          id,
          text,
          ["0", "-1.5e-300", "123456789012345678901234567890.000001", "NaN"][id % 4],
          [0.1, -0, 1e308, 5e-324][id % 4],
          JSON.stringify({ [text]: [text, 1.0, 1e-7, null, true, { nested: text }], "": {} }),
          Buffer.from(text),
          "2026-01-02 03:04:05.123456+05:30",
          [text, null, "x"],
          id % 2 === 0,
        ]);
        await client.query(`update "odd ""table""" set t = t || $2, j = $3 where id = $1`, [
          id,
          text,
          JSON.stringify(text),
        ]);
      });
    }
    await recordAuditEvent(pool, { action: "note", detail: { text: AWKWARD_TEXT.join("|"), n: 1e21 } });
    await pool.query("select pgshift.audit_event('scalar', '\"just a string\"'::jsonb)");
    await pool.query("select pgshift.audit_event('number', '12.50'::jsonb)");
    await pool.query('delete from "odd ""table""" where id = 1');

    const { rows } = await pool.query(
      `select count(*)::int as n,
              count(*) filter (where pgshift.audit_canonical(a) is distinct from ${JSONB_CANONICAL})::int as differ
         from pgshift.audit_log a`,
    );
    assert.ok(rows[0].n >= AWKWARD_TEXT.length * 2 + 4, `${rows[0].n} audit rows`);
    assert.equal(rows[0].differ, 0);
    await sealAll(pool);
    const verified = await verifyAudit({ pool });
    assert.deepEqual(verified.problems, []);
    assert.equal(verified.rowsChecked, rows[0].n);
  } finally {
    await db.drop();
  }
});

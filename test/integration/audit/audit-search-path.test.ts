import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { enableAudit, verifyAudit, withAuditContext } from "../../../src/audit/index.ts";
import { quoteIdent } from "../../../src/pg/quote.ts";
import { useTestDatabase } from "../../helpers/database.ts";
import { sealAll } from "./seal-all.ts";

const db = useTestDatabase("audpath");
const appRole = `pgshift_evil_${randomBytes(4).toString("hex")}`;

/** The trigger functions on the write path: SECURITY DEFINER without a SET clause (see audit-schema.ts). */
const WRITE_PATH = ["audit_row", "audit_insert"];

// Everything the trigger functions use, shadowed in a schema the application role owns. Each shadow
// raises, so any call that reaches one fails the write instead of going unnoticed.
const shadows = `
  create schema evil;
  -- Visible to every role, the definer included (as the public schema is to all before PostgreSQL 15).
  grant usage on schema evil to public;
  create function evil.boom() returns text language plpgsql as $$ begin raise exception 'evil called'; end $$;
  create function evil.current_setting(text) returns text language plpgsql as $$ begin return evil.boom(); end $$;
  create function evil.current_setting(text, boolean) returns text language plpgsql as $$ begin return evil.boom(); end $$;
  create function evil.to_jsonb(anyelement) returns jsonb language plpgsql as $$ begin perform evil.boom(); return null; end $$;
  create function evil.lower(text) returns text language plpgsql as $$ begin return evil.boom(); end $$;
  create function evil.inet_client_addr() returns inet language plpgsql as $$ begin perform evil.boom(); return null; end $$;
  create function evil.jsonb_build_object(text, jsonb) returns jsonb language plpgsql as $$ begin perform evil.boom(); return null; end $$;
  create function evil.unnest(text[]) returns setof text language plpgsql as $$ begin perform evil.boom(); end $$;
  create function evil.eq(text, text) returns boolean language plpgsql as $$ begin perform evil.boom(); return true; end $$;
  create function evil.eq(integer, integer) returns boolean language plpgsql as $$ begin perform evil.boom(); return true; end $$;
  create function evil.arrow(jsonb, text) returns jsonb language plpgsql as $$ begin perform evil.boom(); return null; end $$;
  create operator evil.= (leftarg = text, rightarg = text, function = evil.eq);
  create operator evil.<> (leftarg = text, rightarg = text, function = evil.eq);
  create operator evil.= (leftarg = integer, rightarg = integer, function = evil.eq);
  create operator evil.-> (leftarg = jsonb, rightarg = text, function = evil.arrow);
  create table evil.audit_log (id int);
  create table evil.pgshift_new_rows (id int);
  create type evil.text as (x int);
  create type evil.jsonb as (x int);`;

test("the write-path trigger functions are SECURITY DEFINER, owned by pgshift_audit, with no SET clause and only qualified names", async () => {
  const { pool } = db();
  await pool.query("create table public.probe (id int primary key)");
  await enableAudit({ pool, tables: ["probe"] });
  const { rows } = await pool.query(
    `select p.proname, p.prosecdef, p.proconfig, pg_get_userbyid(p.proowner) as owner, p.prosrc
       from pg_proc p where p.pronamespace = 'pgshift'::regnamespace and p.proname = any($1) order by 1`,
    [WRITE_PATH],
  );
  assert.deepEqual(
    rows.map((r) => [r.proname, r.prosecdef, r.proconfig, r.owner]),
    [
      ["audit_insert", true, null, "pgshift_audit"],
      ["audit_row", true, null, "pgshift_audit"],
    ],
  );
  for (const { proname, prosrc } of rows) {
    const code = (prosrc as string)
      .replace(/'(?:[^']|'')*'/g, "''") // string literals
      .replace(/raise exception[\s\S]*?;/g, "") // RAISE ... USING errcode = ..., hint = ... (syntax, not operators)
      .replace(/operator\(pg_catalog\.(=|<>|->)\)/g, " ")
      .replace(/\bn\.\*/g, "n"); // the whole row of the transition table
    // Every call is qualified, apart from SQL syntax that looks like one.
    const calls = [...code.matchAll(/(?<![.\w])([a-z_]+)\s*\(/g)].map((m) => m[1]);
    assert.deepEqual(
      calls.filter((c) => !["coalesce", "values", "select", "else", "from"].includes(c!)),
      [],
      `${proname}: unqualified calls`,
    );
    // No operator left bare (":=" is PL/pgSQL assignment); no NULLIF either: it looks "=" up in the path.
    assert.doesNotMatch(code.replace(/:=/g, " "), /[=<>!~+*/%|&^#@-]/, `${proname}: bare operator`);
    assert.doesNotMatch(code, /\bnullif\b/i, `${proname}: nullif`);
    // Types of variables and casts are qualified too.
    assert.doesNotMatch(code, /(?<!pg_catalog\.)\b(text|jsonb)\b/, `${proname}: unqualified type`);
  }
});

test("auditing stays correct when the caller's search_path puts a hostile schema first", async () => {
  const { pool } = db();
  const role = quoteIdent(appRole);
  await pool.query(`create role ${role} nologin`);
  await pool.query(`grant create, usage on schema public to ${role}`);
  await pool.query(`grant create on database ${quoteIdent(db().name)} to ${role}`);
  try {
    await pool.query(
      `set role ${role}; create table public.lots (id int, site text, qty int, primary key (id, site)); create table public.items (id int primary key, n int); ${shadows}; reset role`,
    );
    await enableAudit({ pool, tables: ["lots", "items"], requireReason: true });
    for (const path of ["evil, pg_catalog, public", "evil, public", "pg_temp, evil, pg_catalog, public"]) {
      const client = await pool.connect();
      try {
        await client.query(`set role ${role}`);
        await client.query("create temp table if not exists audit_log (id int)");
        await client.query("create temp table if not exists pgshift_new_rows (id int)");
        await client.query(`set search_path = ${path}`);
        await client.query("set application_name = 'evil-app'");
        // The shadows are live in this session: the caller's own unqualified calls hit them (with
        // pg_catalog listed after evil; unlisted, it is searched first for functions and operators).
        if (path.includes("pg_catalog")) {
          await assert.rejects(client.query("select to_jsonb(1)"), /evil called/, path);
          await assert.rejects(client.query("select 'a'::pg_catalog.text = 'b'"), /evil called/, path);
        }
        // The caller's own statements qualify their operators: the shadows are on its path.
        await client.query("begin");
        await client.query("set local pgshift.actor = 'u-7'");
        await client.query("set local pgshift.reason = 'lot recount'");
        await client.query("insert into public.lots values (1, 'a', 5), (2, 'b', 6)");
        await client.query("insert into public.items values (1, 10)");
        await client.query("update public.lots set qty = 7 where id operator(pg_catalog.=) 1");
        await client.query("update public.items set n = 11 where id operator(pg_catalog.=) 1");
        await client.query("delete from public.lots where id operator(pg_catalog.=) 2");
        await client.query("delete from public.items where id operator(pg_catalog.=) 1");
        await client.query("commit");
        // The reason check still compares with the real operators: no reason, refused.
        await assert.rejects(
          client.query("update public.lots set qty = 8 where id operator(pg_catalog.=) 1"),
          /needs a reason/,
          path,
        );
      } catch (error) {
        await client.query("rollback").catch(() => undefined);
        throw error;
      } finally {
        client.release(true);
      }
      // Clean up the remaining row as the owner (with a reason), so each path starts from empty tables.
      await withAuditContext(pool, { actor: "admin", reason: "reset" }, (c) =>
        c.query("delete from public.lots"),
      );
    }
  } finally {
    await pool.query("reset role");
  }
  const { rows } = await pool.query(
    `select table_name, op, row_key, old_row, new_row, actor, reason, db_user, application_name
       from pgshift.audit_log where kind = 'row' and actor = 'u-7' order by id`,
  );
  const expected = [
    ["lots", "insert", { id: 1, site: "a" }, null, { id: 1, site: "a", qty: 5 }],
    ["lots", "insert", { id: 2, site: "b" }, null, { id: 2, site: "b", qty: 6 }],
    ["items", "insert", { id: 1 }, null, { id: 1, n: 10 }],
    ["lots", "update", { id: 1, site: "a" }, { id: 1, site: "a", qty: 5 }, { id: 1, site: "a", qty: 7 }],
    ["items", "update", { id: 1 }, { id: 1, n: 10 }, { id: 1, n: 11 }],
    ["lots", "delete", { id: 2, site: "b" }, { id: 2, site: "b", qty: 6 }, null],
    ["items", "delete", { id: 1 }, { id: 1, n: 11 }, null],
  ];
  assert.deepEqual(
    rows.map((r) => [r.table_name, r.op, r.row_key, r.old_row, r.new_row]),
    [...expected, ...expected, ...expected],
  );
  for (const r of rows) {
    assert.deepEqual(
      [r.actor, r.reason, r.db_user, r.application_name],
      ["u-7", "lot recount", appRole, "evil-app"],
    );
  }
  assert.equal((await pool.query("select count(*)::int as n from evil.audit_log")).rows[0].n, 0);
  await sealAll(pool);
  const verified = await verifyAudit({ pool });
  assert.equal(verified.ok, true);
});
